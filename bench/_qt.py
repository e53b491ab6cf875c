"""Driving the real window from a script (benchmarks, screenshots, the reliability
report): run Qt's event loop for a while, until a condition, and time its stalls."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer

TICK_MS = 10


def pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.002)


def wait(app, condition, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the window did not get there in time")
        pump(app, 0.02)


class Heartbeat:
    """A 10 ms timer on the UI thread; a stall is how late a tick came."""

    def __init__(self):
        self.last = None
        self.stalls_ms: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

    def _tick(self):
        now = time.perf_counter()
        if self.last is not None:
            self.stalls_ms.append(max(0.0, (now - self.last) * 1000 - TICK_MS))
        self.last = now

    def start(self):
        self.last = None
        self.stalls_ms = []
        self.timer.start()

    def stop(self):
        self.timer.stop()
