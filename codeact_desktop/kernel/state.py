"""A conversation kernel's lifecycle as events: what the window's kernel label, the CLI and
``doctor`` show, pushed by the kernel when it changes instead of polled.

Listeners are called on whichever thread made the change (the start thread, the agent's,
the watchdog's); a window hops to its UI thread itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable

from .sandbox import SandboxReport


class KernelStatus(str, Enum):  # StrEnum, from Python 3.11 on
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
