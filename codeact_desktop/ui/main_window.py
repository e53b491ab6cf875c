"""The main window: conversations on the left, the chat, the input, a status bar."""

from __future__ import annotations

import threading
from typing import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QMainWindow, QPlainTextEdit,
    QPushButton, QSplitter, QVBoxLayout, QWidget,
)

from ..agent import events as ev
from ..agent.loop import AgentSettings
from ..engine import start_kernel
from ..kernel.venv import ensure_kernel_venv
from ..llm.base import ChatBackend
from ..paths import AppPaths
from ..resources import resource_path
from ..store.history import HistoryStore
from .chat_view import ChatView
from .controller import ConversationController


class InputBox(QPlainTextEdit):
    """Enter sends; Shift+Enter breaks the line."""

    submitted = Signal()

    def keyPressEvent(self, event):  # noqa: N802 (Qt naming)
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and not event.modifiers() & Qt.ShiftModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class MainWindow(QMainWindow):
    backend_ready = Signal(object)
    backend_failed = Signal(str)

    def __init__(self, store: HistoryStore, paths: AppPaths,
                 load_backend: Callable[[], ChatBackend] | None, settings: AgentSettings | None = None):
        super().__init__()
        self.store, self.paths = store, paths
        self.settings = settings or AgentSettings()
        self.backend: ChatBackend | None = None
        self.controllers: dict[str, ConversationController] = {}
        self.current: ConversationController | None = None
        self._kernel_busy = False  # an action of the current conversation is running
        self.setWindowTitle("CodeAct Desktop")
        self.resize(1100, 760)
        self.setStyleSheet(resource_path("styles", "app.qss").read_text(encoding="utf-8"))
        self._build()
        self.backend_ready.connect(self._on_backend_ready)
        self.backend_failed.connect(lambda msg: self._set_model_status(f"Model failed to load: {msg}", error=True))
        self._refresh_conversations()
        if load_backend is None:
            self._set_model_status("No model yet: start with --model path/to/model.gguf or --base-url URL")
        else:
            self._set_model_status("Loading the model…")
            threading.Thread(target=self._load, args=(load_backend,), daemon=True).start()

    # -- layout ---------------------------------------------------------------------

    def _build(self) -> None:
        side = QWidget()
        side.setObjectName("sidebar")
        side_layout = QVBoxLayout(side)
        self.new_button = QPushButton("New conversation")
        self.new_button.setAccessibleName("new conversation")
        self.new_button.clicked.connect(self.new_conversation)
        self.search = QLineEdit(placeholderText="Search conversations")
        self.search.setAccessibleName("search conversations")
        self.search.textChanged.connect(self._refresh_conversations)
        self.conversation_list = QListWidget()
        self.conversation_list.setAccessibleName("conversations")
        self.conversation_list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.conversation_list.setTextElideMode(Qt.ElideRight)
        self.conversation_list.itemSelectionChanged.connect(self._on_select)
        side_layout.addWidget(self.new_button)
        side_layout.addWidget(self.search)
        side_layout.addWidget(self.conversation_list)

        center = QWidget()
        center_layout = QVBoxLayout(center)
        center_layout.setContentsMargins(0, 0, 0, 8)
        self.chat = ChatView()
        self.input = InputBox()
        self.input.setObjectName("input")
        self.input.setAccessibleName("message input")
        self.input.setPlaceholderText("Ask for something — Enter sends, Shift+Enter adds a line")
        self.input.setFixedHeight(84)
        self.input.submitted.connect(self.send_current)
        self.send_button = QPushButton("Send")
        self.send_button.setAccessibleName("send")
        self.send_button.clicked.connect(self.send_current)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        row = QHBoxLayout()
        row.setContentsMargins(16, 0, 16, 0)
        row.addWidget(self.input, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        row.addLayout(buttons)
        center_layout.addWidget(self.chat, 1)
        center_layout.addLayout(row)

        splitter = QSplitter()
        splitter.addWidget(side)
        splitter.addWidget(center)
        splitter.setSizes([240, 860])
        self.setCentralWidget(splitter)

        self.model_label = QLabel()
        self.speed_label = QLabel()
        self.context_label = QLabel()
        self.kernel_label = QLabel("kernel: not started")
        for label in (self.model_label, self.context_label, self.speed_label, self.kernel_label):
            label.setContentsMargins(8, 0, 12, 0)
            self.statusBar().addWidget(label)
        self.restart_button = QPushButton("Restart kernel")
        self.restart_button.setAccessibleName("restart kernel")
        self.restart_button.clicked.connect(self.restart_kernel)
        self.statusBar().addPermanentWidget(self.restart_button)

        self._kernel_poll = QTimer(self)
        self._kernel_poll.setInterval(500)
        self._kernel_poll.timeout.connect(self._show_kernel_state)
        self._kernel_poll.start()

        QShortcut(QKeySequence("Ctrl+N"), self, activated=self.new_conversation)
        QShortcut(QKeySequence("Ctrl+L"), self, activated=self.input.setFocus)
        QShortcut(QKeySequence(Qt.Key_Escape), self, activated=self.stop)

    def _show_kernel_state(self) -> None:
        if self.current is None:
            return
        kernel = self.current.kernel
        if self._kernel_busy:
            return
        state = "ready" if kernel.is_alive else ("starting" if kernel.is_starting else "stopped")
        self.kernel_label.setText(f"kernel: {state}")

    # -- model ----------------------------------------------------------------------

    def _load(self, load_backend) -> None:
        try:
            ensure_kernel_venv(self.paths.kernel_venv)  # first run: about a second
            self.backend_ready.emit(load_backend())
        except Exception as exc:  # shown to the user, not raised into Qt
            self.backend_failed.emit(str(exc))

    def _on_backend_ready(self, backend: ChatBackend) -> None:
        self.backend = backend
        info = backend.info
        self._set_model_status(f"{info.kind} · {info.model} · {info.device.upper()}")
        self.context_label.setText(f"context {info.n_ctx}")
        for note in info.notes:
            self.chat.add_notice(note)
        if self.conversation_list.count() == 0:
            self.new_conversation()
        elif self.current is None:
            self.conversation_list.setCurrentRow(0)

    def _set_model_status(self, text: str, error: bool = False) -> None:
        self.model_label.setText(text)
        self.model_label.setStyleSheet("color: #b3261e;" if error else "")

    # -- conversations --------------------------------------------------------------

    def _refresh_conversations(self) -> None:
        needle = self.search.text().strip().lower()
        current = self.current.conversation.id if self.current else None
        self.conversation_list.blockSignals(True)
        self.conversation_list.clear()
        for row in self.store.list_conversations():
            if needle and not self._matches(row, needle):
                continue
            item = QListWidgetItem(row["title"])
            item.setData(Qt.UserRole, row["id"])
            self.conversation_list.addItem(item)
            if row["id"] == current:
                item.setSelected(True)
        self.conversation_list.blockSignals(False)

    def _matches(self, row: dict, needle: str) -> bool:
        if needle in row["title"].lower():
            return True
        hits = self.store.query(
            "SELECT 1 FROM messages WHERE conversation_id = ? AND kind IN ('user','assistant') AND lower(content) LIKE ? LIMIT 1",
            (row["id"], f"%{needle}%"))
        return bool(hits)

    def new_conversation(self) -> None:
        conversation = self.store.create_conversation(self.paths.workspaces)
        self._refresh_conversations()
        self._open(conversation.id)

    def _on_select(self) -> None:
        items = self.conversation_list.selectedItems()
        if items:
            self._open(items[0].data(Qt.UserRole))

    def _open(self, conv_id: str) -> None:
        if self.current is not None and self.current.conversation.id == conv_id:
            return
        if self.backend is None:
            return
        controller = self.controllers.get(conv_id)
        if controller is None:
            conversation = self.store.open_conversation(conv_id)
            kernel = start_kernel(self.paths, conversation.workspace)  # in the background
            controller = ConversationController(self.backend, kernel, conversation, self.settings, self)
            controller.engine_event.connect(lambda e, c=controller: self._on_event(c, e))
            controller.busy_changed.connect(lambda busy, c=controller: self._on_busy(c, busy))
            controller.approval_requested.connect(lambda a, code, c=controller: self._on_approval(c, a))
            self.controllers[conv_id] = controller
        self.current = controller
        self.chat.show_conversation(controller.conversation)
        self._on_busy(controller, controller.busy)
        self.kernel_label.setText("kernel: ready" if controller.kernel.is_alive else "kernel: starting")
        for i in range(self.conversation_list.count()):
            item = self.conversation_list.item(i)
            if item.data(Qt.UserRole) == conv_id and not item.isSelected():
                self.conversation_list.blockSignals(True)
                self.conversation_list.setCurrentItem(item)
                self.conversation_list.blockSignals(False)

    # -- talking ----------------------------------------------------------------------

    def send_current(self) -> None:
        text = self.input.toPlainText().strip()
        if not text or self.current is None or self.current.busy:
            return
        conversation = self.current.conversation
        if not conversation.actions() and len(conversation.messages()) <= 1:
            conversation.set_title(text.splitlines()[0][:60])
            self._refresh_conversations()
        self.input.clear()
        self.chat.add_user_message(text)
        self.current.send(text)

    def stop(self) -> None:
        if self.current is not None and self.current.busy:
            self.current.stop()

    def restart_kernel(self) -> None:
        if self.current is None:
            return
        kernel = self.current.kernel
        self.kernel_label.setText("kernel: restarting")
        def work():
            kernel.restart()
        threading.Thread(target=work, daemon=True).start()
        self.chat.add_notice("The kernel was restarted: variables and imports are gone; files are kept.")

    def _on_event(self, controller: ConversationController, event) -> None:
        if controller is not self.current:
            return  # shown from the history when the user comes back to it
        self.chat.handle(event)
        if isinstance(event, (ev.ActionStarted, ev.ActionFinished)):
            self._kernel_busy = isinstance(event, ev.ActionStarted)
            self.kernel_label.setText("kernel: busy" if self._kernel_busy else "kernel: ready")
        elif isinstance(event, ev.ReplyDone):
            stats = event.stats
            if stats.get("tokens_per_second"):
                self.speed_label.setText(f"{stats['tokens_per_second']:.1f} tokens/s")
            if self.backend is not None:
                used = stats.get("prompt_tokens", 0) + stats.get("completion_tokens", 0)
                self.context_label.setText(f"context {used} / {self.backend.info.n_ctx}")

    def _on_busy(self, controller: ConversationController, busy: bool) -> None:
        if controller is self.current:
            self.stop_button.setEnabled(busy)
            self.send_button.setEnabled(not busy)

    def _on_approval(self, controller: ConversationController, action_id: str) -> None:
        card = self.chat.cards.get(action_id)
        if card is None:
            return
        card.on_decide = lambda a, run, code: controller.decide(a, _approval(run, code))
        card.ask_approval()

    def closeEvent(self, event):  # noqa: N802
        for controller in self.controllers.values():
            controller.shutdown()
        super().closeEvent(event)


def _approval(run: bool, code):
    from ..agent.loop import Approval

    return Approval(run=run, code=code)
