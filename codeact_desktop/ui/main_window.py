"""The main window: conversations on the left (sidebar.py), the chat and the input in the
middle (turn_controls.py), the conversation's files on the right, a status bar below
(status_bar.py), the menus from one table (menu_actions.py). This module composes them
and holds the policy: what opens, what is allowed now, what runs in the background."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFileDialog, QInputDialog, QMainWindow, QMessageBox, QSplitter, QStackedWidget, QVBoxLayout, QWidget,
)

from ..agent import events as ev
from ..agent.attachments import Attachment
from ..agent.loop import AgentSettings, Approval
from ..agent.timeline import user_entry
from ..kernel.conversation_kernel import ConversationKernel
from ..kernel.keep_alive import KernelKeepAlive
from ..kernel.state import KernelState, KernelStatus
from ..llm.base import ChatBackend
from ..paths import AppPaths
from ..settings import Settings
from ..startup_clock import milestone
from ..store.history import HistoryStore
from .attachment_tray import AttachmentTray
from .background import BackgroundWork
from .chat_view import ChatView
from .code_card import highlighted_html
from .controller import ConversationController
from .find_bar import FindBar
from .menu_actions import build_menus
from .model_setup import ModelSetup
from .settings_dialog import SettingsDialog
from .sidebar import ConversationSidebar
from .status_bar import WindowStatusBar
from .theme import apply_theme, follow_system
from .turn_controls import TurnControls
from .untrusted_text import plain_box
from .window_conversations import EXPORT_FILTERS, WindowConversations
from .window_files import WindowFiles
from .window_help import WindowHelp
from .window_model import WindowModel
from .workspace_panel import WorkspacePanel

log = logging.getLogger(__name__)
FILES_PANEL_MIN_WINDOW = 1100  # px: narrower, and the Files panel folds away
FILES_FOLDED = "Files panel folded away: View → Files panel (Ctrl+Shift+F)"
FILES_PANEL_WIDTH = 260
SIDEBAR_WIDTH = 220
CLOSE_WAIT_MS = 10_000  # a delete or an export still running when the window closes
WARM_UP_MS = 300


class MainWindow(WindowConversations, WindowModel, WindowFiles, WindowHelp, QMainWindow):
    """The app's one window: composes the parts and decides what the user may do now."""

    def __init__(self, store: HistoryStore, paths: AppPaths,
                 load_backend: Callable[[], ChatBackend] | None, settings: Settings | None = None,
                 early_kernels: dict[str, ConversationKernel] | None = None):
        """``early_kernels``: kernels started for these conversations before the window was
        built (engine.start_early), taken when each opens."""
        super().__init__()
        self._early_kernels = dict(early_kernels or {})
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
        self._editing = False  # the input holds the last message, to replace it
        self._pending_files: list[Path] = []  # given to the app before a model was ready
        self._context_wanted = self._context_counting = False  # window_model.count_context
        self.background = BackgroundWork(self)
        # Kernels of conversations left behind stop (memory); checked on each open and each minute.
        self.keep_alive = KernelKeepAlive()
        self._idle_check = QTimer(self, interval=60_000, timeout=self.stop_unused_kernels)
        self._idle_check.start()
        self._start_up = {"model ready", "kernel ready"}  # milestones of this start not yet logged
        self.setWindowTitle("CodeAct Desktop")
        self.resize(1240, 780)
        self.setAcceptDrops(True)
        apply_theme(settings.theme)
        follow_system(lambda: self.settings.theme)
        self.models = ModelSetup(paths, lambda: self.settings, self, self.background)
        self.models.ready.connect(self._on_backend_ready)
        self.models.failed.connect(self._on_backend_failed)
        self.models.welcome_built.connect(self._add_welcome)
        self._build()
        build_menus(self)
        self.files_action.setChecked(True)
        self.chat.set_zoom(self.settings.chat_zoom)
        self._update_controls()
        self.sidebar.refresh()
        if load_backend is None:
            self.status.set_model("No model yet")
            self.show_models()
            self._warm_up()
        else:
            self.status.set_model("Loading the model…")
            self.models.load(load_backend, {})
            # The last conversation opens now, its kernel starting while the model loads:
            # usable when the slower of the two is ready, not after both in turn.
            self.choose_first_conversation()

    # -- layout ---------------------------------------------------------------------

    def _build(self) -> None:
        self.sidebar = ConversationSidebar(self.store, self.background)
        self.sidebar.new_requested.connect(self.new_conversation)
        self.sidebar.chosen.connect(self._open)
        self.sidebar.rename_requested.connect(self.rename_conversation)
        self.sidebar.export_requested.connect(self.export_current)
        self.sidebar.delete_requested.connect(self.delete_conversation)
        self.new_button, self.search = self.sidebar.new_button, self.sidebar.search
        self.conversation_list = self.sidebar.conversation_list

        center = QWidget()
        center_layout = QVBoxLayout(center)
        center_layout.setContentsMargins(0, 0, 0, 8)
        self.chat = ChatView()
        self.chat.example_chosen.connect(self.use_example)
        self.find_bar = FindBar(self.chat)
        self.find_bar.closed.connect(lambda: self.input.setFocus())
        self.tray = AttachmentTray(self.background)
        self.tray.changed.connect(self._update_controls)
        self.tray.failed.connect(lambda text: self.chat.add_notice(text, error=True))
        self.turn_controls = controls = TurnControls(self.tray)
        controls.send_requested.connect(self.send_current)
        controls.stop_requested.connect(self.stop)
        controls.attach_requested.connect(self.pick_files)
        controls.regenerate_requested.connect(self.regenerate)
        controls.edit_requested.connect(self.edit_last)
        controls.cancel_edit_requested.connect(self.cancel_edit)
        # Where tests and the app's driver reach them.
        self.input, self.send_button, self.stop_button = controls.input, controls.send_button, controls.stop_button
        self.attach_button, self.turn_bar = controls.attach_button, controls.turn_bar
        self.regenerate_button, self.edit_button = controls.regenerate_button, controls.edit_button
        self.edit_hint, self.cancel_edit_button = controls.edit_hint, controls.cancel_edit_button
        center_layout.addWidget(self.find_bar)
        center_layout.addWidget(self.chat, 1)
        center_layout.addWidget(controls)

        self.files_panel = WorkspacePanel(self.background, self.paths.opened_copies)
        self._files_auto_hidden = False  # hidden because the window got narrow, not by the user
        self._sidebar_dragged = False
        self.splitter = splitter = QSplitter()
        splitter.addWidget(self.sidebar)
        splitter.addWidget(center)
        splitter.addWidget(self.files_panel)
        splitter.setSizes([SIDEBAR_WIDTH, 760, FILES_PANEL_WIDTH])
        splitter.setCollapsible(1, False)
        splitter.splitterMoved.connect(lambda pos, index: index == 1 and setattr(self, "_sidebar_dragged", True))
        self.pages = QStackedWidget()
        self.pages.addWidget(splitter)
        self.setCentralWidget(self.pages)

        self.status = WindowStatusBar()
        self.setStatusBar(self.status)
        self.status.interrupt_requested.connect(self.stop)
        self.status.restart_requested.connect(self.restart_kernel)
        self.status.network_toggled.connect(self.set_network)
        self.model_label, self.speed_label = self.status.model_label, self.status.speed_label
        self.context_label, self.kernel_label = self.status.context_label, self.status.kernel_label
        self.sandbox_status = self.status.sandbox_status
        self.interrupt_button, self.restart_button = self.status.interrupt_button, self.status.restart_button

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
            self.statusBar().showMessage(FILES_FOLDED, 6000)  # short: the window is narrow
        elif not narrow and self._files_auto_hidden:
            self.show_files_panel(True)
            if self.statusBar().currentMessage() == FILES_FOLDED:
                self.statusBar().clearMessage()
        side, center, files = self.splitter.sizes()
        if self.files_panel.isVisible() and files < FILES_PANEL_WIDTH // 2:
            files = FILES_PANEL_WIDTH  # a panel shown again gets its room back
        # A fifth of the window, 150 to 220 px, until the user drags it: then only narrowed.
        fitting = max(self.sidebar.minimumWidth(), min(SIDEBAR_WIDTH, self.width() // 5))
        side = fitting if side > fitting or not self._sidebar_dragged else side
        center = max(0, self.width() - side - (files if self.files_panel.isVisible() else 0))
        self.splitter.setSizes([side, center, files])
        self.status.fit(self.width())

    def _update_controls(self) -> None:
        """Enables what makes sense now: one place, called whenever state changes."""
        busy = self.current is not None and self.current.busy
        has_turn = (self.current is not None and not busy and self.backend is not None
                    and self.current.conversation.last_user_message() is not None)
        self.turn_controls.show_state(self.current is not None, busy, has_turn, self._editing,
                                      model_ready=self.backend is not None)
        if hasattr(self, "stop_action"):  # Esc, when idle, closes the find bar by itself
            self.stop_action.setEnabled(busy)
        self.status.show_controls(self.current is not None, busy)

    # -- menu slots (menu_actions.py names them) ------------------------------------

    def focus_input(self) -> None:
        self.input.setFocus()

    def open_find_bar(self) -> None:
        self.find_bar.open_bar()

    def zoom_in(self) -> None:
        self.set_zoom(self.chat.zoom + 1)

    def zoom_out(self) -> None:
        self.set_zoom(self.chat.zoom - 1)

    def zoom_reset(self) -> None:
        self.set_zoom(0)

    def toggle_files_panel(self) -> None:
        self.show_files_panel(not self.files_panel.isVisible())

    # dialogs and the desktop go through these, so tests can answer them
    def confirm(self, title: str, text: str, yes: str = "Yes", no: str = "No") -> bool:
        # No is the default: Enter on a question that loses something must not lose it. Plain
        # text: a question may quote a dropped file's name or its header (a hostile GGUF's).
        # The buttons say what they do ("Delete", "Cancel") where the question allows it.
        box = plain_box(self, QMessageBox.Question, title, text, QMessageBox.Yes | QMessageBox.No)
        box.button(QMessageBox.Yes).setText(yes)
        box.button(QMessageBox.No).setText(no)
        box.setDefaultButton(QMessageBox.No)
        return box.exec() == QMessageBox.Yes

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

    # -- settings -------------------------------------------------------------------

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.result_settings()))
        dialog.open()

    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        settings.apply_to(self.agent_settings)
        for controller in self.controllers.values():
            controller.set_require_approval(settings.require_approval)
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

    # -- talking ----------------------------------------------------------------------

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

    def send_current(self) -> None:
        text = self.input.toPlainText().strip()
        if not text or self.current is None or self.current.busy or self.tray.copying or self.backend is None:
            return  # (Enter while the model loads: the text stays in the input)
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
            self.sidebar.refresh()
        self.input.clear()
        self.chat.add_user_message(text, [a.to_json() for a in attached])
        controller.send(text, [Path(conversation.workspace) / a.name for a in attached])

    def _last_turn(self):
        """(conversation, its last user message) when there is one, nothing runs and the
        model is ready (a shortcut reaches here even while the buttons are hidden)."""
        if self.current is None or self.current.busy or self.backend is None:
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
        self.tray.put_back(workspace, [Attachment(**f) for f in entry.files if (workspace / f["name"]).exists()])
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

    # -- the kernel ---------------------------------------------------------------------

    def set_network(self, on: bool) -> None:
        """The per-conversation network switch: the kernel restarts with or without it."""
        if self.current is None:
            return
        controller = self.current
        if on and not self.confirm("Allow network for code?",
                                   "Code in this conversation will be able to reach the internet and your local "
                                   "network (for example for pip install). The Python kernel restarts: variables "
                                   "are lost, files are kept.", yes="Allow network", no="Cancel"):
            self.sandbox_status.undo_toggle()
            return
        controller.conversation.set_network_allowed(on)
        self.background.run("kernel network", lambda: controller.kernel.set_network(on),
                            on_failed=self._restart_failed)
        self.chat.add_notice(("Network is on for code in this conversation" if on else
                              "Network is off for code in this conversation") + "; the kernel was restarted.")

    def restart_kernel(self) -> None:
        if self.current is None or not self.confirm(
                "Restart the kernel?", "Variables, imports and anything computed in this conversation are lost; "
                "files in its folder are kept.", yes="Restart", no="Cancel"):
            return
        self.background.run("restart kernel", self.current.kernel.restart, on_failed=self._restart_failed)
        self.chat.add_notice("The kernel was restarted: variables and imports are gone; files are kept.")

    def _restart_failed(self, text: str) -> None:
        self.chat.add_notice(f"The kernel did not restart: {text}", error=True)

    # -- engine events --------------------------------------------------------------------

    def _on_event(self, controller: ConversationController, event) -> None:
        if controller is not self.current:
            return  # shown from the history when the user comes back to it
        if isinstance(event, KernelState):
            if event.status == KernelStatus.READY:
                self.reached("kernel ready")
            self.status.show_kernel(event, controller.kernel.network)
            self._update_controls()
            return
        if isinstance(event, ev.ActionFinished) and event.files:
            self.files_panel.refresh()
        self.chat.handle(event)
        if isinstance(event, ev.ActionStarted):
            self._update_controls()
        elif isinstance(event, ev.ReplyDone):
            stats = event.stats
            self.status.set_speed(stats.get("tokens_per_second"))
            if self.backend is not None:
                used = stats.get("prompt_tokens", 0) + stats.get("completion_tokens", 0)
                self.status.set_context(self.backend.info.n_ctx, used)
        elif isinstance(event, ev.TurnDone):
            self.files_panel.refresh()  # uploads are recorded when the turn starts
            if event.reason in ("cancelled", "error"):
                self.count_context()  # no reply's figures came: counted once the turn has ended

    def reached(self, what: str) -> None:
        """A start-up milestone, logged once (``startup_clock``); both: the app is usable."""
        if what in self._start_up:
            self._start_up.discard(what)
            milestone(what)
            if not self._start_up:
                milestone("conversation usable")
                self._warm_up()

    def _warm_up(self) -> None:
        """pygments compiles its Python rules on first use (0.04 s alone), on the UI thread
        and holding the GIL that the model's load and the kernel's start want too: so once
        those are done (or there is no model to load), and not in the middle of a reply."""
        QTimer.singleShot(WARM_UP_MS, lambda: highlighted_html("x = 1"))

    def _on_busy(self, controller: ConversationController, busy: bool) -> None:
        self.keep_alive.used(controller.conversation.id)
        if controller is self.current:
            self._update_controls()
        if not busy and self._context_wanted:
            self.count_context(ended=controller)

    def _on_approval(self, controller: ConversationController, action_id: str) -> None:
        card = self.chat.cards.get(action_id)
        if card is None:
            return
        card.decided.connect(self._decide, Qt.UniqueConnection)
        # Focus goes to Run unless the user is typing their next message.
        card.ask_approval(take_focus=not self.input.hasFocus() or not self.input.toPlainText())
        self.chat.ensureWidgetVisible(card.approval_bar)

    def _decide(self, action_id: str, run: bool, code: str | None) -> None:
        # The controller waiting on this action takes it; the others have no such action.
        for controller in self.controllers.values():
            controller.decide(action_id, Approval(run=run, code=code))

    def _add_welcome(self, page) -> None:
        """The models page, built when first shown (``ModelSetup.welcome``)."""
        self.pages.addWidget(page)
        page.back_requested.connect(self.show_chat)

    def closeEvent(self, event):  # noqa: N802
        from .download_dialog import DownloadDialog  # imported already where one was opened

        self.tray.discard_all()
        for dialog in self.findChildren(DownloadDialog):  # a download stops; what came is kept
            if not dialog.shut_down(CLOSE_WAIT_MS):
                log.warning("closing with the download of %s still running", dialog.entry.name)
        # A delete, an export, a save or a copy still running ends first (bounded): a file
        # whole, a folder gone.
        if not self.background.close(CLOSE_WAIT_MS):
            log.warning("closing with background work still running: %s", self.background.running)
        for controller in self.controllers.values():
            controller.shutdown()
        for kernel in self._early_kernels.values():  # started for a conversation that never opened
            kernel.shutdown()
        super().closeEvent(event)
