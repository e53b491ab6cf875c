"""The viewers an output opens: an image at full size (save, copy), all of a long text."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFileDialog, QLabel, QPlainTextEdit, QScrollArea, QVBoxLayout

from ..kernel.outputs import image_type
from ..paths import save_suggestion
from .fonts import mono_font
from .svg_image import image_pixmap

_SAVE_AS = {"png": ("plot.png", "PNG image (*.png)"), "jpeg": ("image.jpg", "JPEG image (*.jpg *.jpeg)"),
            "svg": ("plot.svg", "SVG image (*.svg)")}


def save_image(data: bytes, parent) -> str:
    """Saves the image's own bytes (the SVG as the cleaned text the window drew)."""
    name, kinds = _SAVE_AS[image_type(data)]
    path, _ = QFileDialog.getSaveFileName(parent, "Save image", str(save_suggestion(name)), kinds)
    if path:
        with open(path, "wb") as out:
            out.write(data)
    return path


class ImageDialog(QDialog):
    """The image at 100 %, scrollable, with Save as and Copy."""

    def __init__(self, data: bytes, parent=None, pixmap: QPixmap | None = None):
        super().__init__(parent)
        self.setWindowTitle("Image")
        self.setAttribute(Qt.WA_DeleteOnClose)
        pixmap = pixmap if pixmap is not None else image_pixmap(data)  # the view's own, where it has one
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
