"""One code action as a card: highlighted code, a status, approval buttons, outputs."""

from __future__ import annotations

import time

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget,
)

from ..action_status import ActionStatus
from ..kernel.outputs import OutputItem
from ..code_warnings import code_warnings, lookalike_names
from ..visible_text import for_code_view
from .output_views import (CARD_SHOWN_CHARS, ChatTextBrowser, ErrorView, OutputBlock, StreamView, flash_done,
                           mono_font, output_view)
from .theme import is_dark, set_tone

# The card's own two states before the engine's (action_status.py) begin.
WRITING, WAITING = "writing", "waiting"
STATUS_TEXT = {
    WRITING: "writing…", WAITING: "waiting for approval", ActionStatus.PROPOSED: "proposed",
    ActionStatus.RUNNING: "running", ActionStatus.OK: "done", ActionStatus.ERROR: "error",
    ActionStatus.TIMEOUT: "timed out", ActionStatus.TIMEOUT_RESTARTED: "timed out, kernel restarted",
    ActionStatus.DIED: "kernel died, restarted", ActionStatus.CANCELLED: "interrupted",
    ActionStatus.SKIPPED: "skipped", ActionStatus.CUT_OFF: "cut off, not run",
    ActionStatus.OVER_LIMIT: "not run (limit)", ActionStatus.REPEATED: "not run (the same code failed)",
    ActionStatus.INTERRUPTED: "stopped when the app closed",
}


def _failed(status: str) -> bool:
    known = ActionStatus.of(status)
    return known is not None and known.failed


def highlighted_html(code: str, marked: set[str] = frozenset()) -> str:
    """``marked``: letters to mark wherever they stand (those that make a name pass for another)."""
    formatter = HtmlFormatter(noclasses=True, nowrap=True, style="monokai" if is_dark() else "default")
    body = highlight(code, PythonLexer(), formatter)
    mark = "#7a2626" if is_dark() else "#ffc9c9"
    for letter in marked:
        body = body.replace(letter, f"<span style='background-color:{mark}'>{letter}</span>")
    # Long lines wrap: nothing of the code waits out of sight behind a scroll bar (a call
    # put 300 spaces to the right of a harmless one would).
    return f"<pre style='margin:0; white-space:pre-wrap'>{body}</pre>"


class CodeEditor(QPlainTextEdit):
    """The code of an approval card, being edited; Ctrl+Enter runs it."""

    run_requested = Signal()

    def __init__(self, code: str, font, parent=None):
        super().__init__(code, parent)
        self.setObjectName("codeEditor")
        self.setAccessibleName("code editor")
        self.setFont(font)
        self.setTabChangesFocus(False)  # code is indented with Tab; Ctrl+Tab leaves

    def keyPressEvent(self, event):  # noqa: N802
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and event.modifiers() & Qt.ControlModifier:
            self.run_requested.emit()
            return
        super().keyPressEvent(event)


class CodeCard(QFrame):
    """One code action in the chat: its code, highlighted; its status and time; the Run,
    Edit and Skip buttons while it waits for approval; and its outputs as they arrive."""

    decided = Signal(str, bool, object)  # action id, run?, the user's edited code or None

    def __init__(self, code: str = "", parent=None, *, action_id: str = ""):
        """``action_id``: empty while the model is still writing the code (``set_action``)."""
        super().__init__(parent)
        self.choice = ""
        self.setObjectName("codeCard")
        self.setFrameShape(QFrame.StyledPanel)
        self.action_id = action_id
        self.status: str = WRITING
        self._started: float | None = None
        self.streams: dict[str, StreamView] = {}
        self._last_stream: StreamView | None = None
        self._room = CARD_SHOWN_CHARS  # characters its text views may still draw

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        header = QHBoxLayout()
        title = QLabel("<b>Python</b>")
        self.edited_label = QLabel("edited by you")
        self.edited_label.setObjectName("editedMark")
        self.edited_label.setAccessibleName("edited by you")
        set_tone(self.edited_label, "muted")
        self.edited_label.hide()
        self.status_label = QLabel(STATUS_TEXT[WRITING])
        self.status_label.setObjectName("status")
        self.status_label.setAccessibleName("action status")
        copy = QPushButton("Copy code")
        copy.setAccessibleName("copy code")
        copy.clicked.connect(lambda: (QGuiApplication.clipboard().setText(self.shown_code),
                                      flash_done(copy, "Copied ✓")))
        self.copy_button = copy
        header.addWidget(title)
        header.addWidget(self.edited_label)
        header.addStretch(1)
        header.addWidget(self.status_label)
        header.addWidget(copy)
        layout.addLayout(header)
        self.odd_characters = QLabel()
        self.odd_characters.setObjectName("oddCharacters")
        self.odd_characters.setTextFormat(Qt.PlainText)
        self.odd_characters.setWordWrap(True)
        set_tone(self.odd_characters, "error")
        self.odd_characters.hide()
        layout.addWidget(self.odd_characters)

        self.code_view = ChatTextBrowser()
        self.code_view.setObjectName("code")
        self.code_view.setAccessibleName("code")
        self.code_view.setFont(mono_font())
        self.code_view.setFrameShape(QFrame.NoFrame)
        self.code_view.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.code_view.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.code_view.installEventFilter(self)  # its height follows its width (wrapped lines)
        layout.addWidget(self.code_view)

        self.approval_bar = QWidget()
        bar = QHBoxLayout(self.approval_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        # Alt+R, Alt+E, Alt+S press them from anywhere in the window.
        self.run_button = QPushButton("&Run")
        self.edit_button = QPushButton("&Edit")
        self.skip_button = QPushButton("&Skip")
        for button, tip in ((self.run_button, "Run this code (Alt+R)"),
                            (self.edit_button, "Change the code before it runs (Alt+E)"),
                            (self.skip_button, "Do not run it; the model is told (Alt+S)")):
            button.setAccessibleName(f"{button.text().strip('&').lower()} action")
            button.setToolTip(tip)
            button.setAutoDefault(True)  # Enter presses the focused one
            bar.addWidget(button)
        self.approval_hint = QLabel("Alt+R run · Alt+E edit · Alt+S skip")
        self.approval_hint.setObjectName("hint")
        bar.addWidget(self.approval_hint)
        bar.addStretch(1)
        self.approval_bar.hide()
        self.run_button.clicked.connect(self._run_clicked)
        self.edit_button.clicked.connect(self._edit_clicked)
        self.skip_button.clicked.connect(lambda: self._decide(False, None))
        layout.addWidget(self.approval_bar)
        self.editor: QPlainTextEdit | None = None

        self.outputs = QVBoxLayout()
        layout.addLayout(self.outputs)
        self._tick = QTimer(self)
        self._tick.setInterval(200)
        self._tick.timeout.connect(self._show_elapsed)
        self.set_code(code)

    # -- code and status ------------------------------------------------------------

    def set_action(self, action_id: str, code: str) -> None:
        """The action this card shows, once the model has finished writing its code."""
        self.action_id = action_id
        self.set_code(code)

    def set_code(self, code: str) -> None:
        """``code`` runs; what is drawn, copied and edited is ``shown_code``, the same code with
        its invisible and reordering characters made visible (``for_code_view``)."""
        self.code = code
        self.shown_code = for_code_view(code)[0]
        names = lookalike_names(code)  # once: it parses the code, at every tick while the model writes it
        warnings = code_warnings(code, names)
        self.odd_characters.setText("\n".join(warnings))
        self.odd_characters.setVisible(bool(warnings))
        lookalike_letters = {c for name in names for c in name if not c.isascii()}
        self.code_view.setHtml(highlighted_html(self.shown_code, lookalike_letters))
        self._fit_code(self.code_view.width())

    def _fit_code(self, width: int) -> None:
        """As tall as the code is at this width: every line drawn, none cut off."""
        document = self.code_view.document()
        document.setTextWidth(max(width - 2 * self.code_view.frameWidth(), 80))
        self.code_view.setFixedHeight(int(document.size().height()) + 2 * self.code_view.frameWidth() + 4)

    def eventFilter(self, watched, event):  # noqa: N802
        if watched is self.code_view and event.type() == QEvent.Resize \
                and event.size().width() != event.oldSize().width():
            self._fit_code(event.size().width())
        return super().eventFilter(watched, event)

    def set_status(self, status: str, seconds: float | None = None) -> None:
        self.status = status
        text = STATUS_TEXT.get(status, status)
        if status == ActionStatus.RUNNING:
            self._started = time.monotonic()
            self._tick.start()
        else:
            self._tick.stop()
            if seconds:
                text += f" · {seconds:.1f} s"
        self.status_label.setText(text)
        set_tone(self.status_label, "error" if _failed(status) else "")

    def _show_elapsed(self) -> None:
        if self._started is not None:
            self.status_label.setText(f"running · {time.monotonic() - self._started:.1f} s")

    # -- approval ---------------------------------------------------------------------

    def ask_approval(self, take_focus: bool = True) -> None:
        self.set_status(WAITING)
        self.approval_bar.show()
        if take_focus:
            self.run_button.setFocus(Qt.OtherFocusReason)

    def _edit_clicked(self) -> None:
        self.editor = CodeEditor(self.shown_code, self.code_view.font())
        self.editor.run_requested.connect(self._run_clicked)
        self.code_view.hide()
        self.layout().insertWidget(self.layout().indexOf(self.code_view), self.editor)
        self.edit_button.setEnabled(False)
        self.run_button.setText("&Run edited")
        self.approval_hint.setText("Ctrl+Enter or Alt+R runs your version · Alt+S skips")
        self.run_button.setToolTip("Run the edited code (Ctrl+Enter or Alt+R)")
        # Into the editor: left on the disabled Edit button, focus would move on to Skip,
        # and the next Enter would skip the code.
        self.editor.setFocus(Qt.OtherFocusReason)

    def _run_clicked(self) -> None:
        edited = None
        if self.editor is not None:
            edited = self.editor.toPlainText()
            self.editor.deleteLater()
            self.editor = None
            self.set_code(edited)
            self.code_view.show()
            self.mark_edited()
        self._decide(True, edited)

    def mark_edited(self) -> None:
        self.edited_label.show()

    def _decide(self, run: bool, edited: str | None) -> None:
        self.approval_bar.hide()
        self.choice = "run (edited)" if edited is not None else ("run" if run else "skipped")
        self.decided.emit(self.action_id, run, edited)

    # -- outputs ----------------------------------------------------------------------

    def add_stream(self, name: str, text: str) -> int:
        """Appends live output; returns the characters actually drawn."""
        view = self._last_stream if self._last_stream is not None and self._last_stream.name == name else None
        if view is None:
            view = StreamView(name)
            if name == "stderr":
                set_tone(view, "error")
            self._add_output(view)
            self._last_stream = view
            self.streams.setdefault(name, view)
        drawn = view.add(text, self._room)
        self._room -= drawn
        return drawn

    def add_item(self, item: OutputItem) -> None:
        """A completed item; stream text already arrived live through ``add_stream``."""
        if item.kind in ("stdout", "stderr"):
            # The stored text (head and tail of up to a megabyte) backs "Open all": streams
            # end in the order their views began, so it is the first of its name not ended.
            view = next((v for v in self.findChildren(StreamView)
                         if v.name == item.kind and v.full_text is None), None)
            if view is not None:
                view.full_text = item.text
            return
        self._last_stream = None
        view = output_view(item, self._room)  # the view for the type the bundle shows
        if isinstance(view, StreamView):
            self._room -= view.drawn_chars  # as add_stream counts
        self._add_output(view)

    def add_stored_output(self, kind: str, text: str, image: bytes | None) -> None:
        """Rebuilds an output from the history."""
        if kind in ("stdout", "stderr"):
            self.add_stream(kind, text)
            self.add_item(OutputItem(kind=kind, text=text))
        elif kind == "image" and image:
            self.add_item(OutputItem(kind="image", data=image))
        elif kind == "error":
            self._add_error(text)  # the history keeps the joined traceback
        else:
            self.add_item(OutputItem(kind="html" if kind == "html" else "text", text=text))

    def _add_output(self, view: QWidget) -> OutputBlock:
        block = OutputBlock(view)
        self.outputs.addWidget(block)
        return block

    def _add_error(self, text: str) -> None:
        self._last_stream = None
        self._add_output(ErrorView(text))

    def restyle(self) -> None:
        """After a theme or text-size change: highlighting and heights follow."""
        self.set_code(self.code)
        for view in self.findChildren(StreamView):
            view.fit()
