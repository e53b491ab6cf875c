"""Files waiting to go with the next message: copied into the workspace on the window's
background work (progress, cancel), shown as chips above the input, each removable."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from ..agent.attachments import Attachment, CopyCancelled, copy_into_workspace, links_note
from ..no_follow import remove_tree
from ..sizes import human_size
from ..visible_text import visible_name
from .background import BackgroundWork
from .flow_layout import FlowLayout


class AttachmentTray(QWidget):
    """The files that go with the next message, per conversation: copies them in, shows
    them, and takes back the ones the user removes."""

    changed = Signal()
    failed = Signal(str)
    # From the copy worker, queued to the UI thread; objects, as byte counts pass 2**31.
    _progress = Signal(object, object)

    def __init__(self, background: BackgroundWork, parent=None):
        """``background``: the window's, so quitting waits for a copy or a removal to end."""
        super().__init__(parent)
        self.background = background
        self.setObjectName("attachmentTray")
        self.pending: dict[Path, list[Attachment]] = {}  # per workspace (conversation)
        self.workspace: Path | None = None
        # Copies this tray made and no message has named yet: the only ones it may delete
        # (an edited message's files are back in the tray too, and stay).
        self._unsent: set[tuple[Path, str]] = set()
        self._cancel: threading.Event | None = None
        self._layout = FlowLayout(self)  # chips wrap: the tray never widens the window
        self._layout.setContentsMargins(16, 0, 16, 4)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("copy progress")
        self.progress.setMaximumWidth(260)
        self.progress_label = QLabel()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("cancel copy")
        self.cancel_button.clicked.connect(self.cancel_copy)
        for widget in (self.progress, self.progress_label, self.cancel_button):
            widget.setParent(self)
        self._chips: list[QWidget] = []
        self._progress.connect(self._on_progress)
        self._render()

    @property
    def copying(self) -> bool:
        return self._cancel is not None

    def files(self) -> list[Attachment]:
        return list(self.pending.get(self.workspace, []))

    def show_for(self, workspace: Path) -> None:
        self.workspace = workspace
        self._render()

    def has_files(self, workspace: Path) -> bool:
        return bool(self.pending.get(Path(workspace)))

    def put_back(self, workspace: Path, attachments: list[Attachment]) -> None:
        """An edited message's files, already in the folder, wait in the tray again (and
        stay there if the edit is cancelled: that message names them)."""
        self.pending[Path(workspace)] = list(attachments)
        self.show_for(Path(workspace))

    def add_paths(self, paths: list[Path], workspace: Path) -> bool:
        """Starts copying; False (and a message) while another copy runs."""
        if self.copying:
            self.failed.emit("Another copy is still running; wait for it or cancel it.")
            return False
        self.workspace = workspace
        self._cancel = threading.Event()
        cancel = self._cancel

        def work() -> tuple[list[Attachment], str]:  # the copies, the error text
            try:
                return copy_into_workspace(paths, workspace, progress=self._progress.emit, cancel=cancel), ""
            except CopyCancelled:
                return [], ""
            except OSError as exc:  # full disk, unreadable file: nothing is half-copied
                return [], f"Could not copy the files: {exc}"

        if not self.background.run("copy files", work, lambda result: self._on_done(workspace, *result),
                                   lambda error: self._on_done(workspace, [], f"Could not copy the files: {error}")):
            self._cancel = None  # the window is closing
            return False
        self._on_progress(0, 1)
        return True

    def cancel_copy(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def take(self) -> list[Attachment]:
        """The files to send now; the tray empties."""
        taken = self.pending.pop(self.workspace, [])
        self._unsent.difference_update((self.workspace, a.name) for a in taken)
        return taken

    def remove(self, attachment: Attachment, workspace: Path | None = None) -> None:
        """Takes a file back before it is sent: its copy leaves the workspace too, or the
        model could still read a file the user took away (and a new copy would be "x (1)")."""
        workspace = workspace or self.workspace
        self.pending.get(workspace, []).remove(attachment)
        if (workspace, attachment.name) not in self._unsent:
            self._render()
            return  # a sent message's file: the message still names it
        self._unsent.discard((workspace, attachment.name))
        copy = workspace / attachment.name
        # Not through a link the kernel may have put in its place: unlink removes the link itself.
        if copy.is_symlink() or copy.is_file():
            copy.unlink(missing_ok=True)
        elif copy.is_dir() and not self.background.run("remove attachment", lambda: remove_tree(copy)):
            remove_tree(copy)  # the window is closing: now, not never
        self._render()

    def discard(self, workspace: Path) -> None:
        """Empties a conversation's tray; copies no message named go (the originals are
        untouched)."""
        for attachment in list(self.pending.get(workspace, [])):
            self.remove(attachment, workspace)
        self.pending.pop(workspace, None)

    def discard_all(self) -> None:
        """When the window closes: a copy still running stops (its partial file removed, as
        for Cancel) and the folder keeps only what a message named."""
        self.cancel_copy()
        for workspace in list(self.pending):
            self.discard(workspace)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(1000)  # per mille: QProgressBar counts in 32-bit ints
        self.progress.setValue(int(1000 * done / max(total, 1)))
        self.progress_label.setText(f"Copying… {human_size(done)} of {human_size(total)}")
        self._render()

    def _on_done(self, workspace: Path, attached: list, error: str) -> None:
        self._cancel = None
        self.pending.setdefault(workspace, []).extend(attached)
        self._unsent.update((workspace, a.name) for a in attached)
        if error:
            self.failed.emit(error)
        self._render()

    def _render(self) -> None:
        while self._layout.count():  # rebuilt from scratch: a handful of widgets
            widget = self._layout.takeAt(0).widget()
            if widget is not None and widget not in (self.progress, self.progress_label, self.cancel_button):
                widget.deleteLater()
        for widget in (self.progress, self.progress_label, self.cancel_button):
            widget.setVisible(self.copying)
            if self.copying:
                self._layout.addWidget(widget)
        self._chips = []
        for attachment in self.files():
            chip = QWidget()
            chip.setObjectName("chip")
            row = QHBoxLayout(chip)
            row.setContentsMargins(8, 2, 2, 2)
            label = QLabel(" · ".join([visible_name(attachment.name), human_size(attachment.size),
                                       *links_note(attachment)]))
            label.setTextFormat(Qt.PlainText)  # a name such as "<b>x" is not markup
            if attachment.links_left:
                label.setToolTip("Links inside a folder can point anywhere on this computer, so they are not copied.")
            row.addWidget(label)
            remove = QPushButton("×")
            remove.setObjectName("chipRemove")
            remove.setFlat(True)
            remove.setAccessibleName(f"remove {attachment.name}")
            remove.setFixedWidth(24)
            remove.clicked.connect(lambda _=False, a=attachment: self.remove(a))
            row.addWidget(remove)
            self._layout.addWidget(chip)
            self._chips.append(chip)
        self.setVisible(self.copying or bool(self._chips))
        self.changed.emit()
