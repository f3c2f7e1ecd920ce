"""A port a server command is told to listen on, checked before the command does any work: one taken by
another process is the operator's mistake (exit 2, naming the option), not a server's startup failure
(uvicorn exits 3, a code the commands never documented)."""

from __future__ import annotations

import socket

from patchrisk.errors import PatchriskError


def refuse_a_port_in_use(host: str, port: int, option: str = "--port") -> None:
    """Bind ``host:port`` as uvicorn does (SO_REUSEADDR: a port in TIME_WAIT is free) and let it go."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except (OSError, UnicodeError) as err:  # gaierror (no such host) is an OSError too
        reason = getattr(err, "strerror", None) or str(err)
        raise PatchriskError(f"{option} {port}: cannot listen on {host} ({reason})") from None
