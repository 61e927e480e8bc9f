"""Free TCP ports on the loopback interface, handed out once per run so services never collide."""

import socket
from collections.abc import Iterable

LOOPBACK = "127.0.0.1"


def is_port_free(port: int, host: str = LOOPBACK) -> bool:
    """True when nothing listens on host:port, i.e. a server could bind it now.

    SO_REUSEADDR, as servers set it, so that closed connections lingering in TIME_WAIT do not count.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Hands out distinct free loopback ports; a port is never handed out twice by one allocator."""

    def __init__(self, host: str = LOOPBACK, avoid: Iterable[int] = ()) -> None:
        self.host = host
        self._given: set[int] = set(avoid)

    def take(self) -> int:
        """A port that is free now and was not handed out before by this allocator."""
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((self.host, 0))
                port = int(sock.getsockname()[1])
            if port not in self._given:
                self._given.add(port)
                return port
        raise RuntimeError("could not find a free loopback port after 200 attempts")

    def take_many(self, count: int) -> list[int]:
        """`count` distinct free ports."""
        return [self.take() for _ in range(count)]

    @property
    def given(self) -> frozenset[int]:
        """Every port handed out so far."""
        return frozenset(self._given)
