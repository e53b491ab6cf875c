"""Under the chat: what the user can do with the last turn (regenerate, edit, cancel the
edit), the files waiting to go, and the message box with Attach, Send and Stop."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from .attachment_tray import AttachmentTray
from .status_bar import small_button

PLACEHOLDER = "Ask for something — Enter sends, Shift+Enter adds a line; drop files to attach"


class InputBox(QPlainTextEdit):
    """Enter sends; Shift+Enter breaks the line; Tab moves on to the next control."""

    submitted = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTabChangesFocus(True)

    def keyPressEvent(self, event):  # noqa: N802 (Qt naming)
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and not event.modifiers() & Qt.ShiftModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class TurnControls(QWidget):
    """The message box and the buttons around it; says what the user asked for, and shows
    what the window's policy (``show_state``) allows."""

    send_requested = Signal()
    stop_requested = Signal()
    attach_requested = Signal()
    regenerate_requested = Signal()
    edit_requested = Signal()
    cancel_edit_requested = Signal()

    def __init__(self, tray: AttachmentTray, parent=None):
        super().__init__(parent)
        self.tray = tray
        self.turn_bar = QWidget()
        turn = QHBoxLayout(self.turn_bar)
        turn.setContentsMargins(16, 0, 16, 0)
        self.edit_hint = QLabel("Editing your last message: sending replaces it and everything after it.")
        self.edit_hint.setObjectName("notice")
        self.edit_hint.setWordWrap(True)  # its line is not to set the window's least width (800 px)
        self.edit_hint.hide()  # shown while editing (show_state)
        self.cancel_edit_button = small_button("Cancel edit", "cancel edit", self.cancel_edit_requested)
        self.cancel_edit_button.hide()
        self.regenerate_button = small_button("↻ Regenerate", "regenerate answer", self.regenerate_requested)
        self.edit_button = small_button("✎ Edit last message", "edit last message", self.edit_requested)
        turn.addWidget(self.edit_hint)
        turn.addWidget(self.cancel_edit_button)
        turn.addStretch(1)
        turn.addWidget(self.edit_button)
        turn.addWidget(self.regenerate_button)

        self.input = InputBox()
        self.input.setObjectName("input")
        self.input.setAccessibleName("message input")
        self.input.setPlaceholderText(PLACEHOLDER)
        self.input.setFixedHeight(84)
        self.input.submitted.connect(self.send_requested)
        self.attach_button = QPushButton("Attach…")
        self.attach_button.setToolTip("Attach files (Ctrl+O)")
        self.attach_button.setAccessibleName("attach files")
        self.attach_button.clicked.connect(self.attach_requested)
        self.send_button = QPushButton("Send")
        self.send_button.setAccessibleName("send")
        self.send_button.clicked.connect(self.send_requested)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop_requested)

        row = QHBoxLayout()
        row.setContentsMargins(16, 0, 16, 0)
        row.addWidget(self.attach_button, 0, Qt.AlignTop)
        row.addWidget(self.input, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        row.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.turn_bar)
        layout.addWidget(tray)
        layout.addLayout(row)

    def show_state(self, has_conversation: bool, busy: bool, has_turn: bool, editing: bool,
                   model_ready: bool = True) -> None:
        """Enables and shows what makes sense now (while the model loads, the message can be
        typed but not sent)."""
        copying = self.tray.copying
        self.send_button.setEnabled(not busy and not copying and has_conversation and model_ready)
        self.send_button.setToolTip("Wait for the files to finish copying" if copying else
                                    "" if model_ready else "The model is still loading")
        self.stop_button.setEnabled(busy)
        self.regenerate_button.setVisible(has_turn and not editing)
        self.edit_button.setVisible(has_turn and not editing)
        self.edit_hint.setVisible(editing)
        self.cancel_edit_button.setVisible(editing)
        self.turn_bar.setVisible(has_turn or editing)
