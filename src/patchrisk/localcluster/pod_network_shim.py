"""Run inside a local pod only (bound at /run/patchrisk/pod_network.py, executed by a .pth line).

A pod has its own network namespace, so binding 0.0.0.0 there means "the pod's addresses". Local
pods share the host's network, each with its own loopback address; binding the wildcard would
take the port on every address and clash with the next replica. So a wildcard IPv4 bind is made
on the pod's address - the one its hostname resolves to in its /etc/hosts, as on a cluster.
"""

import socket as _socket


def _install() -> None:
    try:
        pod_ip = _socket.gethostbyname(_socket.gethostname())
    except OSError:
        return
    if not pod_ip.startswith("127.") or pod_ip == "127.0.0.1":
        return
    original_bind = _socket.socket.bind

    def bind(self, address):
        if self.family == _socket.AF_INET and isinstance(address, tuple) and address[0] in ("", "0.0.0.0"):
            address = (pod_ip, *address[1:])
        return original_bind(self, address)

    _socket.socket.bind = bind


_install()
