"""The Help menu's pages: getting started, keyboard shortcuts, where the data lives, and
what code can and cannot do. All offline: the texts ship in resources/help."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from ..kernel.sandbox import SandboxReport
from ..paths import AppPaths
from ..resources import resource_path

# Shortcuts that are not menu actions, so the list cannot read them from the menus.
OTHER_SHORTCUTS = (
    ("Enter / Shift+Enter", "Send the message / add a line"),
    ("Tab / Shift+Tab", "Move to the next / previous control"),
    ("Alt+R / Alt+E / Alt+S", "Run / edit / skip code waiting for approval"),
    ("Ctrl+Enter", "Run edited code"),
    ("Delete", "Delete the selected conversation (in the list)"),
)


def help_dialog(parent: QWidget, title: str, html: str, extra: list[QPushButton] = ()) -> QDialog:
    dialog = QDialog(parent)
    dialog.setObjectName("helpDialog")
    dialog.setWindowTitle(title)
    dialog.resize(640, 560)
    view = QTextBrowser()
    view.setAccessibleName(title)
    view.setOpenLinks(False)  # nothing here leaves the app
    view.setHtml(html)
    buttons = QDialogButtonBox(QDialogButtonBox.Close)
    for button in extra:
        buttons.addButton(button, QDialogButtonBox.ActionRole)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(view)
    layout.addWidget(buttons)
    dialog.open()
    return dialog


def markdown_page(name: str, extra: str = "") -> str:
    view = QTextBrowser()
    view.setMarkdown(resource_path("help", name).read_text(encoding="utf-8") + extra)
    return view.toHtml()


def show_getting_started(parent) -> QDialog:
    return help_dialog(parent, "Getting started", markdown_page("getting-started.md"))


def shortcut_rows(actions: list[QAction]) -> list[tuple[str, str]]:
    rows = []
    for act in actions:
        keys = " or ".join(k.toString(k.SequenceFormat.NativeText) for k in act.shortcuts())
        if keys and act.text():
            rows.append((keys, act.text().replace("&", "").rstrip("…")))
    return sorted(set(rows), key=lambda row: row[1].lower()) + list(OTHER_SHORTCUTS)


def show_shortcuts(parent, actions: list[QAction]) -> QDialog:
    body = "".join(f"<tr><td><b>{escape(keys)}</b></td><td>{escape(what)}</td></tr>"
                   for keys, what in shortcut_rows(actions))
    html = f"<h2>Keyboard shortcuts</h2><table cellpadding='4'>{body}</table>"
    return help_dialog(parent, "Keyboard shortcuts", html)


def show_data_places(parent, paths: AppPaths) -> QDialog:
    places = (
        ("Conversations (history)", paths.history_db),
        ("Each conversation's files", paths.workspaces),
        ("Models you downloaded", paths.models),
        ("Settings", paths.settings_file),
        ("Everything above", paths.data),
    )
    rows = "".join(f"<tr><td>{escape(what)}</td><td><code>{escape(str(where))}</code></td></tr>"
                   for what, where in places)
    html = ("<h2>Where your data is</h2><p>Everything stays on this computer. Deleting a conversation "
            "removes its messages and its folder; uninstalling the app leaves this folder in place.</p>"
            f"<table cellpadding='4'>{rows}</table>")
    open_folder = QPushButton("Open data folder")
    open_folder.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.data))))
    return help_dialog(parent, "Where your data is", html, [open_folder])


def show_restrictions(parent, report: SandboxReport | None) -> QDialog:
    extra = ""
    if report is not None:  # after the plain words, for whoever wants the layers by name
        state = ("All restrictions are in force here:" if not report.missing else
                 f"**Code here runs {report.why_not()}; each piece waits for your approval.**")
        layers = "".join(f"- {layer}\n" for layer in [*report.layers, report.limits])
        extra = f"\n\n### In this conversation\n\n{state}\n\n{layers}"
    return help_dialog(parent, "What code can and cannot do", markdown_page("restrictions.md", extra))
