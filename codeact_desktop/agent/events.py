"""What the agent loop tells its listeners (the CLI, the tests, the window).

Plain dataclasses delivered on the agent's own thread: a window must hop them to its
UI thread itself; the engine knows nothing of Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..kernel.outputs import OutputItem


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
    text: str


@dataclass
class ReplyDone:
    """One model reply ended; ``text`` is what the history records for it."""

    text: str
    finish_reason: str
    stats: dict


@dataclass
class ActionProposed:
    action_id: str
    code: str


@dataclass
class ActionStarted:
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
    action_id: str
    item: OutputItem


@dataclass
class ActionFinished:
    action_id: str
    status: str  # ok | error | timeout | timeout_restarted | died | cancelled | skipped | cut_off | over_limit
    observation: str
    seconds: float
    files: list[str] = field(default_factory=list)


@dataclass
class Notice:
    """Something the user should know that is not the model's words."""

    text: str


@dataclass
class TurnDone:
    reason: str  # answered | action_limit | cancelled | error
    actions: int


@dataclass
class ErrorEvent:
    """Something failed; the conversation is intact and can go on."""

    text: str


Event = (
    ModelWorking | TextPiece | ReplyDone | ActionProposed | ActionStarted | OutputStream | OutputAdded
    | ActionFinished | Notice | TurnDone | ErrorEvent
)
