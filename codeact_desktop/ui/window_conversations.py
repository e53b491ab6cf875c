"""The conversations' lives in the window: a new one, opening one (its controller and its
kernel, made on first open), renaming, exporting, and deleting, which frees the
conversation's controller and kernel and removes its folder in the background."""

from __future__ import annotations

from pathlib import Path

from ..action_status import ActionStatus
from ..engine import start_kernel
from ..no_follow import remove_tree
from ..opened_copies import copies_of
from ..paths import save_suggestion
from ..resources import messages
from ..visible_text import visible_name
from .controller import ConversationController

EXPORT_FILTERS = {"Jupyter notebook (*.ipynb)": ".ipynb", "Markdown (*.md)": ".md", "HTML page (*.html)": ".html"}


def _ran(status: str) -> bool:
    known = ActionStatus.of(status)
    return known is not None and known.ran


class WindowConversations:
    """The main window's part that opens, renames, exports and deletes conversations
    (mixed into ``MainWindow``, which owns ``store``, ``controllers`` and ``current``)."""

    def new_conversation(self) -> None:
        # An empty conversation is already open: that one, not a row of identical empty ones.
        if self.current is not None and self._is_empty(self.current.conversation):
            self.input.setFocus()
            return
        conversation = self.store.create_conversation(self.paths.workspaces)
        self.sidebar.refresh()
        self._open(conversation.id)

    def choose_first_conversation(self) -> None:
        """The conversation used last, or a new one when there is none yet."""
        if not self.sidebar.choose_first():
            self.new_conversation()

    def _is_empty(self, conversation) -> bool:
        return conversation.last_user_message() is None and not self.tray.has_files(Path(conversation.workspace))

    def _open(self, conv_id: str) -> None:
        if self.current is not None and self.current.conversation.id == conv_id:
            return
        if self.backend is None and not self.models.loading:
            return  # the welcome page is shown: no model, so no conversation to open
        self.cancel_edit()
        controller = self.controllers.get(conv_id) or self._make_controller(conv_id)
        self.current = controller
        self.keep_alive.used(conv_id)
        self.stop_unused_kernels()
        # The last reply's figures belonged to the conversation left behind.
        self.status.set_speed(None)
        if self.backend is not None:
            self.status.set_context(self.backend.info.n_ctx)
            self.count_context()  # "used / n_ctx" follows when counted
        self.chat.show_conversation(controller.conversation)
        self.files_panel.show_conversation(controller.conversation)
        self.tray.show_for(controller.conversation.workspace)
        # Its kernel's last word; its events follow from here on.
        self.status.show_kernel(getattr(controller.kernel, "state", None), controller.kernel.network)
        self._update_controls()
        self.sidebar.mark_current(conv_id)

    def _make_controller(self, conv_id: str) -> ConversationController:
        conversation = self.store.open_conversation(conv_id)
        if any(_ran(a["status"]) for a in conversation.actions()):
            self._note_kernel_state_lost(conversation)
        kernel = self._early_kernels.pop(conv_id, None) or start_kernel(  # in the background
            self.paths, conversation.workspace, network=conversation.network_allowed())
        controller = ConversationController(self.backend, kernel, conversation, self.agent_settings,
                                            require_approval=self.settings.require_approval, parent=self)
        controller.engine_event.connect(lambda e, c=controller: self._on_event(c, e))
        controller.busy_changed.connect(lambda busy, c=controller: self._on_busy(c, busy))
        controller.approval_requested.connect(lambda a, code, c=controller: self._on_approval(c, a))
        self.controllers[conv_id] = controller
        return controller

    def _note_kernel_state_lost(self, conversation) -> None:
        """Code ran here in an earlier session; its variables died with that kernel."""
        text = messages()["kernel_state_lost"]
        # Among the notices since the last message, not only the last one: the model's
        # notices of a start come after it (window_model.py).
        trailing = []
        for message in reversed(conversation.messages()):
            if message["kind"] != "notice":
                break
            trailing.append(message["content"])
        if text not in trailing:
            conversation.add_message("system", "notice", text)

    def rename_conversation(self) -> None:
        if self.current is None:
            return
        conversation = self.current.conversation
        title = self.ask_text("Rename conversation", "Name:", conversation.title())
        if title and title.strip():
            conversation.set_title(title.strip())
            self.sidebar.refresh()

    def delete_conversation(self) -> None:
        if self.current is None:
            return
        controller = self.current
        conversation = controller.conversation
        if not self.confirm("Delete conversation",
                            f"Delete “{conversation.title()}”? Its messages and outputs, and the files in its "
                            "folder, are removed. This cannot be undone.", yes="Delete", no="Cancel"):
            return
        messages, _ = conversation.model_messages()
        backend = self.backend
        self.store.delete_conversation(conversation.id)
        self.controllers.pop(conversation.id, None)
        self.keep_alive.forget(conversation.id)
        self.current = None
        self._disconnect(controller)  # nothing it still says reaches the window
        workspace = Path(conversation.workspace)
        ours = self.paths.workspaces.resolve() in workspace.resolve().parents
        kernel_home = self.paths.kernel_home_for(workspace)
        copies = copies_of(workspace, self.paths.opened_copies)  # what Open copied of its files

        def work():  # the kernel's shutdown and the folder's removal may take seconds
            controller.shutdown()
            if backend is not None:
                backend.forget(messages)  # what the model read of it, kept to come back to it
            left = [] if remove_tree(kernel_home) else [kernel_home]
            remove_tree(copies)
            if ours and not remove_tree(workspace):  # never remove a folder the user chose for a CLI run
                left.append(workspace)
            return left

        def finished(message: str) -> None:
            self.statusBar().showMessage(message, 8000)
            self._free(controller)

        def removed(left: list[Path]) -> None:
            finished("Conversation deleted." if not left else "The conversation is deleted, but some of its files "
                     f"could not be removed: {', '.join(visible_name(str(p)) for p in left)}")

        self.background.run("delete conversation", work, removed,
                            lambda text: finished(f"The conversation is deleted, but its folder was not "
                                                  f"fully removed: {text}"))
        self.sidebar.refresh()
        if not self.sidebar.choose_first():
            self.new_conversation()

    def stop_unused_kernels(self) -> None:
        """Stops the kernels of conversations beyond the few used last, or idle for long
        (kernel/keep_alive.py). Going back to one starts a new kernel, and the conversation
        says its variables were lost; its files stay."""
        busy = [cid for cid, c in self.controllers.items() if c.busy]
        current = self.current.conversation.id if self.current is not None else None
        for conv_id in self.keep_alive.to_stop(current, busy):
            controller = self.controllers.pop(conv_id, None)
            if controller is None:
                continue
            self._disconnect(controller)
            self.background.run("stop an unused kernel", controller.shutdown,
                                lambda _, c=controller: self._free(c), lambda _, c=controller: self._free(c))

    @staticmethod
    def _disconnect(controller: ConversationController) -> None:
        for signal in (controller.engine_event, controller.busy_changed, controller.approval_requested):
            try:
                signal.disconnect()
            except (RuntimeError, TypeError):  # nothing was connected
                pass

    def _free(self, controller: ConversationController) -> None:
        """Its kernel has stopped: the controller (and its agent) go too."""
        controller.setParent(None)
        controller.deleteLater()

    def export_current(self) -> None:
        if self.current is None:
            return
        conversation = self.current.conversation
        safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in conversation.title()).strip() or "conversation"
        target = self.ask_save_path("Export conversation", str(save_suggestion(f"{safe}.ipynb")),
                                    ";;".join(EXPORT_FILTERS))
        if not target:
            return
        from ..export import export_conversation  # here: nbformat and markdown, 0.2 s of every start otherwise

        self.background.run("export", lambda: export_conversation(conversation, Path(target)),
                            lambda path: self.statusBar().showMessage(f"Exported to {path}", 8000),
                            lambda text: self.statusBar().showMessage(f"Export failed: {text}", 8000))
