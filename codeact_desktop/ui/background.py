"""The one owner of the window's background work (deleting a conversation, exporting,
switching a kernel's network, restarting a kernel, closing a model, searching): every job
runs on one thread pool, its answer comes back on the UI thread, and quitting waits for
what is still running instead of killing it halfway through a file."""

from __future__ import annotations

import itertools
import logging
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class _Carrier(QObject):
    """Lives on the UI thread; a worker's emit on it is queued there."""

    finished = Signal(int, object)  # job number, what the job returned
    failed = Signal(int, str)  # job number, the error in plain words


class _Job(QRunnable):
    def __init__(self, number: int, name: str, work: Callable[[], Any], carrier: _Carrier):
        super().__init__()
        self.number, self.name, self.work, self.carrier = number, name, work, carrier

    def run(self) -> None:
        try:
            result = self.work()
        except Exception as exc:  # noqa: BLE001 (any failure is reported, none ends the pool's thread)
            log.error("background job %r failed", self.name, exc_info=True)
            self.carrier.failed.emit(self.number, str(exc) or type(exc).__name__)
        else:
            self.carrier.finished.emit(self.number, result)


class BackgroundWork(QObject):
    """Runs the window's slow jobs off the UI thread and tells each caller how it went.

    ``done`` and ``failed`` carry the job's name, for whoever watches all of them (the
    tests, the status bar); the callbacks given to ``run`` are the usual way to answer.
    """

    done = Signal(str, object)  # job name, result
    failed = Signal(str, str)  # job name, error text

    def __init__(self, parent=None, max_threads: int = 4):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._carrier = _Carrier(self)
        self._carrier.finished.connect(self._on_finished)
        self._carrier.failed.connect(self._on_failed)
        self._numbers = itertools.count(1)
        self._waiting: dict[int, tuple[str, Callable | None, Callable | None]] = {}
        self._closed = False

    @property
    def running(self) -> list[str]:
        """The names of the jobs not yet answered."""
        return [name for name, _, _ in self._waiting.values()]

    def run(self, name: str, work: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
            on_failed: Callable[[str], None] | None = None) -> bool:
        """Starts ``work`` on the pool; False once the window is closing (nothing starts)."""
        if self._closed:
            return False
        number = next(self._numbers)
        self._waiting[number] = (name, on_done, on_failed)
        self.pool.start(_Job(number, name, work, self._carrier))
        return True

    def close(self, timeout_ms: int = 10_000) -> bool:
        """Takes no new jobs and waits (bounded) for the running ones; True if all ended."""
        self._closed = True
        return self.pool.waitForDone(timeout_ms)

    def _on_finished(self, number: int, result: object) -> None:
        name, on_done, _ = self._waiting.pop(number, ("", None, None))
        if on_done is not None:
            on_done(result)
        self.done.emit(name, result)

    def _on_failed(self, number: int, message: str) -> None:
        name, _, on_failed = self._waiting.pop(number, ("", None, None))
        if on_failed is not None:
            on_failed(message)
        self.failed.emit(name, message)
