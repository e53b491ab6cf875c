"""Stopping a blocked network read at once: while a block runs, a set ``cancel`` shuts
down the socket it is reading. Checking ``cancel`` between reads is not enough, since a
read waits on a silent server (or a stalled network) until its timeout, and a download
reads 10 MB at a time: on a slow line that was minutes before Stop or Cancel acted.
"""

from __future__ import annotations

import socket
import threading
from typing import Callable

POLL_S = 0.1


def socket_of(response) -> socket.socket | None:
    """The socket under an httpx response, where the transport tells it."""
    stream = response.extensions.get("network_stream")
    return stream.get_extra_info("socket") if stream is not None else None


def shut(sock: socket.socket | None) -> None:
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv; close() would not
        except OSError:
            pass  # already closed


class shut_on_cancel:  # noqa: N801 - a context manager, used as a statement
    """While the block runs, a set ``cancel`` shuts down ``current()``'s socket, and keeps
    shutting down any later one (a library that retries opens a new connection)."""

    def __init__(self, cancel: threading.Event | None, current: Callable[[], socket.socket | None]):
        self.cancel, self.current, self.done = cancel, current, threading.Event()

    def __enter__(self):
        if self.cancel is not None:
            threading.Thread(target=self._watch, name="socket-stop", daemon=True).start()
        return self

    def _watch(self) -> None:
        while not self.done.wait(POLL_S):
            if self.cancel.is_set():
                shut(self.current())

    def __exit__(self, *exc) -> None:
        self.done.set()
