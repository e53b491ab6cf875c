"""How files reach the window: dropped on it, picked with Attach, or given to the app (its
command line, a later launch, "Open with", the Dock icon). A lone GGUF is offered as the
model; anything else goes into the tray of the open conversation."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from ..visible_text import visible_name


class WindowFiles:
    """The main window's part that takes files in (mixed into ``MainWindow``, which owns
    ``tray``, ``models``, ``current`` and ``backend``)."""

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
        """Files given to the app rather than to a conversation: a new conversation with
        them attached."""
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
        if self.backend is None and not self.models.loading:  # attached once a model is ready
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

    def pick_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Use a model file", str(Path.home()), "GGUF models (*.gguf)")
        if path:
            self.models.offer_file(Path(path))
