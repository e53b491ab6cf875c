"""The line under the conversation that says the model is at work: reading the
conversation (with tokens, when llama.cpp reports them), then writing. Without it, the
seconds before the first token of a 7B model on a CPU look like a hung app."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel

from ..agent import events as ev

DOTS = ("●○○", "○●○", "○○●")
SHOW_TOKENS_FROM = 256  # below that, reading is over before a count means anything


class WorkingIndicator(QLabel):
    """Says what the model is doing (reading, with tokens, then writing) and for how long."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("workingIndicator")
        self.setAccessibleName("model status")
        self.setTextFormat(Qt.PlainText)
        self.stage = ""  # "" | "reading" | "writing"
        self.done = self.total = 0
        self._since = 0.0
        self._tick = 0
        self._timer = QTimer(self)
        self._timer.setInterval(400)
        self._timer.timeout.connect(self._draw)
        self.hide()

    def follow(self, event) -> None:
        """Moves with the engine's events: what the model does now."""
        if isinstance(event, ev.ModelWorking):
            if self.stage != "reading":
                self._since = time.monotonic()
            self._start("reading", event.done, event.total)
        elif isinstance(event, ev.TextPiece):
            if self.stage != "writing":
                self._start("writing")
        elif isinstance(event, (ev.ReplyDone, ev.ActionStarted, ev.TurnDone)):
            self.stop()

    def _start(self, stage: str, done: int = 0, total: int = 0) -> None:
        self.stage, self.done, self.total = stage, done, total
        if not self._timer.isActive():
            self._timer.start()
        self._draw(advance=False)
        self.show()

    def stop(self) -> None:
        self.stage = ""
        self._timer.stop()
        self.hide()

    def text_now(self) -> str:
        if self.stage == "reading":
            text = "Reading the conversation"
            if self.total >= SHOW_TOKENS_FROM:
                text += f" · {self.done:,} of {self.total:,} tokens"
            seconds = time.monotonic() - self._since
            if seconds >= 3:
                text += f" · {seconds:.0f} s"
            return text + " …"
        return "Writing …" if self.stage == "writing" else ""

    def _draw(self, advance: bool = True) -> None:
        if advance:
            self._tick += 1
        self.setText(f"{DOTS[self._tick % len(DOTS)]}  {self.text_now()}")
