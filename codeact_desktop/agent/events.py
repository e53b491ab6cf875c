"""What the agent loop tells its listeners (the CLI, the tests, the window).

Plain dataclasses delivered on the agent's own thread: a window must hop them to its
UI thread itself; the engine knows nothing of Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..action_status import ActionStatus
from ..kernel.outputs import OutputItem
from ..kernel.state import KernelState


@dataclass
class ModelWorking:
    """The model is busy before its first words: ``stage`` "reading" is the prompt being
    evaluated; ``done``/``total`` count its tokens evaluated so far / to evaluate
    (``total`` 0 while unknown; only some backends can tell)."""

    stage: str
    done: int = 0
    total: int = 0


@dataclass
class TextPiece:
    """A piece of the model's reply as it streams."""

    text: str


@dataclass
class ReplyDone:
    """One model reply ended; ``text`` is what the history records for it."""

    text: str
    finish_reason: str
    stats: dict


@dataclass
class ActionProposed:
    """The reply holds code; it waits for the approval rule (or is not run at all)."""

    action_id: str
    code: str


@dataclass
class ActionStarted:
    """The code went to the kernel."""

    action_id: str
    code: str  # as run: the user may have edited it


@dataclass
class OutputStream:
    """Live stdout/stderr text while code runs."""

    action_id: str
    name: str
    text: str


@dataclass
class OutputAdded:
    """One output the code produced (an image, a table, a result), as stored."""

    action_id: str
    item: OutputItem


@dataclass
class ActionFinished:
    """An action ended, run or not; ``observation`` is what the model reads about it."""

    action_id: str
    status: ActionStatus
    observation: str
    seconds: float
    files: list[str] = field(default_factory=list)


@dataclass
class Notice:
    """Something the user should know that is not the model's words."""

    text: str


@dataclass
class TurnDone:
    """The last event of every turn, whatever happened in it."""

    reason: str  # answered | action_limit | cancelled | error
    actions: int


@dataclass
class ErrorEvent:
    """Something failed; the conversation is intact and can go on."""

    text: str


Event = (
    ModelWorking | TextPiece | ReplyDone | ActionProposed | ActionStarted | OutputStream | OutputAdded
    | ActionFinished | Notice | TurnDone | ErrorEvent | KernelState
)
"""KernelState comes from the conversation's kernel (kernel/state.py), forwarded by the agent."""
