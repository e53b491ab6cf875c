"""A conversation kernel's lifecycle as events: what the window's kernel label, the CLI and
``doctor`` show, pushed by the kernel when it changes instead of polled.

Listeners are called on whichever thread made the change (the start thread, the agent's,
the watchdog's); a window hops to its UI thread itself.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from enum import Enum
from typing import Callable

from .sandbox import SandboxReport

_log = logging.getLogger(__name__)


class KernelStatus(str, Enum):  # StrEnum, from Python 3.11 on
    """Where a kernel is in its life, as sent to the window, the CLI and doctor."""

    def __str__(self) -> str:
        return self.value

    STARTING = "starting"
    READY = "ready"  # idle, waiting for code; ``sandbox`` says what restricts it
    BUSY = "busy"  # running an action
    INTERRUPTED = "interrupted"  # an interrupt was sent (timeout or Stop); state kept if it takes
    RESTARTING = "restarting"
    DIED = "died"  # ``detail`` says why (memory limit, signal, exit code); a restart follows when code runs
    FAILED = "failed"  # could not start; ``detail`` says why
    STOPPED = "stopped"  # shut down by the app


@dataclass(frozen=True)
class KernelState:
    """One change of a kernel's lifecycle. ``restarts`` counts restarts so far."""

    status: KernelStatus
    detail: str = ""
    sandbox: SandboxReport | None = None
    restarts: int = 0


KernelListener = Callable[[KernelState], None]


class KernelStateListeners:
    """The listeners of one kernel's lifecycle and the last state sent to them.

    ``send`` calls every listener on the calling thread, in the order they subscribed,
    holding a lock so that states sent from two threads (an action's and the watchdog's)
    reach every listener in one order. A listener that raises is logged and skipped: the
    kernel goes on. A listener may read ``state`` but should hand any longer work to its
    own thread (a window posts to its UI thread).
    """

    def __init__(self, initial: KernelState) -> None:
        self._listeners: list[KernelListener] = []
        self._state = initial
        # Reentrant: a listener may subscribe, unsubscribe or read while being called.
        self.lock = threading.RLock()

    @property
    def state(self) -> KernelState:
        return self._state

    def subscribe(self, listener: KernelListener) -> Callable[[], None]:
        """Adds ``listener``; returns the function that removes it (safe to call twice)."""
        with self.lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self.lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def send(self, state: KernelState) -> None:
        with self.lock:
            self._state = state
            for listener in list(self._listeners):
                try:
                    listener(state)
                except Exception:  # noqa: BLE001 - one broken view must not break the kernel
                    _log.exception("a kernel state listener failed on %s", state.status)
