"""Busy ports: the dev host's commands stop with one line naming the port and the flag that changes it."""

from __future__ import annotations

import errno
import socket


class PortInUseError(OSError):
    """A port the dev host (or a process it starts) was told to listen on is taken by something else."""

    def __init__(self, port: int, *, what: str, flag: str) -> None:
        self.port = port
        self.what = what
        self.flag = flag
        super().__init__(
            errno.EADDRINUSE,
            f"port {port} ({what}) is already in use: stop what listens there or choose another port with "
            f"{flag} N",
        )

    def __str__(self) -> str:
        return str(self.strerror)


def address_in_use(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE


def ensure_port_free(port: int, *, what: str, flag: str, host: str = "127.0.0.1") -> None:
    """Raise `PortInUseError` when `port` cannot be bound on `host`, as the dev host's servers bind it
    (`SO_REUSEADDR`: a port left in TIME_WAIT by an earlier run counts as free). Port 0 is always free."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if address_in_use(exc):
                raise PortInUseError(port, what=what, flag=flag) from None
            raise
