"""The views of one action's outputs: streams, images (PNG, JPEG, SVG), formulas, tables,
Markdown, JSON, errors, each in a block with a small tool row (copy; show all; view full
size and save). ``output_view`` picks the view for an item by the type it shows
(``kernel.outputs.DISPLAY_PRIORITY``); whatever cannot be drawn shows as its text."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QPainter, QPixmap, QTextDocument
from PySide6.QtWidgets import (
    QAbstractScrollArea, QApplication, QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSizePolicy,
    QTextBrowser, QTextEdit, QVBoxLayout, QWidget,
)

from ..kernel.observation import strip_ansi
from ..kernel.outputs import OutputItem
from ..image_size import MAX_INLINE_PIXELS_PER_RUN
from ..kernel.tracebacks import summarize_error
from ..untrusted_markup import MAX_LAYOUT_COST, clean_html, html_layout_cost, markdown_cost, plain_text_html, text_only
from ..visible_text import for_display, for_terminal
from .fonts import mono_font
from .math_view import MathView
from .output_dialogs import ImageDialog, TextDialog, save_image
from .svg_image import ShownImage

__all__ = ["ImageDialog", "TextDialog", "mono_font", "save_image"]  # their home before they moved

COLLAPSE_LINES = 30
SHOWN_CHARS = 200_000  # drawn in one view; the whole stored text opens in a viewer
# Drawn in one card's text views together: shaping text costs the UI thread up to a second
# per 200,000 characters of mixed scripts, and a run may have 200 outputs (8 switching
# streams of them took 8.7 s at every opening).
CARD_SHOWN_CHARS = 400_000
TABLE_CSS = "table { border-collapse: collapse; } th, td { padding: 3px 10px; } th { font-weight: 600; }"
MAX_RICH_HEIGHT = 400  # px of a table or Markdown output; more scrolls inside it
MAX_IMAGE_WIDTH = 720  # a plot wider than this is scaled down even in a wide window
MIN_IMAGE_WIDTH = 120


def scrolls_further(area: QAbstractScrollArea, event) -> bool:
    """Whether a wheel event would move ``area`` itself: not when it cannot scroll that way
    (at its end, or its bar is off), so the chat scrolls instead of getting stuck."""
    delta = event.angleDelta()
    horizontal = abs(delta.x()) > abs(delta.y())
    bar = area.horizontalScrollBar() if horizontal else area.verticalScrollBar()
    policy = area.horizontalScrollBarPolicy() if horizontal else area.verticalScrollBarPolicy()
    step = delta.x() if horizontal else delta.y()
    if policy == Qt.ScrollBarAlwaysOff or bar.maximum() <= bar.minimum() or step == 0:
        return False
    return bar.value() > bar.minimum() if step > 0 else bar.value() < bar.maximum()


class PassesWheelAtEnd:
    """Mixin for views inside the chat: a wheel turn they cannot use scrolls the chat.
    Handed on explicitly: Qt propagates only spontaneous wheel events to parents."""

    def wheelEvent(self, event):  # noqa: N802
        if scrolls_further(self, event):
            super().wheelEvent(event)
            return
        outer = self.parentWidget()
        while outer is not None and not isinstance(outer, QAbstractScrollArea):
            outer = outer.parentWidget()
        if outer is None:
            event.ignore()
        else:
            QApplication.sendEvent(outer.viewport(), event)


def flash_done(button: QPushButton, text: str = "Copied ✓", ms: int = 1500) -> None:
    """Shows on the button that it did its job, then puts its text back."""
    if button.property("restText") is None:
        button.setProperty("restText", button.text())
    button.setText(text)
    QTimer.singleShot(ms, button, lambda: button.setText(button.property("restText")))


def tool_button(text: str, accessible: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName("outputTool")
    button.setAccessibleName(accessible)
    button.setFlat(True)
    button.setCursor(Qt.PointingHandCursor)
    return button


class StreamView(PassesWheelAtEnd, QPlainTextEdit):
    """stdout/stderr text; collapsed to COLLAPSE_LINES lines until the user asks for all."""

    grew = Signal()

    def __init__(self, name: str, parent=None):
        super().__init__(parent)
        self.name = name
        self.setReadOnly(True)
        self.setFont(mono_font())
        self.setFrameShape(QFrame.NoFrame)
        self.setObjectName(f"stream_{name}")
        self.setAccessibleName(f"{name} output")
        self.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.expanded = False
        self.truncated = False  # more arrived than is drawn
        self.full_text: str | None = None  # the stored (complete) text, once the action ends
        self._chars = 0

    def add(self, text: str, room: int = SHOWN_CHARS) -> int:
        """Appends text up to the view's cap (and ``room``, what its card has left); returns
        the characters drawn."""
        room = min(room, SHOWN_CHARS - self._chars)
        if not text or (self.truncated and room <= 0):
            return 0
        if len(text) > room:
            text = text[:max(0, room)] + "\n[… more: use “Open all” …]\n"
            self.truncated = True
        self._chars += len(text)
        cursor = self.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(for_display(strip_ansi(text)))
        self.fit()
        return len(text)

    @property
    def drawn_chars(self) -> int:
        return self._chars

    @property
    def lines(self) -> int:
        """Lines of text; the empty one after a final newline is not one."""
        document = self.document()
        return document.blockCount() - (1 if document.blockCount() > 1 and not document.lastBlock().text() else 0)

    def fit(self) -> None:
        shown = max(1, self.lines if self.expanded else min(self.lines, COLLAPSE_LINES))
        # All lines shown: no bar (the empty block after a final newline would make one
        # scroll a line, on every printed output).
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff if shown >= self.lines else Qt.ScrollBarAsNeeded)
        # Room for a horizontal scroll bar, so a long line does not hide the last one.
        bar = self.horizontalScrollBar().sizeHint().height() if self._wide() else 0
        margin = 2 * int(self.document().documentMargin()) + 2 * self.frameWidth()
        self.setFixedHeight(int(self.fontMetrics().lineSpacing() * shown) + margin + bar + 2)
        self.grew.emit()

    def _wide(self) -> bool:
        # The plain-text layout knows its widest line (its idealWidth() is -1).
        return self.document().documentLayout().documentSize().width() > self.viewport().width() > 0

    def resizeEvent(self, event):  # noqa: N802
        super().resizeEvent(event)
        # Fitted before the chat gave it a width, a long line's scroll bar took the last
        # line's room (a warning showed half its second line).
        if event.size().width() != event.oldSize().width():
            self.fit()

    def all_text(self) -> str:
        return strip_ansi(self.full_text) if self.full_text is not None else self.toPlainText()


class ImageView(QWidget):
    """A plot (PNG, JPEG or SVG) drawn at its own size, or scaled down to the column's width
    (never wider, so the chat never scrolls sideways); a click opens it at full size. It is
    decoded at the size it is drawn (``svg_image.ShownImage``), at full size only when asked."""

    def __init__(self, data: bytes, parent=None, cleaned: bool = False):
        super().__init__(parent)
        self.data = data
        screen = QGuiApplication.primaryScreen()
        self.image = ShownImage(data, screen.devicePixelRatio() if screen is not None else 1.0, cleaned)
        # Read now (at the width it is first drawn), so a broken image shows as its text
        self.readable = not self.image.pixmap(round(self.sizeHint().width() * self.image.ratio)).isNull()
        self.setAccessibleName("image output")
        self.setToolTip("Click to view at full size")
        self.setCursor(Qt.PointingHandCursor)
        self.setFocusPolicy(Qt.TabFocus)  # Enter or Space opens it, as a click does
        policy = QSizePolicy(QSizePolicy.Preferred, QSizePolicy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    @property
    def pixmap_full(self) -> QPixmap:
        return self.image.full()

    def natural_width(self) -> int:
        # An SVG is read at the screen's ratio; drawn at logical size.
        return max(1, int(self.image.size.width() / self.image.size_ratio))

    def sizeHint(self) -> QSize:  # noqa: N802
        if self.image.size.isEmpty():
            return QSize(0, 0)
        width = min(self.natural_width(), MAX_IMAGE_WIDTH)
        return QSize(width, self.heightForWidth(width))

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(min(MIN_IMAGE_WIDTH, self.sizeHint().width()), 0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        if self.image.size.isEmpty():
            return 0
        shown = min(width, self.natural_width(), MAX_IMAGE_WIDTH)
        return round(shown * self.image.size.height() / self.image.size.width())

    def shown_width(self) -> int:
        return min(self.width(), self.natural_width(), MAX_IMAGE_WIDTH)

    def paintEvent(self, event):  # noqa: N802
        width = self.shown_width()
        ratio = self.devicePixelRatioF()
        pixmap = self.image.pixmap(round(width * ratio))
        if pixmap.isNull():
            return
        pixmap.setDevicePixelRatio(ratio)
        painter = QPainter(self)
        painter.drawPixmap(0, 0, pixmap)
        if self.hasFocus():
            painter.setPen(self.palette().highlight().color())
            painter.drawRect(0, 0, width - 1, self.heightForWidth(width) - 1)

    def open_full_size(self) -> None:
        ImageDialog(self.data, self.window(), self.pixmap_full).open()

    def mousePressEvent(self, event):  # noqa: N802
        if event.button() == Qt.LeftButton:
            self.open_full_size()

    def keyPressEvent(self, event):  # noqa: N802
        if event.key() in (Qt.Key_Return, Qt.Key_Enter, Qt.Key_Space):
            self.open_full_size()
        else:
            super().keyPressEvent(event)


class ErrorView(QWidget):
    """An error: the exception and the failing line of the user's code first, in the error
    colour; the whole traceback below, collapsed until asked for."""

    def __init__(self, traceback_text: str, parent=None):
        super().__init__(parent)
        self.setObjectName("errorView")
        self.setAccessibleName("error output")
        summary = summarize_error(traceback_text)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        interrupted = summary.exception.startswith("KeyboardInterrupt")
        # A word-wrapped label lays out all it holds: 33 MB of frameless traceback took 73 s
        exception = summary.exception if len(summary.exception) <= 1000 else summary.exception[:999] + "…"
        self.exception_label = QLabel("Interrupted: the code was stopped before it finished." if interrupted
                                      else for_display(exception) or "The code failed.")
        # A Stop the user asked for is not shown as the code's own failure.
        self.exception_label.setObjectName("notice" if interrupted else "errorSummary")
        self.exception_label.setTextFormat(Qt.PlainText)  # the kernel wrote it
        self.exception_label.setWordWrap(True)
        self.exception_label.setTextInteractionFlags(Qt.TextSelectableByMouse | Qt.TextSelectableByKeyboard)
        layout.addWidget(self.exception_label)
        self.line_label = QLabel()
        self.line_label.setTextFormat(Qt.PlainText)
        self.line_label.setFont(mono_font())
        self.line_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        if summary.code_line:
            where = f"line {summary.line_number}: " if summary.line_number else ""
            code = summary.code_line.strip()
            self.line_label.setText(for_display(f"{where}{code if len(code) <= 120 else code[:119] + '…'}"))
        for label in (self.exception_label, self.line_label):
            label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)  # never wider than the card
        self.line_label.setVisible(bool(summary.code_line))
        layout.addWidget(self.line_label)
        self.traceback = StreamView("error")
        self.traceback.expanded = True  # all of it, once asked for
        self.traceback.add(traceback_text)
        self.traceback.hide()
        layout.addWidget(self.traceback)

    @property
    def lines(self) -> int:
        return self.traceback.lines

    def set_traceback_shown(self, shown: bool) -> None:
        self.traceback.setVisible(shown)

    def all_text(self) -> str:
        return self.traceback.all_text()


class ChatTextBrowser(PassesWheelAtEnd, QTextBrowser):
    """Rich text inside the chat (code, tables)."""


class FittedTextBrowser(ChatTextBrowser):
    """Rich text as tall as its layout at the width it is given (up to MAX_RICH_HEIGHT),
    worked out again when that width changes: laid out before the chat gave it a width, a
    paragraph was measured at the widget's default width and left a gap or was cut. A
    table is not wrapped to the width (a number broke over three lines): it scrolls."""

    def __init__(self, wrap: bool):
        super().__init__()
        self.setLineWrapMode(QTextEdit.WidgetWidth if wrap else QTextEdit.NoWrap)

    def fit_height(self) -> None:
        document = self.document()
        height = document.size().height() + 8
        if self.lineWrapMode() == QTextEdit.NoWrap and document.idealWidth() > self.viewport().width():
            height += self.horizontalScrollBar().sizeHint().height()
        self.setFixedHeight(int(min(MAX_RICH_HEIGHT, height)))

    def resizeEvent(self, event):  # noqa: N802
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self.fit_height()


def table_view(html: str, room: int = SHOWN_CHARS) -> QWidget:
    """An HTML output (a DataFrame's table), sanitized: the kernel wrote it. Too big to lay
    out at once, its text instead, rows on lines of their own."""
    clean = clean_html(html, pixels=MAX_INLINE_PIXELS_PER_RUN, boxes=False)  # no fake of the app's own card
    if html_layout_cost(clean) > MAX_LAYOUT_COST:
        return text_view(text_only(clean), room)
    return _rich_text_view(clean, "htmlOutput", "table output", TABLE_CSS, wrap=False)


def markdown_view(text: str, room: int = SHOWN_CHARS) -> QWidget:
    """A ``text/markdown`` output as rich text: its raw HTML shows as text, the rest is sanitized."""
    if markdown_cost(text) > MAX_LAYOUT_COST:
        return text_view(text, room)
    return _rich_text_view(safe_markdown_html(text), "markdownOutput", "markdown output")


def text_view(text: str, room: int = SHOWN_CHARS) -> StreamView:
    """Text in the plain view streams use: drawn up to its cap, all of it behind "Open all"."""
    view = StreamView("result")
    view.add(text, room)
    if view.truncated:
        view.full_text = text
    return view


def _rich_text_view(clean: str, name: str, accessible: str, css: str = "", wrap: bool = True) -> QTextBrowser:
    """Sanitized rich text, as tall as it is (up to MAX_RICH_HEIGHT). Links are not followed
    inside the view (that would load a local file into it)."""
    view = FittedTextBrowser(wrap)
    view.setObjectName(name)
    view.setAccessibleName(accessible)
    view.setOpenLinks(False)
    view.document().setDefaultStyleSheet(css)
    view.setHtml(clean)
    view.setFrameShape(QFrame.NoFrame)
    view.document().adjustSize()
    view.fit_height()
    return view


def safe_markdown_html(text: str) -> str:
    """Markdown as rich text: raw HTML in it stays text (Qt's own Markdown reader without
    HTML), and what remains is sanitized, so no local file is shown as an image. Markdown
    too big to read and lay out at once is shown as its text."""
    if markdown_cost(text) > MAX_LAYOUT_COST:
        return plain_text_html(text)
    document = QTextDocument()
    document.setMarkdown(text, QTextDocument.MarkdownFeatures(
        QTextDocument.MarkdownDialectGitHub | QTextDocument.MarkdownNoHTML))
    return clean_html(document.toHtml(), pixels=MAX_INLINE_PIXELS_PER_RUN)


def output_view(item: OutputItem, room: int = SHOWN_CHARS) -> QWidget:
    """The view of a finished display or error, by the type it shows; shown as text, at
    most ``room`` characters of it are drawn."""
    if item.kind == "error":
        return ErrorView("\n".join(item.traceback) or item.text or f"{item.ename}: {item.evalue}")
    if item.kind == "image" and item.data:
        # An SVG of a kernel's bundle was cleaned as it arrived; one made by hand is cleaned here.
        view = ImageView(item.data, cleaned=item.mime == "image/svg+xml" and bool(item.bundle))
        if view.readable:
            return view
        view.deleteLater()  # a broken image: its text instead
    elif item.kind == "html":
        return table_view(item.text, room)
    elif item.mime == "text/latex":
        return MathView(item.text, item.plain)
    elif item.mime == "text/markdown":
        return markdown_view(item.text, room)
    return text_view(item.plain if item.kind == "image" else item.text, room)


class OutputBlock(QWidget):
    """One output and its tools, right-aligned above it."""

    def __init__(self, view: QWidget, parent=None):
        super().__init__(parent)
        self.view = view
        self.setObjectName("outputBlock")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 0)
        layout.setSpacing(0)
        self.tools = QHBoxLayout()
        self.tools.setContentsMargins(0, 0, 0, 0)
        self.tools.addStretch(1)
        layout.addLayout(self.tools)
        layout.addWidget(view)
        self.copy_button = self._tool("Copy", "copy output", self.copy)
        self.show_all_button: QPushButton | None = None
        if isinstance(view, StreamView):
            self.show_all_button = self._tool("Show all", "show all output", self.show_all)
            view.grew.connect(self._update_show_all)
            self._update_show_all()
        elif isinstance(view, ErrorView):
            self.show_all_button = self._tool(f"Show traceback ({view.lines} lines)", "show traceback",
                                              self.toggle_traceback)
        elif isinstance(view, ImageView):
            self._tool("View", "view image full size", view.open_full_size)
            self._tool("Save as…", "save image", lambda: save_image(view.data, self))

    def _tool(self, text: str, accessible: str, slot) -> QPushButton:
        button = tool_button(text, accessible)
        button.clicked.connect(slot)
        self.tools.addWidget(button)
        return button

    def _update_show_all(self) -> None:
        view = self.view
        hidden = not view.expanded and view.lines > COLLAPSE_LINES
        if view.truncated:
            self.show_all_button.setText("Open all")
        elif hidden:
            self.show_all_button.setText(f"Show all {view.lines} lines")
        self.show_all_button.setVisible(hidden or view.truncated)

    def toggle_traceback(self) -> None:
        shown = not self.view.traceback.isVisible()
        self.view.set_traceback_shown(shown)
        self.show_all_button.setText("Hide traceback" if shown else f"Show traceback ({self.view.lines} lines)")

    def show_all(self) -> None:
        view = self.view
        if view.truncated:
            TextDialog(f"{view.name} output", view.all_text(), self.window()).open()
            return
        view.expanded = True
        view.fit()

    def copy(self) -> None:
        view, clipboard = self.view, QGuiApplication.clipboard()
        flash_done(self.copy_button)
        # What is pasted into a terminal or a document holds no escape sequence, control or
        # bidi character (``\x1b[201~`` ends a terminal's bracketed paste: what follows runs),
        # and its HTML flavour is cleaned again (Qt's own export once broke out of a font name).
        if isinstance(view, (StreamView, ErrorView)):
            clipboard.setText(for_terminal(view.all_text()))
        elif isinstance(view, ImageView):
            clipboard.setPixmap(view.pixmap_full)
        elif isinstance(view, MathView):
            clipboard.setText(for_terminal(view.latex))  # the source: it pastes into a paper or a notebook
        elif isinstance(view, QTextBrowser):
            mime = QMimeData()
            mime.setHtml(clean_html(view.toHtml()))
            mime.setText(for_terminal(view.toPlainText()))
            clipboard.setMimeData(mime)
