"""The states of one code action, from proposed to finished: one list for the agent, the
kernel, the history, the window and the exports. A string enum, so the values stored in
SQLite and in transcripts stay the plain strings they always were."""

from __future__ import annotations

from enum import Enum


class ActionStatus(str, Enum):  # StrEnum, from Python 3.11 on
    """What became of one action, as stored, shown, exported and told to the model."""

    def __str__(self) -> str:
        return self.value

    PROPOSED = "proposed"  # the model wrote it; nothing decided yet
    RUNNING = "running"
    OK = "ok"
    ERROR = "error"  # the code raised (or the app failed while running it)
    TIMEOUT = "timeout"  # interrupted at the deadline; the kernel kept its state
    TIMEOUT_RESTARTED = "timeout_restarted"  # the interrupt did not take: a new kernel
    DIED = "died"  # the kernel died (memory, a signal, its own exit) and was restarted
    CANCELLED = "cancelled"  # the user pressed Stop
    SKIPPED = "skipped"  # the user said no
    CUT_OFF = "cut_off"  # the reply ended inside the code: not run
    OVER_LIMIT = "over_limit"  # the per-message limit of code runs was reached: not run
    REPEATED = "repeated"  # the code of the action before it, which had just failed: not run again
    INTERRUPTED = "interrupted"  # the app was killed while it ran (store/recovery.py)

    @classmethod
    def of(cls, value: str) -> ActionStatus | None:
        """The status a stored string names; None for one this version does not know (a newer
        version's, or a card's "writing" and "waiting")."""
        try:
            return cls(value)
        except ValueError:
            return None

    @property
    def ran(self) -> bool:
        """Code reached the kernel, so the kernel's state depends on it."""
        return self in _RAN

    @property
    def failed(self) -> bool:
        """Shown as a failure (the error tone)."""
        return self in _FAILED

    @property
    def kernel_state_lost(self) -> bool:
        """The kernel was replaced while this ran: its variables are gone."""
        return self in (ActionStatus.TIMEOUT_RESTARTED, ActionStatus.DIED)

    @property
    def finished(self) -> bool:
        return self not in (ActionStatus.PROPOSED, ActionStatus.RUNNING)


_RAN = frozenset({ActionStatus.OK, ActionStatus.ERROR, ActionStatus.TIMEOUT, ActionStatus.TIMEOUT_RESTARTED,
                  ActionStatus.DIED, ActionStatus.CANCELLED, ActionStatus.RUNNING, ActionStatus.INTERRUPTED})
_FAILED = frozenset({ActionStatus.ERROR, ActionStatus.TIMEOUT, ActionStatus.TIMEOUT_RESTARTED, ActionStatus.DIED,
                     ActionStatus.OVER_LIMIT, ActionStatus.REPEATED, ActionStatus.CUT_OFF,
                     ActionStatus.INTERRUPTED})
