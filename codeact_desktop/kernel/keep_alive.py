"""Which conversations keep a running kernel.

Each kernel holds about 130 MB with the scientific stack imported, so a user who opens
twenty conversations one after another would hold 2.6 GB for nineteen they are not looking
at. The rule, as users of notebooks expect it: the conversations used most recently keep
their kernel (variables and all), so going back and forth between a few costs nothing; one
further back, or left idle for long, has its kernel stopped, and when the user returns a
new kernel starts and the conversation says its variables were lost (files are kept). The
current conversation and any conversation with code running are never stopped.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

KEEP = 4  # conversations whose kernel stays up however long they are idle, within IDLE_S
IDLE_S = 30 * 60.0  # a kernel left alone this long is stopped, unless its conversation is current


class KernelKeepAlive:
    """Tracks when each conversation's kernel was last used and says which to stop."""

    def __init__(self, keep: int = KEEP, idle_s: float = IDLE_S, clock: Callable[[], float] = time.monotonic):
        self.keep = keep
        self.idle_s = idle_s
        self._clock = clock
        self._used: dict[str, float] = {}

    def used(self, conversation_id: str) -> None:
        """The conversation was opened, or its code ran."""
        self._used[conversation_id] = self._clock()

    def forget(self, conversation_id: str) -> None:
        self._used.pop(conversation_id, None)

    def to_stop(self, current: str | None, busy: Iterable[str] = ()) -> list[str]:
        """Conversations whose kernel should stop now (they are forgotten here)."""
        spared = {current, *busy}
        now = self._clock()
        by_recency = sorted(self._used, key=self._used.get, reverse=True)
        stop = [c for i, c in enumerate(by_recency)
                if c not in spared and (i >= self.keep or now - self._used[c] > self.idle_s)]
        for conversation_id in stop:
            self.forget(conversation_id)
        return stop
