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

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QPainter, QPixmap
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
