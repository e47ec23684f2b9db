"""Local TCP ports for the sandbox's own servers: pick a free one, or check one is.

Every backing server (redis-servers, function hosts) listens on 127.0.0.1, and a
resource keeps its port across sandbox restarts while that port is still free.
"""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(port: int, host: str = "127.0.0.1", *, reuse_address: bool = False) -> bool:
    """Whether `port` can be bound now; `reuse_address` for a server that binds with
    SO_REUSEADDR (connections lingering in TIME_WAIT do not stop it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
