"""The views of one action's outputs: streams, images, tables, errors, each in a block
with a small tool row (copy; show all; view full size and save)."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication, QPixmap
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton,
    QScrollArea, QTextBrowser, QVBoxLayout, QWidget,
)

from ..kernel.observation import strip_ansi
from ..untrusted_markup import clean_html

COLLAPSE_LINES = 30
SHOWN_CHARS = 200_000  # drawn in the card; the whole stored text opens in a viewer
TABLE_CSS = "table { border-collapse: collapse; } th, td { padding: 3px 10px; } th { font-weight: 600; }"
ERROR_COLOR = "color: #b3261e;"


def mono_font():
    return QFontDatabase.systemFont(QFontDatabase.FixedFont)


def tool_button(text: str, accessible: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName("outputTool")
    button.setAccessibleName(accessible)
    button.setFlat(True)
    button.setCursor(Qt.PointingHandCursor)
    return button


class StreamView(QPlainTextEdit):
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

    def add(self, text: str) -> int:
        """Appends text up to the card's cap; returns the characters drawn."""
        room = SHOWN_CHARS - self._chars
        if room <= 0:
            self.truncated = True
            return 0
        if len(text) > room:
            text = text[:room] + "\n[… more: use “Open all” …]\n"
            self.truncated = True
        self._chars += len(text)
        cursor = self.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(strip_ansi(text))
        self.fit()
        return len(text)

    @property
    def lines(self) -> int:
        return self.document().blockCount()

    def fit(self) -> None:
        shown = self.lines if self.expanded else min(self.lines, COLLAPSE_LINES)
        self.setFixedHeight(int(self.fontMetrics().lineSpacing() * (shown + 1)) + 8)
        self.grew.emit()

    def all_text(self) -> str:
        return strip_ansi(self.full_text) if self.full_text is not None else self.toPlainText()


class ImageView(QLabel):
    """A plot scaled to at most 720 px wide; a click opens it at full size."""

    def __init__(self, data: bytes, parent=None):
        super().__init__(parent)
        self.data = data
        self.pixmap_full = QPixmap()
        self.pixmap_full.loadFromData(data)
        self.setAccessibleName("image output")
        self.setToolTip("Click to view at full size")
        self.setCursor(Qt.PointingHandCursor)
        if not self.pixmap_full.isNull():
            width = max(50, min(self.pixmap_full.width(), 720))
            self.setPixmap(self.pixmap_full.scaledToWidth(width, Qt.SmoothTransformation))

    def mousePressEvent(self, event):  # noqa: N802
        if event.button() == Qt.LeftButton:
            ImageDialog(self.data, self.window()).open()


def save_image(data: bytes, parent) -> str:
    path, _ = QFileDialog.getSaveFileName(parent, "Save image", "plot.png", "PNG image (*.png)")
    if path:
        with open(path, "wb") as out:
            out.write(data)
    return path


class ImageDialog(QDialog):
    """The image at 100 %, scrollable, with Save as and Copy."""

    def __init__(self, data: bytes, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Image")
        self.setAttribute(Qt.WA_DeleteOnClose)
        pixmap = QPixmap()
        pixmap.loadFromData(data)
        label = QLabel()
        label.setPixmap(pixmap)
        label.setAccessibleName("full-size image")
        scroll = QScrollArea()
        scroll.setWidget(label)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        save = buttons.addButton("Save as…", QDialogButtonBox.ActionRole)
        copy = buttons.addButton("Copy", QDialogButtonBox.ActionRole)
        save.clicked.connect(lambda: save_image(data, self))
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setPixmap(pixmap))
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll)
        layout.addWidget(buttons)
        screen = QGuiApplication.primaryScreen().availableSize()
        self.resize(min(pixmap.width() + 40, int(screen.width() * 0.9)),
                    min(pixmap.height() + 80, int(screen.height() * 0.9)))


class TextDialog(QDialog):
    """All of a long output, in a viewer that copes with a megabyte of text."""

    def __init__(self, title: str, text: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setAttribute(Qt.WA_DeleteOnClose)
        view = QPlainTextEdit(text)
        view.setReadOnly(True)
        view.setFont(mono_font())
        view.setLineWrapMode(QPlainTextEdit.NoWrap)
        view.setAccessibleName("full output")
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(view)
        layout.addWidget(buttons)
        self.resize(900, 640)


def table_view(html: str) -> QTextBrowser:
    """An HTML output (a DataFrame's table), sanitized: the kernel wrote it. Links are not
    followed inside the view (that would load a local file into it)."""
    table = QTextBrowser()
    table.setObjectName("htmlOutput")
    table.setAccessibleName("table output")
    table.setOpenLinks(False)
    table.document().setDefaultStyleSheet(TABLE_CSS)
    table.setHtml(clean_html(html))
    table.setFrameShape(QFrame.NoFrame)
    table.document().adjustSize()
    table.setFixedHeight(int(min(400, table.document().size().height() + 8)))
    return table


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
        elif isinstance(view, ImageView):
            self._tool("View", "view image full size", lambda: ImageDialog(view.data, self.window()).open())
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

    def show_all(self) -> None:
        view = self.view
        if view.truncated:
            TextDialog(f"{view.name} output", view.all_text(), self.window()).open()
            return
        view.expanded = True
        view.fit()

    def copy(self) -> None:
        view, clipboard = self.view, QGuiApplication.clipboard()
        if isinstance(view, StreamView):
            clipboard.setText(view.all_text())
        elif isinstance(view, ImageView):
            clipboard.setPixmap(view.pixmap_full)
        elif isinstance(view, QTextBrowser):
            mime = QMimeData()
            mime.setHtml(view.toHtml())
            mime.setText(view.toPlainText())
            clipboard.setMimeData(mime)
