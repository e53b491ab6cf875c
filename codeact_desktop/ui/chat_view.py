"""The conversation as a column of messages and code cards, driven by engine events.

Streamed text is buffered and drawn by a 50 ms timer, so 200 pieces a second cost 20
relayouts, not 200; code output is drawn at most DRAW_CHARS_PER_TICK characters a tick.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QTextDocument
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from ..agent import events as ev
from ..agent.actions import OPEN, parse_reply
from ..agent.attachments import human_size
from ..agent.timeline import timeline
from ..store.history import Conversation
from ..untrusted_markup import clean_html
from ..visible_text import visible_name
from .code_card import CodeCard

FLUSH_MS = 50
DRAW_CHARS_PER_TICK = 32_000  # about 4 ms of QPlainTextEdit work


def safe_markdown_html(text: str) -> str:
    """A reply's Markdown as rich text: raw HTML in it stays text (Qt's own Markdown reader
    without HTML), and what remains is sanitized, so no local file is shown as an image."""
    document = QTextDocument()
    document.setMarkdown(text, QTextDocument.MarkdownFeatures(
        QTextDocument.MarkdownDialectGitHub | QTextDocument.MarkdownNoHTML))
    return clean_html(document.toHtml())


def open_link(url: str) -> bool:
    """Opens web and mail links in the user's browser; any other kind (file:, a program's
    scheme) is not opened from text a model wrote."""
    if QUrl(url).scheme().lower() in ("http", "https", "mailto"):
        QDesktopServices.openUrl(QUrl(url))
        return True
    return False


class Bubble(QLabel):
    def __init__(self, role: str, text: str = "", parent=None):
        super().__init__(parent)
        self.role = role
        self.setObjectName(f"{role}Message")
        self.setAccessibleName(f"{role} message")
        self.setWordWrap(True)
        self.setTextFormat(Qt.RichText)
        self.setTextInteractionFlags(Qt.TextBrowserInteraction)
        self.setOpenExternalLinks(False)
        self.linkActivated.connect(open_link)
        self.linkHovered.connect(self.setToolTip)  # where a link goes, before it is clicked
        self.set_markdown(text)

    def set_markdown(self, text: str) -> None:
        self.markdown = text
        self.setText(safe_markdown_html(text))
        # Only once placed in the chat: showing a parentless widget opens a window.
        if self.parent() is not None:
            self.setVisible(bool(text.strip()))


def file_chips(files: list[dict]) -> QWidget:
    """The files sent with a message, as a row of chips under it."""
    row = QWidget()
    row.setObjectName("chipRow")
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addStretch(1)
    for f in files:
        chip = QLabel(f"{visible_name(f['name'])} · {human_size(f['size'])}")
        chip.setTextFormat(Qt.PlainText)
        chip.setObjectName("chip")
        chip.setAccessibleName(f"attached file {f['name']}")
        layout.addWidget(chip)
    return row


class ChatView(QScrollArea):
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
        self.empty_hint = QLabel(
            "<h3>What can I do for you?</h3>"
            "<p>Ask in plain words; I write and run Python to do it, and show you each step.</p>"
            "<p><i>“Plot column B against A in sales.csv” · “Resize these photos to 1024 px” ·"
            " “What is the 50th Fibonacci number?”</i></p>")
        self.empty_hint.setObjectName("emptyHint")
        self.empty_hint.setAlignment(Qt.AlignCenter)
        self.empty_hint.setWordWrap(True)
        self._column.insertWidget(0, self.empty_hint)
        self.setWidget(self._inner)
        # Follow new content while the user is at the bottom; stay put if they scrolled up.
        self._stick_to_bottom = True
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(lambda v: setattr(self, "_stick_to_bottom", v >= bar.maximum() - 24))
        bar.rangeChanged.connect(lambda lo, hi: bar.setValue(hi) if self._stick_to_bottom else None)
        self.cards: dict[str, CodeCard] = {}
        self._reply_text = ""
        self._reply_bubble: Bubble | None = None
        self._pending_card: CodeCard | None = None
        self._stream_buffer: list[tuple[str, str, str]] = []
        self._flush = QTimer(self)
        self._flush.setInterval(FLUSH_MS)
        self._flush.timeout.connect(lambda: self._draw_pending(limited=True))
        self._flush.start()

    # -- building blocks ------------------------------------------------------------

    def _add(self, widget: QWidget) -> QWidget:
        self.empty_hint.hide()
        self._column.insertWidget(self._column.count() - 1, widget)
        return widget

    def scroll_to_end(self) -> None:
        self._stick_to_bottom = True
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def clear(self) -> None:
        while self._column.count() > 2:  # keep the hint and the stretch
            item = self._column.takeAt(1)
            if item.widget():
                item.widget().hide()  # at once: deletion waits for the event loop
                item.widget().deleteLater()
        self.empty_hint.show()
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
        label.setObjectName("errorNotice" if error else "notice")
        label.setWordWrap(True)
        return self._add(label)

    # -- live events ------------------------------------------------------------------

    def handle(self, event) -> None:
        if isinstance(event, ev.TextPiece):
            self._reply_text += event.text
        elif isinstance(event, ev.OutputStream):
            self._stream_buffer.append((event.action_id, event.name, event.text))
        elif isinstance(event, ev.ReplyDone):
            self._end_reply(event.text)
        elif isinstance(event, ev.ActionProposed):
            card = self._pending_card or self._add(CodeCard(event.code))
            self._pending_card = None
            card.action_id = event.action_id
            card.set_code(event.code)
            self.cards[event.action_id] = card
        elif isinstance(event, ev.ActionStarted):
            card = self.cards[event.action_id]
            card.set_code(event.code)
            card.set_status("running")
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
                self.add_notice("Stopped.")
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
                action_id, name, text = batch[0]
                if len(text) > budget:
                    batch[0] = (action_id, name, text[int(budget):])
                    text = text[:int(budget)]
                else:
                    batch.pop(0)
                card = self.cards.get(action_id)
                if card is not None:
                    budget -= card.add_stream(name, text)  # text past the card's cap costs nothing

    def _end_reply(self, history_text: str) -> None:
        thought = parse_reply(history_text).thought
        if thought and self._reply_bubble is None:
            self._reply_bubble = self._add(Bubble("assistant"))
        if self._reply_bubble is not None:
            self._reply_bubble.set_markdown(thought)
        self._reply_text = ""
        self._reply_bubble = None

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
                card = self._add(CodeCard(entry.text))
                card.action_id = entry.action["id"]
                self.cards[card.action_id] = card
                for out in entry.outputs:
                    card.add_stored_output(out.kind, out.text, out.image)
                card.set_status(entry.status, entry.action["seconds"])
