"""A port handed to a server we start must not be one an outgoing connection can take first.

The kernel gives outgoing connections source ports from its ephemeral range; a port chosen with
bind(port 0) comes from that same range, so between choosing it and the server binding it, any
connection on the machine may take it (seen in make test: a predictor failing with EADDRINUSE).
"""

from __future__ import annotations

import socket

from patchrisk.child_processes import ephemeral_port_range, free_port


def test_the_chosen_port_is_outside_the_kernels_ephemeral_range_and_bindable():
    low, high = ephemeral_port_range()
    for _ in range(50):
        port = free_port()
        assert not low <= port <= high, (port, low, high)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_something_listens_on_is_never_chosen():
    taken = []
    try:
        for _ in range(20):
            port = free_port()
            sock = socket.socket()
            sock.bind(("127.0.0.1", port))
            sock.listen()
            taken.append(sock)
        ports = {s.getsockname()[1] for s in taken}
        assert len(ports) == 20
        for _ in range(50):
            assert free_port() not in ports
    finally:
        for sock in taken:
            sock.close()


def test_the_ephemeral_range_is_the_kernels():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
        assert ephemeral_port_range() == tuple(int(x) for x in fh.read().split())
