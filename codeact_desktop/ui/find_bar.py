"""Find in conversation (Ctrl+F): a bar above the chat; Enter and Shift+Enter go to the
next and previous match, which is selected and scrolled into view; Esc closes it."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QTextCursor, QTextDocument
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton, QTextEdit, QWidget

from shiboken6 import isValid

from .chat_view import ChatView


@dataclass
class Match:
    """One place the searched text was found: the widget and where in its text."""

    widget: QWidget
    start: int
    length: int


def plain_text(widget: QWidget) -> str:
    if isinstance(widget, (QTextEdit, QPlainTextEdit)):
        return widget.toPlainText()
    document = QTextDocument()
    document.setHtml(widget.text()) if widget.textFormat() != Qt.PlainText else document.setPlainText(widget.text())
    return document.toPlainText()


def find_all(chat: ChatView, needle: str) -> list[Match]:
    needle = needle.casefold()
    if not needle:
        return []
    matches = []
    for widget in chat.searchable():
        text = plain_text(widget).casefold()
        start = text.find(needle)
        while start >= 0:
            matches.append(Match(widget, start, len(needle)))
            start = text.find(needle, start + len(needle))
    return matches


def unselect(widget: QWidget) -> None:
    if not isValid(widget):  # the conversation was switched: the widget is gone
        return
    if isinstance(widget, (QTextEdit, QPlainTextEdit)):
        cursor = widget.textCursor()
        cursor.clearSelection()
        widget.setTextCursor(cursor)
    else:
        widget.setSelection(0, 0)


def select(match: Match) -> None:
    widget = match.widget
    if isinstance(widget, (QTextEdit, QPlainTextEdit)):
        cursor = widget.textCursor()
        cursor.setPosition(match.start)
        cursor.setPosition(match.start + match.length, QTextCursor.KeepAnchor)
        widget.setTextCursor(cursor)
        widget.ensureCursorVisible()
    else:
        widget.setSelection(match.start, match.length)


class FindBar(QWidget):
    """The bar above the chat that finds text in the conversation and steps through the matches."""

    closed = Signal()

    def __init__(self, chat: ChatView, parent=None):
        super().__init__(parent)
        self.chat = chat
        self.setObjectName("findBar")
        self.matches: list[Match] = []
        self.index = -1
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 4, 16, 4)
        self.field = FindField(placeholderText="Find in conversation")
        self.field.setAccessibleName("find in conversation")
        self.field.textChanged.connect(self.search)
        self.field.next_requested.connect(self.step)
        self.count = QLabel()
        self.count.setObjectName("hint")
        self.count.setAccessibleName("matches")
        previous = QPushButton("↑")
        previous.setAccessibleName("previous match")
        previous.setToolTip("Previous match (Shift+Enter)")
        previous.clicked.connect(lambda: self.step(-1))
        following = QPushButton("↓")
        following.setAccessibleName("next match")
        following.setToolTip("Next match (Enter)")
        following.clicked.connect(lambda: self.step(1))
        close = QPushButton("Close")
        close.setAccessibleName("close find")
        close.clicked.connect(self.close_bar)
        for widget in (self.field, self.count, previous, following, close):
            layout.addWidget(widget, 1 if widget is self.field else 0)
        self.hide()

    def open_bar(self) -> None:
        self.show()
        self.field.setFocus(Qt.ShortcutFocusReason)
        self.field.selectAll()
        self.search()

    def close_bar(self) -> None:
        self._unmark()
        self.hide()
        self.closed.emit()

    def _unmark(self) -> None:
        """The match shown last is no longer selected: no stale highlight stays behind."""
        if 0 <= self.index < len(self.matches):
            unselect(self.matches[self.index].widget)

    def search(self) -> None:
        self._unmark()
        self.matches = find_all(self.chat, self.field.text())
        self.index = -1
        if self.matches:
            self.step(1)
        else:
            self.count.setText("no matches" if self.field.text() else "")

    def step(self, direction: int) -> None:
        if not self.matches:
            return
        self._unmark()
        self.index = (self.index + direction) % len(self.matches)
        match = self.matches[self.index]
        select(match)
        self.chat.ensureWidgetVisible(match.widget, 0, 60)
        self.count.setText(f"{self.index + 1} of {len(self.matches)}")

    def keyPressEvent(self, event):  # noqa: N802
        if event.key() == Qt.Key_Escape:
            self.close_bar()
        else:
            super().keyPressEvent(event)


class FindField(QLineEdit):
    """The bar's text field: Enter asks for the next match, Shift+Enter the previous one."""

    next_requested = Signal(int)  # +1 or -1

    def keyPressEvent(self, event):  # noqa: N802
        if event.key() in (Qt.Key_Return, Qt.Key_Enter):
            self.next_requested.emit(-1 if event.modifiers() & Qt.ShiftModifier else 1)
        elif event.key() == Qt.Key_Escape:
            event.ignore()  # the bar closes
        else:
            super().keyPressEvent(event)
