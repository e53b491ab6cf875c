"""The window's menus as one table: what each item says, which window method it calls,
its shortcut, and the attribute name tests and code reach it by."""

from __future__ import annotations

from typing import NamedTuple

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow


class MenuItem(NamedTuple):
    """One row of the menu table: where it goes, its text, the window method it calls, its shortcut."""

    menu: str
    text: str | None  # None: a separator
    slot: str = ""  # a method of the window, called with no arguments
    shortcut: str | tuple[str, ...] = ""
    name: str = ""  # set on the window as an attribute (and the action's object name)
    checkable: bool = False


def _separator(menu: str) -> MenuItem:
    return MenuItem(menu, None)


MENUS: list[MenuItem] = [
    MenuItem("&File", "New conversation", "new_conversation", "Ctrl+N"),
    MenuItem("&File", "Attach files…", "pick_files", "Ctrl+O"),
    MenuItem("&File", "Attach a folder…", "pick_folder"),
    _separator("&File"),
    MenuItem("&File", "Models…", "show_models"),
    MenuItem("&File", "Use a model file (.gguf)…", "pick_model"),
    MenuItem("&File", "Export conversation…", "export_current", "Ctrl+E"),
    _separator("&File"),
    MenuItem("&File", "Settings…", "open_settings", "Ctrl+,"),
    MenuItem("&File", "Quit", "close", "Ctrl+Q"),
    MenuItem("&Conversation", "Stop", "escape", "Esc", "stop_action"),
    MenuItem("&Conversation", "Regenerate answer", "regenerate", "Ctrl+R"),
    MenuItem("&Conversation", "Edit last message", "edit_last", "Ctrl+Shift+E"),
    _separator("&Conversation"),
    MenuItem("&Conversation", "Rename…", "rename_conversation", "F2"),
    MenuItem("&Conversation", "Delete…", "delete_conversation"),
    _separator("&Conversation"),
    MenuItem("&Conversation", "Restart kernel…", "restart_kernel"),
    MenuItem("&View", "Focus the input", "focus_input", "Ctrl+L"),
    MenuItem("&View", "Find in conversation…", "open_find_bar", "Ctrl+F"),
    _separator("&View"),
    MenuItem("&View", "Larger text", "zoom_in", ("Ctrl++", "Ctrl+=")),  # "+" needs Shift on many layouts
    MenuItem("&View", "Smaller text", "zoom_out", "Ctrl+-"),
    MenuItem("&View", "Actual size", "zoom_reset", "Ctrl+0"),
    _separator("&View"),
    MenuItem("&View", "Files panel", "toggle_files_panel", "Ctrl+Shift+F", "files_action", checkable=True),
    MenuItem("&Help", "Getting started", "show_getting_started", "F1"),
    MenuItem("&Help", "Keyboard shortcuts", "show_shortcuts"),
    MenuItem("&Help", "Where your data is", "show_data_places"),
    MenuItem("&Help", "What code can and cannot do", "show_restrictions"),
    _separator("&Help"),
    MenuItem("&Help", "Open log folder", "open_log_folder", "", "log_folder_action"),
    MenuItem("&Help", "Copy diagnostic report", "copy_diagnostic_report", "", "diagnostic_action"),
    _separator("&Help"),
    MenuItem("&Help", "About CodeAct Desktop", "show_about", "", "about_action"),
]


def build_menus(window: QMainWindow, items: list[MenuItem] = MENUS) -> dict[str, QAction]:
    """Adds the menus to ``window``'s menu bar; returns the named actions (also set on the
    window under their names)."""
    menus, named = {}, {}
    for item in items:
        menu = menus.get(item.menu) or menus.setdefault(item.menu, window.menuBar().addMenu(item.menu))
        if item.text is None:
            menu.addSeparator()
            continue
        action = QAction(item.text, window)
        shortcuts = (item.shortcut,) if isinstance(item.shortcut, str) else item.shortcut
        action.setShortcuts([QKeySequence(s) for s in shortcuts if s])
        action.setCheckable(item.checkable)
        slot = getattr(window, item.slot)
        action.triggered.connect(lambda checked=False, slot=slot: slot())
        menu.addAction(action)
        if item.name:
            action.setObjectName(item.name)
            setattr(window, item.name, action)
            named[item.name] = action
    return named
