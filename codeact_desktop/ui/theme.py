"""Light, dark, or the OS's theme, for the whole application, applied live.

The style sheet (resources/styles/app.qss) takes its colours from the palette, plus a few
tones of its own (@error@, @muted@) chosen per theme so that text keeps a 4.5:1 contrast
(WCAG AA) on either background. Qt resolves palette() in a style sheet only when a widget
is polished, so a theme change sets the sheet again, which re-polishes everything drawn.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from ..resources import resource_path

COLOR_SCHEMES = {"system": Qt.ColorScheme.Unknown, "light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}
TONES = {
    # name: (on light, on dark)
    "error": ("#b3261e", "#f2b8b5"),
    "muted": ("#555a60", "#b0b3b8"),
    "ok": ("#1e6b34", "#8fd19e"),
}


def apply_theme(theme: str) -> None:
    """Light, dark, or whatever the OS says, to every widget, including those already drawn.

    Qt 6.8+ asks the platform for the scheme; where the platform ignores the request
    (X11 without a desktop theme), an explicit palette does the same job.
    """
    app = QApplication.instance()
    hints = QGuiApplication.styleHints()
    wanted = COLOR_SCHEMES.get(theme, Qt.ColorScheme.Unknown)
    if hasattr(hints, "setColorScheme"):
        hints.setColorScheme(wanted)
    if theme == "system" or hints.colorScheme() == wanted:
        app.setPalette(QPalette())  # nothing set: the platform's palette, which follows the OS
    else:
        app.setPalette(dark_palette() if theme == "dark" else app.style().standardPalette())
    app.setStyleSheet(stylesheet())


def follow_system(current_theme) -> None:
    """Re-applies the theme when the OS switches between light and dark, for "system"."""
    hints = QGuiApplication.styleHints()
    if hasattr(hints, "colorSchemeChanged"):
        hints.colorSchemeChanged.connect(lambda _scheme: current_theme() == "system" and apply_theme("system"))


def is_dark() -> bool:
    return QApplication.palette().window().color().lightness() < 128


def tone(name: str) -> str:
    """A tone's colour for the theme now in use."""
    light, dark = TONES[name]
    return dark if is_dark() else light


def stylesheet() -> str:
    text = resource_path("styles", "app.qss").read_text(encoding="utf-8")
    for name in TONES:
        text = text.replace(f"@{name}@", tone(name))
    return text


def set_tone(widget: QWidget, name: str) -> None:
    """Gives a widget one of the style sheet's tones ("" for none); re-polished at once."""
    widget.setProperty("tone", name)
    widget.style().unpolish(widget)
    widget.style().polish(widget)


def dark_palette() -> QPalette:
    palette = QPalette()
    colors = {
        QPalette.Window: "#2b2b2b", QPalette.WindowText: "#e6e6e6", QPalette.Base: "#1f1f1f",
        QPalette.AlternateBase: "#333333", QPalette.Text: "#e6e6e6", QPalette.Button: "#3a3a3a",
        QPalette.ButtonText: "#e6e6e6", QPalette.Highlight: "#3d6fb4", QPalette.HighlightedText: "#ffffff",
        QPalette.ToolTipBase: "#3a3a3a", QPalette.ToolTipText: "#e6e6e6", QPalette.PlaceholderText: "#8c8c8c",
        QPalette.Mid: "#555555", QPalette.Midlight: "#444444", QPalette.Dark: "#9a9a9a", QPalette.Link: "#8ab4f8",
        QPalette.Light: "#505050", QPalette.Shadow: "#111111", QPalette.BrightText: "#ffffff",
    }
    for role, color in colors.items():
        palette.setColor(role, QColor(color))
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        palette.setColor(QPalette.Disabled, role, QColor("#7a7a7a"))
    return palette
