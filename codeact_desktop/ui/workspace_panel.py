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

from ..agent.attachments import human_size
from ..store.history import Conversation


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

    def __init__(self, parent=None):
        super().__init__(parent)
        self.save_failed.connect(lambda text: QMessageBox.warning(self, "Could not save", text))
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
            missing = "" if path.exists() else " · deleted"
            item = QListWidgetItem(f"{row['path']}\n{human_size(row['size'])} · {origin}{missing}")
            item.setData(Qt.UserRole, str(path))
            item.setToolTip(str(path))
            if missing:
                item.setForeground(Qt.gray)
            self.list.addItem(item)
            if selected and str(path) == str(selected):
                item.setSelected(True)
        self.empty.setVisible(not rows)
        self.title.setText(f"<b>Files</b> ({len(rows)})" if rows else "<b>Files</b>")
        self._update_buttons()

    def selected_path(self) -> Path | None:
        items = self.list.selectedItems()
        return Path(items[0].data(Qt.UserRole)) if items else None

    def _update_buttons(self) -> None:
        path = self.selected_path()
        for button in (self.open_button, self.reveal_button, self.save_button):
            button.setEnabled(path is not None and path.exists())

    def open_selected(self) -> None:
        path = self.selected_path()
        if path is not None and path.exists():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    def reveal_selected(self) -> None:
        path = self.selected_path()
        if path is not None and path.exists():
            reveal_in_file_manager(path)

    def save_selected(self) -> None:
        path = self.selected_path()
        if path is None or not path.exists():
            return
        target, _ = QFileDialog.getSaveFileName(self, "Save as", str(Path.home() / path.name))
        if not target:
            return

        def work():  # a large file must not freeze the window
            try:
                (shutil.copytree if path.is_dir() else shutil.copy2)(path, target)
            except OSError as exc:
                self.save_failed.emit(f"{path.name} could not be saved: {exc}")

        threading.Thread(target=work, name="save-file", daemon=True).start()
