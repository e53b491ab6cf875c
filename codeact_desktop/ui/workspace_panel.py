"""The conversation's files: what the user gave and what the code made, newest first,
with open, reveal in the file manager, and save as."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMessageBox, QPushButton, QVBoxLayout,
    QWidget,
)

from .. import no_follow
from ..agent.attachments import human_size
from ..agent.workspace import why_not_open
from ..store.history import Conversation
from ..visible_text import visible_name


def reveal_in_file_manager(path: Path) -> None:
    """Shows the file selected in Finder / Explorer; elsewhere opens its folder."""
    if sys.platform == "darwin":
        subprocess.Popen(["open", "-R", str(path)])
    elif sys.platform == "win32":
        subprocess.Popen(["explorer", "/select,", str(path)])
    else:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))


def workspace_files(conversation: Conversation) -> list[dict]:
    """One row per path (its latest record), newest first, with the action's number."""
    numbers = {a["id"]: n for n, a in enumerate(conversation.actions(), start=1)}
    latest: dict[str, dict] = {}
    for row in conversation.files():
        latest[row["path"]] = dict(row, action_number=numbers.get(row["action_id"]))
    return sorted(latest.values(), key=lambda r: r["id"], reverse=True)


class WorkspacePanel(QWidget):
    save_failed = Signal(str)
    open_refused = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.save_failed.connect(lambda text: QMessageBox.warning(self, "Could not save", text))
        self.open_refused.connect(lambda text: QMessageBox.information(self, "Not opened", text))
        self.setObjectName("workspacePanel")
        self.conversation: Conversation | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        self.title = QLabel("<b>Files</b>")
        layout.addWidget(self.title)
        self.list = QListWidget()
        self.list.setAccessibleName("workspace files")
        self.list.setWordWrap(True)
        self.list.itemDoubleClicked.connect(lambda _: self.open_selected())
        self.list.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.list, 1)
        self.empty = QLabel("Files you drop and files the code writes appear here.")
        self.empty.setObjectName("notice")
        self.empty.setWordWrap(True)
        layout.addWidget(self.empty)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open")
        self.reveal_button = QPushButton("Show in folder")
        self.save_button = QPushButton("Save as…")
        for button, slot, name in ((self.open_button, self.open_selected, "open file"),
                                   (self.reveal_button, self.reveal_selected, "show file in folder"),
                                   (self.save_button, self.save_selected, "save file as")):
            button.setAccessibleName(name)
            button.clicked.connect(slot)
            row.addWidget(button)
        layout.addLayout(row)
        self._update_buttons()

    def show_conversation(self, conversation: Conversation | None) -> None:
        self.conversation = conversation
        self.refresh()

    def refresh(self) -> None:
        selected = self.selected_path()
        self.list.clear()
        if self.conversation is None:
            return
        rows = workspace_files(self.conversation)
        for row in rows:
            path = Path(self.conversation.workspace) / row["path"]
            origin = "you added it" if row["origin"] == "uploaded" else (
                f"from action {row['action_number']}" if row["action_number"] else "made by code")
            kind = no_follow.kind(self.conversation.workspace, row["path"])
            missing = {"file": "", "folder": "", "missing": " · deleted"}.get(kind, " · a link, not followed")
            item = QListWidgetItem(f"{visible_name(row['path'])}\n{human_size(row['size'])} · {origin}{missing}")
            item.setData(Qt.UserRole, row["path"])
            item.setToolTip(visible_name(str(path)))
            if missing:
                item.setForeground(Qt.gray)
            self.list.addItem(item)
            if selected and str(path) == str(selected):
                item.setSelected(True)
        self.empty.setVisible(not rows)
        self.title.setText(f"<b>Files</b> ({len(rows)})" if rows else "<b>Files</b>")
        self._update_buttons()

    def selected_path(self) -> Path | None:
        """The selected entry's absolute path (for display and the file manager)."""
        relative = self.selected_relative()
        return Path(self.conversation.workspace) / relative if relative is not None else None

    def selected_relative(self) -> str | None:
        items = self.list.selectedItems()
        return items[0].data(Qt.UserRole) if items and self.conversation is not None else None

    def _selected_kind(self) -> str:
        relative = self.selected_relative()
        return no_follow.kind(self.conversation.workspace, relative) if relative is not None else "missing"

    def _update_buttons(self) -> None:
        plain = self._selected_kind() in ("file", "folder")
        for button in (self.open_button, self.reveal_button, self.save_button):
            button.setEnabled(plain)

    def open_selected(self) -> None:
        relative = self.selected_relative()
        if relative is None:
            return
        refused = why_not_open(self.conversation.workspace, relative)
        if refused:
            self.open_refused.emit(refused)
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.selected_path())))

    def reveal_selected(self) -> None:
        if self._selected_kind() in ("file", "folder"):
            reveal_in_file_manager(self.selected_path())

    def save_selected(self) -> None:
        relative, kind = self.selected_relative(), self._selected_kind()
        if relative is None or kind not in ("file", "folder"):
            return
        workspace, name = Path(self.conversation.workspace), Path(relative).name
        target, _ = QFileDialog.getSaveFileName(self, "Save as", str(Path.home() / name))
        if not target:
            return

        def work():  # a large file must not freeze the window
            try:
                if kind == "folder":  # links inside stay links: nothing outside is copied through them
                    shutil.copytree(workspace / relative, target, symlinks=True)
                else:
                    no_follow.copy_out(workspace, relative, Path(target))
            except OSError as exc:
                self.save_failed.emit(f"{visible_name(name)} could not be saved: {exc}")

        threading.Thread(target=work, name="save-file", daemon=True).start()
