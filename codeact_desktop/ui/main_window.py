"""The main window: conversations on the left, the chat and the input in the middle,
the conversation's files on the right, a status bar below."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog, QHBoxLayout, QInputDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem, QMainWindow,
    QMenu, QMessageBox, QPlainTextEdit, QPushButton, QSplitter, QStackedWidget, QVBoxLayout, QWidget,
)

from ..agent import events as ev
from ..agent.attachments import Attachment
from ..agent.loop import AgentSettings, Approval
from ..agent.timeline import user_entry
from ..engine import start_kernel
from ..export import export_conversation
from ..llm.base import ChatBackend
from ..paths import AppPaths
from ..resources import messages
from ..settings import Settings
from ..store.history import HistoryStore
from ..visible_text import visible_name
from .about import show_about
from .attachment_tray import AttachmentTray
from .chat_view import ChatView
from .code_card import highlighted_html
from .controller import ConversationController
from .model_setup import ModelSetup
from .sandbox_status import SandboxStatus
from .settings_dialog import SettingsDialog
from .theme import apply_theme, follow_system, set_tone
from .find_bar import FindBar
from .help_dialogs import show_data_places, show_restrictions, show_shortcuts, show_getting_started
from .workspace_panel import WorkspacePanel

FILES_PANEL_MIN_WINDOW = 1100  # px: narrower, and the Files panel folds away
FILES_PANEL_WIDTH = 260
SIDEBAR_WIDTH = 220
STATUS_DETAILS_MIN_WINDOW = 1000  # px: narrower, and context and speed leave the status bar
RAN = ("ok", "error", "timeout", "timeout_restarted", "died", "cancelled", "running")
EXPORT_FILTERS = {"Jupyter notebook (*.ipynb)": ".ipynb", "Markdown (*.md)": ".md", "HTML page (*.html)": ".html"}


class InputBox(QPlainTextEdit):
    """Enter sends; Shift+Enter breaks the line; Tab moves on to the next control."""

    submitted = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTabChangesFocus(True)

    def keyPressEvent(self, event):  # noqa: N802 (Qt naming)
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and not event.modifiers() & Qt.ShiftModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


def _model_status(info) -> str:
    """"llama.cpp · model.gguf · GPU (Vulkan0)": the status bar's model label."""
    return f"{info.kind} · {info.model} · {info.device.upper()}" + (f" ({info.device_name})" if info.device_name else "")


class MainWindow(QMainWindow):
    background_done = Signal(str)  # a message for the status bar from a worker

    def __init__(self, store: HistoryStore, paths: AppPaths,
                 load_backend: Callable[[], ChatBackend] | None, settings: Settings | None = None):
        super().__init__()
        self.store, self.paths = store, paths
        if settings is None:
            settings, problem = Settings.load(paths.settings_file)
            if problem:
                QTimer.singleShot(0, lambda: self.statusBar().showMessage(problem, 10_000))
        self.settings = settings
        # One object shared by every conversation, so a settings change reaches them all.
        self.agent_settings = settings.apply_to(AgentSettings())
        self.backend: ChatBackend | None = None
        self.controllers: dict[str, ConversationController] = {}
        self.current: ConversationController | None = None
        self._kernel_busy = False  # an action of the current conversation is running
        self._editing = False  # the input holds the last message, to replace it
        self._pending_files: list[Path] = []  # given to the app before a model was ready
        self.setWindowTitle("CodeAct Desktop")
        self.resize(1240, 780)
        self.setAcceptDrops(True)
        apply_theme(settings.theme)
        follow_system(lambda: self.settings.theme)
        highlighted_html("x = 1")  # pygments compiles its rules on first use (~20 ms): not mid-stream
        self.models = ModelSetup(paths, lambda: self.settings, self)
        self.models.ready.connect(self._on_backend_ready)
        self.models.failed.connect(self._on_backend_failed)
        self.models.welcome.back_requested.connect(self.show_chat)
        self._build()
        self._build_menus()
        self.background_done.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self._refresh_conversations()
        if load_backend is None:
            self._set_model_status("No model yet")
            self.show_models()
        else:
            self._set_model_status("Loading the model…")
            self.models.load(load_backend, {})

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
        self.conversation_list.setContextMenuPolicy(Qt.CustomContextMenu)
        self.conversation_list.customContextMenuRequested.connect(self._conversation_menu)
        QShortcut(QKeySequence.Delete, self.conversation_list, context=Qt.WidgetShortcut,
                  activated=self.delete_conversation)
        side_layout.addWidget(self.new_button)
        side_layout.addWidget(self.search)
        side_layout.addWidget(self.conversation_list)

        center = QWidget()
        center_layout = QVBoxLayout(center)
        center_layout.setContentsMargins(0, 0, 0, 8)
        self.chat = ChatView()
        self.chat.on_example = self.use_example
        self.find_bar = FindBar(self.chat)
        self.find_bar.closed.connect(lambda: self.input.setFocus())
        # What the user can do with the last turn, under the conversation.
        self.turn_bar = QWidget()
        turn = QHBoxLayout(self.turn_bar)
        turn.setContentsMargins(16, 0, 16, 0)
        self.edit_hint = QLabel("Editing your last message: sending replaces it and everything after it.")
        self.edit_hint.setObjectName("notice")
        self.cancel_edit_button = self._small_button("Cancel edit", "cancel edit", self.cancel_edit)
        self.regenerate_button = self._small_button("↻ Regenerate", "regenerate answer", self.regenerate)
        self.edit_button = self._small_button("✎ Edit last message", "edit last message", self.edit_last)
        turn.addWidget(self.edit_hint)
        turn.addWidget(self.cancel_edit_button)
        turn.addStretch(1)
        turn.addWidget(self.edit_button)
        turn.addWidget(self.regenerate_button)
        self.tray = AttachmentTray()
        self.tray.changed.connect(self._update_controls)
        self.tray.failed.connect(lambda text: self.chat.add_notice(text, error=True))
        self.input = InputBox()
        self.input.setObjectName("input")
        self.input.setAccessibleName("message input")
        self.input.setPlaceholderText("Ask for something — Enter sends, Shift+Enter adds a line; drop files to attach")
        self.input.setFixedHeight(84)
        self.input.submitted.connect(self.send_current)
        self.attach_button = QPushButton("Attach…")
        self.attach_button.setToolTip("Attach files (Ctrl+O)")
        self.attach_button.setAccessibleName("attach files")
        self.attach_button.clicked.connect(self.pick_files)
        self.send_button = QPushButton("Send")
        self.send_button.setAccessibleName("send")
        self.send_button.clicked.connect(self.send_current)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        row = QHBoxLayout()
        row.setContentsMargins(16, 0, 16, 0)
        row.addWidget(self.attach_button, 0, Qt.AlignTop)
        row.addWidget(self.input, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        row.addLayout(buttons)
        center_layout.addWidget(self.find_bar)
        center_layout.addWidget(self.chat, 1)
        center_layout.addWidget(self.turn_bar)
        center_layout.addWidget(self.tray)
        center_layout.addLayout(row)

        self.files_panel = WorkspacePanel()
        self._files_auto_hidden = False  # hidden because the window got narrow, not by the user
        self._sidebar_dragged = False
        side.setMinimumWidth(150)
        self.sidebar = side
        splitter = QSplitter()
        self.splitter = splitter
        splitter.addWidget(side)
        splitter.addWidget(center)
        splitter.addWidget(self.files_panel)
        splitter.setSizes([SIDEBAR_WIDTH, 760, FILES_PANEL_WIDTH])
        splitter.setCollapsible(1, False)
        splitter.splitterMoved.connect(lambda pos, index: index == 1 and setattr(self, "_sidebar_dragged", True))
        self.pages = QStackedWidget()
        self.pages.addWidget(splitter)
        self.pages.addWidget(self.models.welcome)
        self.setCentralWidget(self.pages)

        self.model_label = QLabel()
        self.speed_label = QLabel()
        self.context_label = QLabel()
        self.kernel_label = QLabel("kernel: not started")
        # In one container, hidden by hand while a status message shows: Qt's own hiding
        # is undone when a status-bar button changes visibility, and the texts overlap.
        labels = QWidget()
        row = QHBoxLayout(labels)
        row.setContentsMargins(0, 0, 0, 0)
        for label in (self.model_label, self.context_label, self.speed_label, self.kernel_label):
            label.setContentsMargins(8, 0, 12, 0)
            row.addWidget(label)
        self.statusBar().addWidget(labels)
        self.statusBar().messageChanged.connect(lambda text: labels.setVisible(not text))
        self.interrupt_button = self._small_button("Interrupt", "interrupt code", self.stop)
        self.restart_button = self._small_button("Restart kernel", "restart kernel", self.restart_kernel)
        self.sandbox_status = SandboxStatus()
        self.sandbox_status.network_toggled.connect(self.set_network)
        self.statusBar().addPermanentWidget(self.sandbox_status)
        self.statusBar().addPermanentWidget(self.interrupt_button)
        self.statusBar().addPermanentWidget(self.restart_button)

        self._kernel_poll = QTimer(self)
        self._kernel_poll.setInterval(500)
        self._kernel_poll.timeout.connect(self._show_kernel_state)
        self._kernel_poll.start()
        self._update_controls()

    def show_files_panel(self, shown: bool, by_user: bool = True) -> None:
        self.files_panel.setVisible(shown)
        self.files_action.setChecked(shown)
        self._files_auto_hidden = not shown and not by_user

    def resizeEvent(self, event):  # noqa: N802
        super().resizeEvent(event)
        self._fit_panels()

    def _fit_panels(self) -> None:
        """On a narrow window the chat keeps the room: the Files panel folds away (and comes
        back when the window widens again, unless the user closed it), the sidebar narrows,
        and the status bar keeps only what matters most."""
        if not hasattr(self, "files_action"):
            return
        narrow = self.width() < FILES_PANEL_MIN_WINDOW
        if narrow and self.files_panel.isVisible():
            self.show_files_panel(False, by_user=False)
            self.statusBar().showMessage("The Files panel is folded away to give the chat room: "
                                         "View → Files panel (Ctrl+Shift+F) shows it.", 6000)
        elif not narrow and self._files_auto_hidden:
            self.show_files_panel(True)
        side, center, files = self.splitter.sizes()
        if self.files_panel.isVisible() and files < FILES_PANEL_WIDTH // 2:
            files = FILES_PANEL_WIDTH  # a panel shown again gets its room back
        # A fifth of the window, 150 to 220 px, until the user drags it: then only narrowed.
        fitting = max(self.sidebar.minimumWidth(), min(SIDEBAR_WIDTH, self.width() // 5))
        side = fitting if side > fitting or not self._sidebar_dragged else side
        center = max(0, self.width() - side - (files if self.files_panel.isVisible() else 0))
        self.splitter.setSizes([side, center, files])
        for label in (self.context_label, self.speed_label):
            label.setVisible(self.width() >= STATUS_DETAILS_MIN_WINDOW)

    def _small_button(self, text: str, accessible: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName("smallButton")
        button.setAccessibleName(accessible)
        button.clicked.connect(slot)
        return button

    def _build_menus(self) -> None:
        def action(menu, text, slot, shortcut=None, name=None):
            act = QAction(text, self)
            if shortcut:
                act.setShortcut(QKeySequence(shortcut))
            act.triggered.connect(lambda checked=False: slot())
            menu.addAction(act)
            if name:
                setattr(self, name, act)
            return act

        file_menu = self.menuBar().addMenu("&File")
        action(file_menu, "New conversation", self.new_conversation, "Ctrl+N")
        action(file_menu, "Attach files…", self.pick_files, "Ctrl+O")
        action(file_menu, "Attach a folder…", self.pick_folder)
        file_menu.addSeparator()
        action(file_menu, "Models…", self.show_models)
        action(file_menu, "Use a model file (.gguf)…", self.pick_model)
        action(file_menu, "Export conversation…", self.export_current, "Ctrl+E")
        file_menu.addSeparator()
        action(file_menu, "Settings…", self.open_settings, "Ctrl+,")
        action(file_menu, "Quit", self.close, "Ctrl+Q")
        conv_menu = self.menuBar().addMenu("&Conversation")
        action(conv_menu, "Stop", self.escape, "Esc", "stop_action")
        action(conv_menu, "Regenerate answer", self.regenerate, "Ctrl+R")
        action(conv_menu, "Edit last message", self.edit_last, "Ctrl+Shift+E")
        conv_menu.addSeparator()
        action(conv_menu, "Rename…", self.rename_conversation, "F2")
        action(conv_menu, "Delete…", self.delete_conversation)
        conv_menu.addSeparator()
        action(conv_menu, "Restart kernel…", self.restart_kernel)
        view_menu = self.menuBar().addMenu("&View")
        action(view_menu, "Focus the input", self.input.setFocus, "Ctrl+L")
        action(view_menu, "Find in conversation…", self.find_bar.open_bar, "Ctrl+F")
        view_menu.addSeparator()
        zoom_in = action(view_menu, "Larger text", lambda: self.set_zoom(self.chat.zoom + 1), "Ctrl++")
        zoom_in.setShortcuts([QKeySequence("Ctrl++"), QKeySequence("Ctrl+=")])  # "+" needs Shift on many layouts
        action(view_menu, "Smaller text", lambda: self.set_zoom(self.chat.zoom - 1), "Ctrl+-")
        action(view_menu, "Actual size", lambda: self.set_zoom(0), "Ctrl+0")
        view_menu.addSeparator()
        files = action(view_menu, "Files panel", lambda: self.show_files_panel(not self.files_panel.isVisible()),
                       "Ctrl+Shift+F", "files_action")
        files.setCheckable(True)
        files.setChecked(True)
        help_menu = self.menuBar().addMenu("&Help")
        action(help_menu, "Getting started", lambda: show_getting_started(self), "F1")
        action(help_menu, "Keyboard shortcuts", lambda: show_shortcuts(self, self.findChildren(QAction)))
        action(help_menu, "Where your data is", lambda: show_data_places(self, self.paths))
        action(help_menu, "What code can and cannot do", lambda: show_restrictions(
            self, self.current.kernel.sandbox if self.current else None))
        help_menu.addSeparator()
        action(help_menu, "About CodeAct Desktop", lambda: show_about(self, self.paths), name="about_action")
        self.chat.set_zoom(self.settings.chat_zoom)

    def _show_kernel_state(self) -> None:
        self.sandbox_status.show_kernel(self.current.kernel if self.current else None)
        if self.current is None or self._kernel_busy:
            return
        kernel = self.current.kernel
        state = "ready" if kernel.is_alive else ("starting" if kernel.is_starting else "stopped")
        self.kernel_label.setText(f"kernel: {state}")

    def _update_controls(self) -> None:
        """Enables what makes sense now: one place, called whenever state changes."""
        busy = self.current is not None and self.current.busy
        has_turn = (self.current is not None and not busy
                    and self.current.conversation.last_user_message() is not None)
        self.send_button.setEnabled(not busy and not self.tray.copying and self.current is not None)
        self.send_button.setToolTip("Wait for the files to finish copying" if self.tray.copying else "")
        self.stop_button.setEnabled(busy)
        if hasattr(self, "stop_action"):  # Esc, when idle, closes the find bar by itself
            self.stop_action.setEnabled(busy)
        self.interrupt_button.setEnabled(busy and self._kernel_busy)
        for widget in (self.interrupt_button, self.restart_button, self.kernel_label):
            widget.setVisible(self.current is not None)
        self.regenerate_button.setVisible(has_turn and not self._editing)
        self.edit_button.setVisible(has_turn and not self._editing)
        self.edit_hint.setVisible(self._editing)
        self.cancel_edit_button.setVisible(self._editing)
        self.turn_bar.setVisible(has_turn or self._editing)

    # -- model ----------------------------------------------------------------------

    def show_models(self) -> None:
        """The welcome page: download a model, use a file, or connect to a server."""
        self.models.welcome.back_button.setVisible(self.backend is not None)
        self.models.welcome.refresh()
        self.pages.setCurrentWidget(self.models.welcome)

    def show_chat(self) -> None:
        if self.backend is not None:
            self.pages.setCurrentIndex(0)

    def load_model_file(self, path: Path) -> None:
        """Loads a GGUF the user chose; the old model stays until the new one works."""
        if any(c.busy for c in self.controllers.values()):
            self.chat.add_notice("Wait for the answer to finish (or stop it) before changing the model.", error=True)
            return
        if self.models.load_file(path):
            self._set_model_status("Loading the model…")

    def show_model_problem(self, text: str) -> None:
        if self.backend is None:
            self.models.welcome.show_problem(text)
        else:
            self.chat.add_notice(text, error=True)

    def _on_backend_ready(self, backend: ChatBackend, remember: dict) -> None:
        self.models.finished()
        old, self.backend = self.backend, backend
        for controller in self.controllers.values():
            controller.agent.backend = backend
        if old is not None and old is not backend:
            threading.Thread(target=old.close, name="close-model", daemon=True).start()
        if remember:
            for key, value in remember.items():
                setattr(self.settings, key, value)
            self.save_settings()
        self.show_chat()
        info = backend.info
        self._set_model_status(_model_status(info))
        self.context_label.setText(f"context {info.n_ctx}")
        for note in info.notes:
            self.chat.add_notice(note)
        if self._pending_files:
            pending, self._pending_files = self._pending_files, []
            self.new_conversation()
            self.attach(pending)
        elif self.conversation_list.count() == 0:
            self.new_conversation()
        elif self.current is None:
            self.conversation_list.setCurrentRow(0)
        if remember:
            self.chat.add_notice(f"Now using {info.model}.")

    def _on_backend_failed(self, message: str) -> None:
        self.models.finished(message if self.backend is None else "")
        if self.backend is None:
            self._set_model_status("The model failed to load", error=True)
            self.show_models()
        else:
            self._set_model_status(_model_status(self.backend.info))
            self.chat.add_notice(f"The new model could not be loaded, so the old one stays: {message}", error=True)

    def _set_model_status(self, text: str, error: bool = False) -> None:
        self.model_label.setText(text)
        self.model_label.setToolTip(text)  # whole, where a narrow window cuts it
        set_tone(self.model_label, "error" if error else "")

    def pick_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Use a model file", str(Path.home()), "GGUF models (*.gguf)")
        if path:
            self.models.offer_file(Path(path))

    # -- settings -------------------------------------------------------------------

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.result_settings()))
        dialog.open()

    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        settings.apply_to(self.agent_settings)
        for controller in self.controllers.values():
            controller.require_approval = settings.require_approval
        apply_theme(settings.theme)
        self.chat.restyle()
        self.save_settings()

    def set_zoom(self, steps: int) -> None:
        self.chat.set_zoom(steps)
        self.settings.chat_zoom = self.chat.zoom
        self.save_settings()

    def save_settings(self) -> None:
        try:
            self.settings.save(self.paths.settings_file)
        except OSError as exc:
            self.chat.add_notice(f"Settings could not be saved: {exc}", error=True)

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
            started = time.strftime("%d %b %Y, %H:%M", time.localtime(row["created"]))
            item.setToolTip(f"{row['title']}\nstarted {started}")
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
        # An empty conversation is already open: that one, not a row of identical empty ones.
        if self.current is not None and self._is_empty(self.current.conversation):
            self.input.setFocus()
            return
        conversation = self.store.create_conversation(self.paths.workspaces)
        self._refresh_conversations()
        self._open(conversation.id)

    def _is_empty(self, conversation) -> bool:
        return conversation.last_user_message() is None and not self.tray.pending.get(Path(conversation.workspace))

    def use_example(self, text: str) -> None:
        """An example prompt was clicked: it goes into the message box, to send or change."""
        self.input.setPlainText(text)
        self.input.moveCursor(self.input.textCursor().MoveOperation.End)
        self.input.setFocus()

    def escape(self) -> None:
        """Esc closes the find bar when it is open, and stops the answer otherwise."""
        if self.find_bar.isVisible():
            self.find_bar.close_bar()
        else:
            self.stop()

    def _on_select(self) -> None:
        items = self.conversation_list.selectedItems()
        if items:
            self._open(items[0].data(Qt.UserRole))

    def _open(self, conv_id: str) -> None:
        if self.current is not None and self.current.conversation.id == conv_id:
            return
        if self.backend is None:
            return
        self.cancel_edit()
        controller = self.controllers.get(conv_id)
        if controller is None:
            conversation = self.store.open_conversation(conv_id)
            if any(a["status"] in RAN for a in conversation.actions()):
                self._note_kernel_state_lost(conversation)
            kernel = start_kernel(self.paths, conversation.workspace,  # in the background
                                  network=conversation.network_allowed())
            controller = ConversationController(self.backend, kernel, conversation, self.agent_settings, self)
            controller.require_approval = self.settings.require_approval
            controller.engine_event.connect(lambda e, c=controller: self._on_event(c, e))
            controller.busy_changed.connect(lambda busy, c=controller: self._on_busy(c, busy))
            controller.approval_requested.connect(lambda a, code, c=controller: self._on_approval(c, a))
            self.controllers[conv_id] = controller
        self.current = controller
        self._kernel_busy = False
        # The last reply's figures belonged to the conversation left behind.
        self.speed_label.setText("")
        self.context_label.setText(f"context {self.backend.info.n_ctx}")
        self.chat.show_conversation(controller.conversation)
        self.files_panel.show_conversation(controller.conversation)
        self.tray.show_for(controller.conversation.workspace)
        self.kernel_label.setText("kernel: ready" if controller.kernel.is_alive else "kernel: starting")
        self._update_controls()
        for i in range(self.conversation_list.count()):
            item = self.conversation_list.item(i)
            if item.data(Qt.UserRole) == conv_id and not item.isSelected():
                self.conversation_list.blockSignals(True)
                self.conversation_list.setCurrentItem(item)
                self.conversation_list.blockSignals(False)

    def _note_kernel_state_lost(self, conversation) -> None:
        """Code ran here in an earlier session; its variables died with that kernel."""
        text = messages()["kernel_state_lost"]
        last = conversation.messages()[-1]
        if last["kind"] != "notice" or last["content"] != text:
            conversation.add_message("system", "notice", text)

    def _conversation_menu(self, pos) -> None:
        item = self.conversation_list.itemAt(pos)
        if item is None:
            return
        self.conversation_list.setCurrentItem(item)
        menu = QMenu(self)
        menu.addAction("Rename…", self.rename_conversation)
        menu.addAction("Export…", self.export_current)
        menu.addAction("Delete…", self.delete_conversation)
        menu.popup(self.conversation_list.mapToGlobal(pos))

    def rename_conversation(self) -> None:
        if self.current is None:
            return
        conversation = self.current.conversation
        title = self.ask_text("Rename conversation", "Name:", conversation.title())
        if title and title.strip():
            conversation.set_title(title.strip())
            self._refresh_conversations()

    def delete_conversation(self) -> None:
        if self.current is None:
            return
        controller = self.current
        conversation = controller.conversation
        if not self.confirm("Delete conversation",
                            f"Delete “{conversation.title()}”? Its messages and outputs, and the files in its "
                            "folder, are removed. This cannot be undone."):
            return
        self.store.delete_conversation(conversation.id)
        self.controllers.pop(conversation.id, None)
        self.current = None
        workspace = Path(conversation.workspace)
        ours = self.paths.workspaces.resolve() in workspace.resolve().parents

        def work():  # the kernel's shutdown and the folder's removal may take seconds
            controller.shutdown()
            shutil.rmtree(self.paths.kernel_home_for(workspace), ignore_errors=True)
            if ours:  # never remove a folder the user chose for a CLI run
                shutil.rmtree(workspace, ignore_errors=True)
            self.background_done.emit("Conversation deleted.")

        threading.Thread(target=work, name="delete-conversation", daemon=True).start()
        self._refresh_conversations()
        if self.conversation_list.count():
            self.conversation_list.setCurrentRow(0)
        else:
            self.new_conversation()

    # dialogs go through these, so tests can answer them
    def confirm(self, title: str, text: str) -> bool:
        # No is the default: Enter on a question that loses something must not lose it.
        return QMessageBox.question(self, title, text, QMessageBox.Yes | QMessageBox.No,
                                    QMessageBox.No) == QMessageBox.Yes

    def ask_text(self, title: str, label: str, text: str) -> str | None:
        dialog = QInputDialog(self)
        dialog.setWindowTitle(title)
        dialog.setLabelText(label)
        dialog.setTextValue(text)
        dialog.resize(480, dialog.sizeHint().height())  # a title and a name fit
        return dialog.textValue() if dialog.exec() == QInputDialog.Accepted else None

    def ask_save_path(self, title: str, suggested: str, filters: str) -> str:
        path, chosen = QFileDialog.getSaveFileName(self, title, suggested, filters)
        if path and not Path(path).suffix and chosen in EXPORT_FILTERS:
            path += EXPORT_FILTERS[chosen]
        return path

    # -- files ----------------------------------------------------------------------

    def dragEnterEvent(self, event):  # noqa: N802
        if event.mimeData().hasUrls() and all(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event):  # noqa: N802
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        if len(paths) == 1 and paths[0].suffix.lower() == ".gguf":
            # Checked first, then offered with what was found; No attaches it instead.
            self.models.offer_file(paths[0], (lambda p: self.attach([p])) if self.current else None)
            return
        self.attach(paths)

    def open_files(self, paths: list[Path]) -> None:
        """Files given to the app rather than to a conversation (its command line, a later
        launch, "Open with", the Dock icon): a new conversation with them attached. A lone
        GGUF is offered as the model, as when dropped."""
        if self.isMinimized():
            self.showNormal()
        self.raise_()
        self.activateWindow()
        missing = [p for p in paths if not p.exists()]
        paths = [p for p in paths if p.exists()]
        if missing:
            self.statusBar().showMessage("Not found: " + ", ".join(visible_name(p.name) for p in missing), 10_000)
        if not paths:
            return
        if len(paths) == 1 and paths[0].suffix.lower() == ".gguf":
            self.models.offer_file(paths[0], None)
            return
        if self.backend is None:  # attached once a model is ready
            self._pending_files += paths
            self.statusBar().showMessage(f"{len(self._pending_files)} file(s) will be attached to a new "
                                         "conversation once a model is loaded.", 10_000)
            return
        self.new_conversation()
        self.attach(paths)

    def attach(self, paths: list[Path]) -> None:
        if self.current is None:
            self.chat.add_notice("Load a model first; then files can be attached.", error=True)
            return
        self.tray.add_paths(paths, Path(self.current.conversation.workspace))
        self.input.setFocus()  # back to typing the message the files go with

    def pick_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Attach files", str(Path.home()))
        if paths:
            self.attach([Path(p) for p in paths])
        self.input.setFocus()

    def pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Attach a folder", str(Path.home()))
        if path:
            self.attach([Path(path)])

    def export_current(self) -> None:
        if self.current is None:
            return
        conversation = self.current.conversation
        safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in conversation.title()).strip() or "conversation"
        target = self.ask_save_path("Export conversation", str(Path.home() / f"{safe}.ipynb"),
                                    ";;".join(EXPORT_FILTERS))
        if not target:
            return

        def work():
            try:
                path = export_conversation(conversation, Path(target))
                self.background_done.emit(f"Exported to {path}")
            except (OSError, ValueError) as exc:
                self.background_done.emit(f"Export failed: {exc}")

        threading.Thread(target=work, name="export", daemon=True).start()

    # -- talking ----------------------------------------------------------------------

    def send_current(self) -> None:
        text = self.input.toPlainText().strip()
        if not text or self.current is None or self.current.busy or self.tray.copying:
            return
        controller = self.current
        conversation = controller.conversation
        attached = self.tray.take()
        self.tray.show_for(conversation.workspace)
        if self._editing:
            # Forgotten here, not on the worker, so the window shows the shortened conversation at once.
            controller.agent.forget_last_message()
            self.chat.show_conversation(conversation)
            self._editing = False
        elif not conversation.actions() and conversation.last_user_message() is None:
            conversation.set_title(text.splitlines()[0][:60])
            self._refresh_conversations()
        self.input.clear()
        self.chat.add_user_message(text, [a.to_json() for a in attached])
        controller.send(text, [Path(conversation.workspace) / a.name for a in attached])

    def _last_turn(self):
        """(conversation, its last user message) when there is one and nothing runs."""
        if self.current is None or self.current.busy:
            return None, None
        conversation = self.current.conversation
        return conversation, conversation.last_user_message()

    def regenerate(self) -> None:
        conversation, last = self._last_turn()
        if last is None:
            return
        self.current.agent.forget_answer()  # at once, for the window; the turn's own call is then a no-op
        self.chat.show_conversation(conversation)
        self.current.regenerate()

    def edit_last(self) -> None:
        conversation, last = self._last_turn()
        if last is None:
            return
        entry = user_entry(last)
        self._editing = True
        self.input.setPlainText(entry.text)
        self.input.setFocus()
        workspace = Path(conversation.workspace)
        self.tray.pending[workspace] = [Attachment(**f) for f in entry.files if (workspace / f["name"]).exists()]
        self.tray.show_for(workspace)
        self._update_controls()

    def cancel_edit(self) -> None:
        if self._editing:
            self._editing = False
            self.input.clear()
            if self.current is not None:
                self.tray.discard(Path(self.current.conversation.workspace))
                self.tray.show_for(Path(self.current.conversation.workspace))
            self._update_controls()

    def stop(self) -> None:
        if self.current is not None and self.current.busy:
            self.current.stop()

    def set_network(self, on: bool) -> None:
        """The per-conversation network switch: the kernel restarts with or without it."""
        if self.current is None:
            return
        controller = self.current
        if on and not self.confirm("Allow network for code?",
                                   "Code in this conversation will be able to reach the internet and your local "
                                   "network (for example for pip install). The Python kernel restarts: variables "
                                   "are lost, files are kept."):
            self.sandbox_status.show_kernel(controller.kernel)  # back to unchecked
            return
        controller.conversation.set_network_allowed(on)
        self.kernel_label.setText("kernel: restarting")
        threading.Thread(target=controller.kernel.set_network, args=(on,), name="kernel-network", daemon=True).start()
        self.chat.add_notice(("Network is on for code in this conversation" if on else
                              "Network is off for code in this conversation") + "; the kernel was restarted.")

    def restart_kernel(self) -> None:
        if self.current is None or not self.confirm(
                "Restart the kernel?", "Variables, imports and anything computed in this conversation are lost; "
                "files in its folder are kept."):
            return
        kernel = self.current.kernel
        self.kernel_label.setText("kernel: restarting")
        threading.Thread(target=kernel.restart, name="restart-kernel", daemon=True).start()
        self.chat.add_notice("The kernel was restarted: variables and imports are gone; files are kept.")

    def _on_event(self, controller: ConversationController, event) -> None:
        if isinstance(event, ev.ActionFinished) and event.files and controller is self.current:
            self.files_panel.refresh()
        if controller is not self.current:
            return  # shown from the history when the user comes back to it
        self.chat.handle(event)
        if isinstance(event, (ev.ActionStarted, ev.ActionFinished)):
            self._kernel_busy = isinstance(event, ev.ActionStarted)
            self.kernel_label.setText("kernel: busy" if self._kernel_busy else "kernel: ready")
            self._update_controls()
        elif isinstance(event, ev.ReplyDone):
            stats = event.stats
            if stats.get("tokens_per_second"):
                self.speed_label.setText(f"{stats['tokens_per_second']:.1f} tokens/s")
            if self.backend is not None:
                used = stats.get("prompt_tokens", 0) + stats.get("completion_tokens", 0)
                self.context_label.setText(f"context {used} / {self.backend.info.n_ctx}")
        elif isinstance(event, ev.TurnDone):
            self.files_panel.refresh()  # uploads are recorded when the turn starts

    def _on_busy(self, controller: ConversationController, busy: bool) -> None:
        if controller is self.current:
            if not busy:
                self._kernel_busy = False
            self._update_controls()

    def _on_approval(self, controller: ConversationController, action_id: str) -> None:
        card = self.chat.cards.get(action_id)
        if card is None:
            return
        card.on_decide = lambda a, run, code: controller.decide(a, Approval(run=run, code=code))
        # Focus goes to Run unless the user is typing their next message.
        card.ask_approval(take_focus=not self.input.hasFocus() or not self.input.toPlainText())
        self.chat.ensureWidgetVisible(card.approval_bar)

    def closeEvent(self, event):  # noqa: N802
        self.tray.discard_all()
        for controller in self.controllers.values():
            controller.shutdown()
        super().closeEvent(event)

