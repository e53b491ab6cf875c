"""Seconds since this process started, for the start-up milestones in the app's log
(window shown, model loaded, first kernel ready): the figures a user's slow start is
judged by, and what ``bench/cold_start.py`` reads. The process's own start time, as the
OS records it, so the interpreter's start and the imports are counted too."""

from __future__ import annotations

import logging
import os
import time

_started: float | None = None
log = logging.getLogger(__name__)


def seconds_since_start() -> float:
    global _started
    if _started is None:
        _started = time.time() - _age()
    return time.time() - _started


def _age() -> float:
    try:
        if hasattr(time, "CLOCK_BOOTTIME"):
            # Linux: the start in clock ticks since boot (psutil adds a boot time that is
            # rounded to the second, too coarse for a start-up figure).
            ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
            return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:  # no /proc, or a sandbox hides it: counted from the first call
        return 0.0


def milestone(what: str) -> None:
    """Logs ``startup: <what> <s> s after the process started`` (content-free: ``what`` is
    one of the app's own fixed phrases)."""
    log.info("startup: %s %.3f s after the process started", what, seconds_since_start())
