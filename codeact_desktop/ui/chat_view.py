"""The conversation as a column of messages and code cards, driven by engine events.

Streamed text is buffered and drawn by a 50 ms timer, so 200 pieces a second cost 20
relayouts, not 200; code output is drawn at most DRAW_CHARS_PER_TICK characters a tick.
"""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QTextOption
from PySide6.QtWidgets import (
    QApplication, QFrame, QLabel, QPlainTextEdit, QPushButton, QScrollArea, QSizePolicy, QTextBrowser, QTextEdit,
    QVBoxLayout, QWidget,
)

from ..action_status import ActionStatus
from ..agent import events as ev
from ..agent.actions import OPEN, parse_reply
from ..agent.timeline import STOPPED, timeline
from ..kernel.outputs import item_from_stored
from ..sizes import human_size
from ..store.history import Conversation
from ..visible_text import for_display, visible_name
from .code_card import CodeCard
from .flow_layout import FlowLayout
from .math_view import MathView
from .output_views import PassesWheelAtEnd, safe_markdown_html
from .untrusted_text import plain_tip
from .working_indicator import WorkingIndicator

FLUSH_MS = 50
DRAW_CHARS_PER_TICK = 32_000  # about 4 ms of QPlainTextEdit work
ZOOM_STEP = 1.0  # points per Ctrl+ / Ctrl−
ZOOM_LIMIT = 8
EXAMPLE_PROMPTS = (
    "What is the 50th Fibonacci number?",
    "Plot sin(x) and cos(x) from 0 to 2π and save the plot as waves.png",
    "Make a CSV of 20 random people with name, age and city, then show the average age per city",
    "Which day of the week was 1 January 2000?",
)


def open_link(url: str) -> bool:
    """Opens web and mail links in the user's browser; any other kind (file:, a program's
    scheme) is not opened from text a model wrote."""
    if QUrl(url).scheme().lower() in ("http", "https", "mailto"):
        QDesktopServices.openUrl(QUrl(url))
        return True
    return False


def link_tip(url: QUrl) -> str:
    """Where a link a model wrote goes, host first and in ASCII: "аpple.com" with a Cyrillic
    а reads as apple.com, and a long address hid its real host past the screen's edge
    (``https://github.com∕…∕x@evil.example``: the host is evil.example)."""
    if url.isEmpty():
        return ""
    shown = url.toDisplayString()
    if len(shown) > 120:
        shown = f"{shown[:70]}…{shown[-40:]}"
    if url.scheme().lower() == "mailto":
        return plain_tip(f"Mail to {visible_name(url.path())}")
    lines = [f"Opens {visible_name(url.host(QUrl.ComponentFormattingOption.EncodeUnicode))}", visible_name(shown)]
    if url.userInfo():
        lines.append("The part before “@” is not where it goes.")
    return plain_tip("\n".join(lines))


class Bubble(PassesWheelAtEnd, QTextBrowser):
    """A message: rich text that wraps anywhere a line must break (a 300-character URL
    too, so nothing widens the chat), as tall as its text (the wheel scrolls the chat),
    loading nothing."""

    def __init__(self, role: str, text: str = "", parent=None):
        super().__init__(parent)
        self.role = role
        self.setObjectName(f"{role}Message")
        self.setAccessibleName(f"{role} message")
        self.setFrameShape(QFrame.NoFrame)
        self.setOpenLinks(False)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setWordWrapMode(QTextOption.WrapAtWordBoundaryOrAnywhere)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
        self.viewport().setAutoFillBackground(False)
        self.anchorClicked.connect(lambda url: open_link(url.toString()))
        self.highlighted.connect(lambda url: self.setToolTip(link_tip(url)))  # where a link goes
        self.document().documentLayout().documentSizeChanged.connect(self._fit_height)
        self.markdown = ""
        self.set_markdown(text)

    def loadResource(self, kind, url):  # noqa: N802
        return None  # never an image or a style sheet from a path or URL a model wrote

    def text(self) -> str:
        """The rich text shown (what the tests and the sanitizer's checks read)."""
        return self._html

    def set_markdown(self, text: str) -> None:
        self.markdown = text
        self._html = safe_markdown_html(for_display(text))
        self.setHtml(self._html)
        # Only once placed in the chat: showing a parentless widget opens a window.
        if self.parent() is not None:
            self.setVisible(bool(text.strip()))

    def _fit_height(self) -> None:
        margins = self.contentsMargins()
        height = int(self.document().size().height()) + margins.top() + margins.bottom()
        if height != self.height():
            self.setFixedHeight(height)

    def resizeEvent(self, event):  # noqa: N802
        super().resizeEvent(event)
        self._fit_height()


def file_chips(files: list[dict]) -> QWidget:
    """The files sent with a message, as a row of chips under it."""
    row = QWidget()
    row.setObjectName("chipRow")
    layout = FlowLayout(row, align_right=True)  # wraps on a narrow window
    for f in files:
        chip = QLabel(f"{visible_name(f['name'])} · {human_size(f['size'])}")
        chip.setTextFormat(Qt.PlainText)
        chip.setObjectName("chip")
        chip.setAccessibleName(f"attached file {f['name']}")
        layout.addWidget(chip)
    return row


class ChatView(QScrollArea):
    """The conversation as the user reads it: messages, code cards and their outputs, and
    notices, drawn from the engine's events as they come or from the history at once."""

    example_chosen = Signal(str)  # an example prompt of the empty conversation was clicked

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.NoFrame)
        self.setAccessibleName("conversation")
        self._inner = QWidget()
        self._inner.setObjectName("chatColumn")
        self._column = QVBoxLayout(self._inner)
        self._column.setContentsMargins(16, 12, 16, 12)
        self._column.setSpacing(10)
        self._column.addStretch(1)
        self.empty_hint = self._examples()
        self._column.insertWidget(0, self.empty_hint)
        self.working = WorkingIndicator()
        self._column.insertWidget(1, self.working)
        self.setWidget(self._inner)
        self.zoom = 0
        # Follow new content while the user is at the bottom; stay put if they scrolled up.
        self._stick_to_bottom = True
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(lambda v: setattr(self, "_stick_to_bottom", v >= bar.maximum() - 24))
        bar.rangeChanged.connect(lambda lo, hi: bar.setValue(hi) if self._stick_to_bottom else None)
        self.cards: dict[str, CodeCard] = {}
        self._reply_text = ""
        self._reply_bubble: Bubble | None = None
        self._pending_card: CodeCard | None = None
        self._stream_buffer: deque[tuple[str, str, str]] = deque()
        self._flush = QTimer(self)
        self._flush.setInterval(FLUSH_MS)
        self._flush.timeout.connect(lambda: self._draw_pending(limited=True))
        self._flush.start()

    # -- building blocks ------------------------------------------------------------

    def _examples(self) -> QWidget:
        """What an empty conversation shows: what the app does, and prompts to click."""
        box = QWidget()
        box.setObjectName("emptyHint")
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        intro = QLabel("<h3>What can I do for you?</h3>"
                       "<p>Ask in plain words, or drop files here. I write and run Python to do it, and show "
                       "you each step. Try one:</p>")
        intro.setObjectName("emptyHintText")
        intro.setAlignment(Qt.AlignCenter)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        for text in EXAMPLE_PROMPTS:
            button = QPushButton(text)
            button.setObjectName("examplePrompt")
            button.setAccessibleName(f"example: {text}")
            button.setCursor(Qt.PointingHandCursor)
            button.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
            button.setMinimumWidth(0)
            button.clicked.connect(lambda checked=False, t=text: self.example_chosen.emit(t))
            layout.addWidget(button, 0, Qt.AlignHCenter)
        return box

    def _add(self, widget: QWidget) -> QWidget:
        # Examples stay while only notices are shown; the first message replaces them.
        if not isinstance(widget, QLabel) or widget.objectName() not in ("notice", "errorNotice"):
            self.empty_hint.hide()
        self._column.insertWidget(self._column.count() - 2, widget)  # above the indicator and the stretch
        return widget

    def scroll_to_end(self) -> None:
        self._stick_to_bottom = True
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def clear(self) -> None:
        while self._column.count() > 3:  # keep the hint, the indicator and the stretch
            item = self._column.takeAt(1)
            if item.widget():
                item.widget().hide()  # at once: deletion waits for the event loop
                item.widget().deleteLater()
        self.empty_hint.show()
        self.working.stop()
        self.cards.clear()
        self._reply_bubble = self._pending_card = None
        self._reply_text = ""

    def add_user_message(self, text: str, files: list[dict] = ()) -> Bubble:
        self.scroll_to_end()  # sending brings the conversation's end into view
        bubble = self._add(Bubble("user", text))
        if files:
            self._add(file_chips(files))
        return bubble

    def add_notice(self, text: str, error: bool = False) -> QLabel:
        label = QLabel(text)
        label.setTextFormat(Qt.PlainText)  # a notice may quote the kernel
        # A long path in it may not widen the chat: clipped at the column's edge instead.
        label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        label.setObjectName("errorNotice" if error else "notice")
        label.setWordWrap(True)
        return self._add(label)

    # -- live events ------------------------------------------------------------------

    def handle(self, event) -> None:
        self.working.follow(event)
        if isinstance(event, ev.TextPiece):
            self._reply_text += event.text
        elif isinstance(event, ev.OutputStream):
            self._stream_buffer.append((event.action_id, event.name, event.text))
        elif isinstance(event, ev.ReplyDone):
            self._end_reply(event.text)
        elif isinstance(event, ev.ActionProposed):
            card = self._pending_card or self._add(CodeCard(event.code))
            self._pending_card = None
            card.set_action(event.action_id, event.code)
            self.cards[event.action_id] = card
        elif isinstance(event, ev.ActionStarted):
            card = self.cards[event.action_id]
            if event.code != card.code:
                card.mark_edited()
            card.set_code(event.code)
            card.set_status(ActionStatus.RUNNING)
        elif isinstance(event, ev.OutputAdded):
            self._draw_pending()
            self.cards[event.action_id].add_item(event.item)
        elif isinstance(event, ev.ActionFinished):
            self.cards[event.action_id].set_status(event.status, event.seconds)
        elif isinstance(event, ev.Notice):
            self.add_notice(event.text)
        elif isinstance(event, ev.ErrorEvent):
            self.add_notice(event.text, error=True)
        elif isinstance(event, ev.TurnDone):
            self._draw_pending()
            if event.reason == "cancelled":
                self._end_reply(parse_reply(self._reply_text, "cancelled").thought)
                self.add_notice(STOPPED)
            self._reply_text = ""
            self._reply_bubble = None

    def _draw_pending(self, limited: bool = False) -> None:
        """Draws what streamed since the last tick: reply text and code output."""
        if self._reply_text:
            thought, _, code = self._reply_text.partition(OPEN)
            if self._reply_bubble is None and thought.strip():
                self._reply_bubble = self._add(Bubble("assistant"))
            if self._reply_bubble is not None and self._reply_bubble.markdown != thought:
                self._reply_bubble.set_markdown(thought)
            if code.strip():
                if self._pending_card is None:
                    self._pending_card = self._add(CodeCard())
                self._pending_card.set_code(code.strip("\n"))
        if self._stream_buffer:
            # A flood of output is drawn a slice per tick, so no tick blocks for long.
            budget = DRAW_CHARS_PER_TICK if limited else float("inf")
            batch = self._stream_buffer
            while batch and budget > 0:
                action_id, name, text = batch.popleft()
                card = self.cards.get(action_id)
                if card is None:
                    budget -= 1
                    continue
                head = text[:int(budget)] if len(text) > budget else text
                drawn = card.add_stream(name, head)
                budget -= max(drawn, 1)  # past a cap nothing is drawn; each piece still counts
                if len(head) < len(text) and drawn >= len(head):
                    batch.appendleft((action_id, name, text[len(head):]))  # the rest, next tick
                # else the rest is past the cap: dropped whole. Kept and sliced a budget at a
                # time, a piece of 30 MB was copied again and again in one tick (1.8 s).

    def _end_reply(self, history_text: str) -> None:
        thought = parse_reply(history_text).thought
        if thought and self._reply_bubble is None:
            self._reply_bubble = self._add(Bubble("assistant"))
        if self._reply_bubble is not None:
            self._reply_bubble.set_markdown(thought)
        self._reply_text = ""
        self._reply_bubble = None

    # -- look ---------------------------------------------------------------------------

    def set_zoom(self, steps: int) -> None:
        """The chat's text size, ZOOM_STEP points a step from the app's own. Set as a style
        sheet: widgets the app's sheet styles do not take a font from their parent."""
        self.zoom = max(-ZOOM_LIMIT, min(ZOOM_LIMIT, steps))
        size = max(6.0, QApplication.font().pointSizeF() + self.zoom * ZOOM_STEP)
        self.setStyleSheet("" if self.zoom == 0 else
                           f"QWidget {{ font-size: {size:g}pt; }} #hint {{ font-size: {size - 1:g}pt; }}")
        self.restyle()

    def restyle(self) -> None:
        """After a theme or text-size change: what was drawn for the old one is redrawn.
        Messages follow by themselves (their HTML names no colour or size)."""
        for card in self.findChildren(CodeCard):
            card.restyle()
        for formula in self.findChildren(MathView):
            formula.restyle()

    def searchable(self) -> list[QWidget]:
        """What find-in-conversation looks through, top to bottom: messages, notices, code
        and outputs (not the cards' buttons and labels)."""
        def wanted(w: QWidget) -> bool:
            if isinstance(w, QLabel):
                return w.objectName() in ("notice", "errorNotice", "errorSummary")
            return isinstance(w, (QTextEdit, QPlainTextEdit))

        found = []
        for i in range(self._column.count()):
            widget = self._column.itemAt(i).widget()
            if widget is None or widget is self.empty_hint or widget is self.working or widget.isHidden():
                continue
            found += [widget] if wanted(widget) else [
                w for w in widget.findChildren(QWidget) if wanted(w) and w.isVisibleTo(widget)]
        return found

    # -- history ----------------------------------------------------------------------

    def show_conversation(self, conversation: Conversation) -> None:
        """Rebuilds everything a conversation held, outputs and images included."""
        self.clear()
        for entry in timeline(conversation):
            if entry.type == "user":
                self.add_user_message(entry.text, entry.files)
            elif entry.type == "assistant":
                self._add(Bubble("assistant", entry.text))
            elif entry.type == "notice":
                self.add_notice(entry.text, error=entry.error)
            elif entry.type == "action":
                card = self._add(CodeCard(entry.text, action_id=entry.action["id"]))
                if getattr(entry, "edited", False):
                    card.mark_edited()
                self.cards[card.action_id] = card
                for out in entry.outputs:
                    if out.kind in ("stdout", "stderr"):
                        card.add_stored_output(out.kind, out.text, None)
                    elif (item := item_from_stored(out.kind, out.text, out.image, out.meta)) is not None:
                        card.add_item(item)  # whole, as it arrived: the same view as live
                card.set_status(entry.status, entry.action["seconds"])
