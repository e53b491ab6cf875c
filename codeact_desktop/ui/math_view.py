"""A ``text/latex`` output (sympy's results) shown as the formula, drawn by matplotlib's
mathtext on one worker thread: a long formula takes seconds to draw, and the UI thread
never waits for it. Until it is drawn, and when it cannot be (a matrix, a macro mathtext
lacks, input over the caps), the output's plain-text twin shows.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication, QPalette, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy

from ..kernel.latex_image import latex_png, math_source
from .fonts import mono_font
from .untrusted_text import plain_tip

DPI = 110  # at a device ratio of 1: about the chat's text size
_pool: ThreadPoolExecutor | None = None


def _drawing_pool() -> ThreadPoolExecutor:
    """One thread for every formula (mathtext draws one at a time), dropped at quit."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mathtext")
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(lambda: _pool.shutdown(wait=False, cancel_futures=True))
    return _pool


class _Delivery(QObject):
    """Carries a drawing from the worker to the view, on the view's thread."""

    done = Signal(object)  # PNG bytes or None


class MathView(QLabel):
    """The formula as an image once drawn; its plain text before, and if it cannot be."""

    rendered = Signal(bool)  # drawn as a formula (True) or left as text (False)

    def __init__(self, latex: str, plain: str = "", parent=None):
        super().__init__(parent)
        self.latex = latex
        self.setObjectName("mathOutput")
        self.setAccessibleName("formula output")
        self.setTextFormat(Qt.PlainText)  # the kernel wrote it
        self.setFont(mono_font())
        self.setText(plain or latex)
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)  # never wider than the card
        self.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.drawn: bool | None = None  # None while drawing
        self._delivery = _Delivery(self)
        self._delivery.done.connect(self._show)
        screen = QGuiApplication.primaryScreen()
        self._ratio = screen.devicePixelRatio() if screen is not None else 1.0
        if math_source(latex) is None:
            self.drawn = False
            return
        self._draw()

    def _draw(self) -> None:
        color = self.palette().color(QPalette.WindowText).name()  # the theme's text colour
        future = _drawing_pool().submit(latex_png, self.latex, round(DPI * self._ratio), color)
        future.add_done_callback(self._deliver)

    def restyle(self) -> None:
        """After a theme change: drawn again in the new text colour."""
        if self.drawn:
            self.drawn = None
            self._draw()

    def _deliver(self, future: Future) -> None:
        """On the worker thread: hands the result over (the view may be gone by now)."""
        try:
            png = None if future.cancelled() or future.exception() else future.result()
            self._delivery.done.emit(png)
        except RuntimeError:  # the view was deleted while its formula was drawn
            pass

    def _show(self, png: bytes | None) -> None:
        pixmap = QPixmap()
        if png and pixmap.loadFromData(png, "PNG"):
            pixmap.setDevicePixelRatio(self._ratio)
            self.setPixmap(pixmap)
            self.setWordWrap(False)
            self.setFixedHeight(round(pixmap.height() / self._ratio) + 4)
            self.setToolTip(plain_tip(self.latex[:500]))
            self.drawn = True
        else:
            self.drawn = False
        self.rendered.emit(bool(self.drawn))
