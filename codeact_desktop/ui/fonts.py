"""The fonts the chat's outputs use."""

from __future__ import annotations

from PySide6.QtGui import QFont, QFontDatabase


def mono_font() -> QFont:
    """The system's fixed-width family, size left unset: it follows the chat's text size."""
    font = QFont()
    font.setFamilies([QFontDatabase.systemFont(QFontDatabase.FixedFont).family()])
    font.setStyleHint(QFont.TypeWriter)
    return font
