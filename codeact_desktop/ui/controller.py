"""Runs one conversation's agent on a worker thread and hands its events to the UI
thread as a Qt signal (a cross-thread emit is queued, so widgets are only touched on
the UI thread). Approval requests block the worker, never the UI."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

from ..agent.loop import AgentSettings, Approval, CodeActAgent
from ..kernel.conversation_kernel import ConversationKernel
from ..llm.base import ChatBackend
from ..store.history import Conversation

log = logging.getLogger(__name__)


class ConversationController(QObject):
    """One open conversation in the window: its agent, its kernel, its turn's worker, and
    the approvals waiting for the user."""

    engine_event = Signal(object)  # any event from agent/events.py
    approval_requested = Signal(str, str)  # action_id, code
    busy_changed = Signal(bool)

    def __init__(self, backend: ChatBackend | None, kernel: ConversationKernel, conversation: Conversation,
                 settings: AgentSettings, require_approval: bool = False, parent=None):
        # backend None: the model is still loading (set_backend follows; nothing is sent before).
        super().__init__(parent)
        self.conversation = conversation
        self.kernel = kernel
        self.require_approval = require_approval  # the user's; the engine also asks when the kernel is not restricted
        self._decisions: dict[str, tuple[threading.Event, list[Approval]]] = {}
        self._worker: threading.Thread | None = None
        self.agent = CodeActAgent(backend, kernel, conversation, settings,
                                  on_event=self.engine_event.emit, approve=self._approve)

    def set_require_approval(self, on: bool) -> None:
        """The user's setting changed; the next action follows it."""
        self.require_approval = on

    def set_backend(self, backend: ChatBackend) -> None:
        """A new model: the next reply comes from it."""
        self.agent.set_backend(backend)

    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def send(self, text: str, files: list[Path] = ()) -> bool:
        return self._start(lambda: self.agent.send(text, list(files)))

    def regenerate(self) -> bool:
        return self._start(self.agent.regenerate)

    def _start(self, turn: Callable[[], object]) -> bool:
        if self.busy:
            return False

        def run():
            try:
                turn()
            except Exception:  # the agent ends its turns itself; this is the record of one that did not
                log.exception("a turn of conversation %s ended with an error", self.conversation.id)
            finally:
                self.busy_changed.emit(False)

        self._worker = threading.Thread(target=run, name="agent-turn", daemon=True)
        self._worker.start()
        self.busy_changed.emit(True)  # after start, so ``busy`` already reads True
        return True

    def stop(self) -> None:
        """Stops generation and interrupts running code; a waiting approval becomes skip."""
        self.agent.cancel()
        for action_id in list(self._decisions):
            self.decide(action_id, Approval(run=False))

    def decide(self, action_id: str, approval: Approval) -> None:
        entry = self._decisions.get(action_id)
        if entry:
            entry[1].append(approval)
            entry[0].set()

    def _approve(self, action_id: str, code: str, required: bool) -> Approval:
        if not (self.require_approval or required):
            return Approval(run=True)
        done, box = threading.Event(), []
        self._decisions[action_id] = (done, box)
        self.approval_requested.emit(action_id, code)
        done.wait()
        del self._decisions[action_id]
        return box[0]

    def wait_idle(self, timeout: float | None = None) -> None:
        if self._worker is not None:
            self._worker.join(timeout)

    def shutdown(self) -> None:
        """Stops the turn, then the kernel; safe to call from any thread, and twice."""
        self.stop()
        self.wait_idle(30)
        if hasattr(self.agent, "close"):
            self.agent.close()
        self.kernel.shutdown()
