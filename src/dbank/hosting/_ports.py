"""Free loopback ports for the branches of a local bank."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free a moment ago (bound together, then closed).

    Another program could take one before its branch binds it; that branch then fails to
    start with a clear message, which is rare enough on loopback not to retry."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
