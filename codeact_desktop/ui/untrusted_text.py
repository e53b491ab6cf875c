"""Untrusted text (a file name, a server's model id or error, the kernel's words) in the
Qt widgets that guess a text's format: shown as the text it is.

QMessageBox, QLabel and tooltips take a text for rich text when its start looks like HTML
(``Qt::mightBeRichText``). At stop 30 a file name drew a green "no threat found" and a
live link over the app's own warning, and a server's model id a fake isolation badge in
the status bar."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def plain_tip(text: str) -> str:
    """A tooltip that shows ``text`` as it is: escaped inside rich text of the app's own."""
    return "<qt>" + escape(text).replace("\n", "<br>") + "</qt>" if text else ""


def plain_box(parent: QWidget, icon: QMessageBox.Icon, title: str, text: str,
              buttons: QMessageBox.StandardButton = QMessageBox.Ok) -> QMessageBox:
    """A message box whose text is plain, not yet shown."""
    box = QMessageBox(icon, title, "", buttons, parent)
    box.setTextFormat(Qt.PlainText)
    box.setText(text)
    return box


def show_message(parent: QWidget, title: str, text: str, warning: bool = False) -> QMessageBox:
    """A message box (not modal to the app: it does not hold the caller) whose text is plain."""
    box = plain_box(parent, QMessageBox.Warning if warning else QMessageBox.Information, title, text)
    box.setAttribute(Qt.WA_DeleteOnClose)
    box.open()
    return box
