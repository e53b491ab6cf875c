"""An output's image bytes as a pixmap: PNG and JPEG decoded, SVG drawn by QtSvg.

The SVG of an output was cleaned when it arrived (``untrusted_markup.clean_svg``: no
script, no reference outside itself); bytes from anywhere else are cleaned here before
QtSvg reads them (cleaning costs ~0.3 s a megabyte, so an output's are not cleaned twice).
Either is drawn no larger than MAX_DRAWN_PX a side, whatever size it claims, and not at all
when it would draw more than MAX_DRAWN_ELEMENTS elements (``untrusted_markup.drawn_elements``:
nested ``<use>`` in 3 KB took 63 s of the UI thread). The cleaning refuses those since
stop 24; an output stored before then is counted here.
"""

from __future__ import annotations

import itertools

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QSize, Qt
from PySide6.QtGui import QImageReader, QPainter, QPixmap, QPixmapCache
from PySide6.QtSvg import QSvgRenderer

from ..kernel.outputs import image_type
from ..untrusted_markup import MAX_DRAWN_ELEMENTS, clean_svg, drawn_elements

MAX_DRAWN_PX = 2400
DEFAULT_SVG_SIZE = QSize(480, 360)  # an SVG that gives no size of its own
def svg_renderer(data: bytes, cleaned: bool = False) -> QSvgRenderer | None:
    """A renderer for the SVG, cleaned unless it was already; None when it cannot be drawn."""
    try:
        cleaned = data.decode("utf-8") if cleaned else clean_svg(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    if cleaned is None or (drawn_elements(cleaned) or MAX_DRAWN_ELEMENTS + 1) > MAX_DRAWN_ELEMENTS:
        return None
    renderer = QSvgRenderer(QByteArray(cleaned.encode("utf-8")))
    return renderer if renderer.isValid() else None


def drawn_size(natural: QSize) -> QSize:
    """The size an SVG is drawn at: its own, within MAX_DRAWN_PX a side, its shape kept."""
    if natural.isEmpty():
        natural = DEFAULT_SVG_SIZE
    if natural.width() > MAX_DRAWN_PX or natural.height() > MAX_DRAWN_PX:
        natural = natural.scaled(MAX_DRAWN_PX, MAX_DRAWN_PX, Qt.KeepAspectRatio)
    return QSize(max(1, natural.width()), max(1, natural.height()))


def image_pixmap(data: bytes, ratio: float = 1.0, cleaned: bool = False) -> QPixmap:
    """The image as a pixmap (null when it cannot be read); an SVG at ``ratio`` device pixels
    a point. ``cleaned``: an output's SVG, cleaned when it arrived."""
    if image_type(data) != "svg":
        pixmap = QPixmap()
        pixmap.loadFromData(data, "PNG" if image_type(data) == "png" else "JPEG")
        return pixmap
    renderer = svg_renderer(data, cleaned)
    if renderer is None:
        return QPixmap()
    size = drawn_size(renderer.defaultSize())
    pixmap = QPixmap(size * ratio)
    pixmap.fill(Qt.white)  # plots assume paper; a transparent one is unreadable on a dark theme
    painter = QPainter(pixmap)
    renderer.render(painter)
    painter.end()
    pixmap.setDevicePixelRatio(ratio)
    return pixmap


# Drawn images are kept in Qt's pixmap cache at the size they are shown, not in each view:
# a view holding its image decoded at full size kept up to 64 million pixels a run (256 MB)
# for as long as the conversation was open. The cache holds what is on screen, decoded
# again from the bytes when it is needed after being dropped.
SHOWN_IMAGES_KB = 96 * 1024
_keys = itertools.count()


class ShownImage:
    """An output's image, read once for its size and drawn at the width asked for."""

    def __init__(self, data: bytes, ratio: float = 1.0, cleaned: bool = False):
        self.data, self.ratio, self.cleaned = data, ratio, cleaned
        self._key = f"codeact-image-{next(_keys)}-"
        self._renderer = None
        if image_type(data) == "svg":
            self._renderer = svg_renderer(data, cleaned)
            natural = drawn_size(self._renderer.defaultSize()) if self._renderer is not None else QSize()
            self.size, self.size_ratio = natural * ratio, ratio  # device pixels, drawn sharp
        else:
            buffer = self._buffer()  # held while the reader reads: it does not own it
            self.size, self.size_ratio = QImageReader(buffer).size(), 1.0
        if QPixmapCache.cacheLimit() < SHOWN_IMAGES_KB:
            QPixmapCache.setCacheLimit(SHOWN_IMAGES_KB)

    def _buffer(self) -> QBuffer:
        buffer = QBuffer()
        buffer.setData(QByteArray(self.data))
        buffer.open(QIODevice.ReadOnly)
        return buffer

    def pixmap(self, width: int) -> QPixmap:
        """The image ``width`` device pixels wide (null when it cannot be read)."""
        if self.size.isEmpty():
            return QPixmap()
        width = max(1, width)
        height = max(1, round(width * self.size.height() / self.size.width()))
        key = f"{self._key}{width}"
        found = QPixmapCache.find(key)
        if found is not None and not found.isNull():
            return found
        if self._renderer is not None:
            pixmap = QPixmap(width, height)
            pixmap.fill(Qt.white)  # plots assume paper, as in image_pixmap
            painter = QPainter(pixmap)
            self._renderer.render(painter)
            painter.end()
        else:
            buffer = self._buffer()
            reader = QImageReader(buffer)
            reader.setScaledSize(QSize(width, height))
            pixmap = QPixmap.fromImage(reader.read())
        if not pixmap.isNull():
            QPixmapCache.insert(key, pixmap)
        return pixmap

    def full(self) -> QPixmap:
        """The image at its own size (for the full-size dialog and the clipboard; not kept)."""
        return image_pixmap(self.data, self.ratio, self.cleaned)
