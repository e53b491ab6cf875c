"""Light, dark, or the OS's theme, for the whole application."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

COLOR_SCHEMES = {"system": Qt.ColorScheme.Unknown, "light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}


def apply_theme(theme: str) -> None:
    """Light, dark, or whatever the OS says.

    Qt 6.8+ asks the platform for the scheme; where the platform ignores the request
    (X11 without a desktop theme), an explicit palette does the same job.
    """
    app = QApplication.instance()
    hints = QGuiApplication.styleHints()
    wanted = COLOR_SCHEMES.get(theme, Qt.ColorScheme.Unknown)
    if hasattr(hints, "setColorScheme"):
        hints.setColorScheme(wanted)
    if not hasattr(app, "_codeact_system_palette"):
        app._codeact_system_palette = app.palette()
    if theme == "system" or hints.colorScheme() == wanted:
        app.setPalette(app._codeact_system_palette)
    else:
        app.setPalette(dark_palette() if theme == "dark" else app.style().standardPalette())


def dark_palette() -> QPalette:
    palette = QPalette()
    colors = {
        QPalette.Window: "#2b2b2b", QPalette.WindowText: "#e6e6e6", QPalette.Base: "#1f1f1f",
        QPalette.AlternateBase: "#333333", QPalette.Text: "#e6e6e6", QPalette.Button: "#3a3a3a",
        QPalette.ButtonText: "#e6e6e6", QPalette.Highlight: "#3d6fb4", QPalette.HighlightedText: "#ffffff",
        QPalette.ToolTipBase: "#3a3a3a", QPalette.ToolTipText: "#e6e6e6", QPalette.PlaceholderText: "#8c8c8c",
        QPalette.Mid: "#555555", QPalette.Midlight: "#444444", QPalette.Dark: "#9a9a9a", QPalette.Link: "#8ab4f8",
    }
    for role, color in colors.items():
        palette.setColor(role, QColor(color))
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        palette.setColor(QPalette.Disabled, role, QColor("#7a7a7a"))
    return palette
