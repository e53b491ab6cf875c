"""The conversations on the left: a New button, a search box and the list.

The search asks the history once per pause in typing (one query, off the UI thread); an
answer that comes back after the user typed on is dropped, so the list always matches
the box."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QLineEdit, QListWidget, QListWidgetItem, QMenu, QPushButton, QVBoxLayout, QWidget

from ..store.history import HistoryStore
from .background import BackgroundWork
from .untrusted_text import plain_tip

SEARCH_PAUSE_MS = 150  # typing this fast is one search, not one per keystroke


class ConversationSidebar(QWidget):
    """Lists the conversations, newest first, filtered by the search box, and says which
    one the user picked or wants renamed, exported or deleted."""

    new_requested = Signal()
    chosen = Signal(str)  # conversation id
    rename_requested = Signal()
    export_requested = Signal()
    delete_requested = Signal()
    searched = Signal()  # a search's answer is shown (for tests and the status bar)

    def __init__(self, store: HistoryStore, background: BackgroundWork, parent=None):
        super().__init__(parent)
        self.setObjectName("sidebar")
        self.store, self.background = store, background
        self.current_id: str | None = None
        self._generation = 0  # bumped by every refresh: older search answers are stale
        layout = QVBoxLayout(self)
        self.new_button = QPushButton("New conversation")
        self.new_button.setAccessibleName("new conversation")
        self.new_button.clicked.connect(self.new_requested)
        self.search = QLineEdit(placeholderText="Search conversations")
        self.search.setAccessibleName("search conversations")
        self._pause = QTimer(self, singleShot=True, interval=SEARCH_PAUSE_MS)
        self._pause.timeout.connect(self.refresh)
        self.search.textChanged.connect(self._typed)
        self.conversation_list = QListWidget()
        self.conversation_list.setAccessibleName("conversations")
        self.conversation_list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.conversation_list.setTextElideMode(Qt.ElideRight)
        self.conversation_list.itemSelectionChanged.connect(self._selected)
        self.conversation_list.setContextMenuPolicy(Qt.CustomContextMenu)
        self.conversation_list.customContextMenuRequested.connect(self._context_menu)
        QShortcut(QKeySequence.Delete, self.conversation_list, context=Qt.WidgetShortcut,
                  activated=self.delete_requested.emit)
        layout.addWidget(self.new_button)
        layout.addWidget(self.search)
        layout.addWidget(self.conversation_list)
        self.setMinimumWidth(150)

    def _typed(self) -> None:
        self._generation += 1  # an answer already on its way is for older text
        self._pause.start()

    def refresh(self) -> None:
        """Shows the conversations again: at once without a search (one indexed query, and
        a rename or delete must show before the next keystroke), on the pool with one."""
        self._pause.stop()
        self._generation += 1
        needle = self.search.text().strip()
        if not needle:
            self._show(self.store.list_conversations())
            return
        generation = self._generation
        self.background.run("search", lambda: self.store.search_conversations(needle),
                            lambda rows: self._answered(generation, rows))

    def _answered(self, generation: int, rows: list[dict]) -> None:
        if generation == self._generation:
            self._show(rows)
            self.searched.emit()

    def _show(self, rows: list[dict]) -> None:
        self.conversation_list.blockSignals(True)
        self.conversation_list.clear()
        for row in rows:
            item = QListWidgetItem(row["title"])
            item.setData(Qt.UserRole, row["id"])
            started = time.strftime("%d %b %Y, %H:%M", time.localtime(row["created"]))
            item.setToolTip(plain_tip(f"{row['title']}\nstarted {started}"))
            self.conversation_list.addItem(item)
            if row["id"] == self.current_id:
                item.setSelected(True)
        self.conversation_list.blockSignals(False)

    def mark_current(self, conv_id: str | None) -> None:
        """Selects the open conversation's row without announcing it as a new choice."""
        self.current_id = conv_id
        self.conversation_list.blockSignals(True)
        for i in range(self.conversation_list.count()):
            item = self.conversation_list.item(i)
            if item.data(Qt.UserRole) == conv_id and not item.isSelected():
                self.conversation_list.setCurrentItem(item)
        self.conversation_list.blockSignals(False)

    def choose_first(self) -> bool:
        """Opens the top row; False when the list is empty."""
        if not self.conversation_list.count():
            return False
        self.conversation_list.setCurrentRow(0)
        return True

    def _selected(self) -> None:
        items = self.conversation_list.selectedItems()
        if items:
            self.chosen.emit(items[0].data(Qt.UserRole))

    def _context_menu(self, pos) -> None:
        item = self.conversation_list.itemAt(pos)
        if item is None:
            return
        self.conversation_list.setCurrentItem(item)
        menu = QMenu(self)
        menu.addAction("Rename…", self.rename_requested.emit)
        menu.addAction("Export…", self.export_requested.emit)
        menu.addAction("Delete…", self.delete_requested.emit)
        menu.popup(self.conversation_list.mapToGlobal(pos))
