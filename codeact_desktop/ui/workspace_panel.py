"""The conversation's files: what the user gave and what the code made, newest first,
with open, reveal in the file manager, and save as."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QMimeDatabase, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout,
    QWidget,
)

from .. import no_follow
from ..paths import save_suggestion
from ..sizes import human_size
from ..agent.workspace import (PAGE_SUFFIXES, file_head, looks_like_page, page_question, why_not_open,
                               without_leading_blanks)
from ..opened_copies import discard, private_copy
from ..store.history import Conversation
from ..visible_text import visible_name
from .background import BackgroundWork
from .untrusted_text import plain_tip, show_message


def reveal_in_file_manager(root: Path, relative: str) -> bool:
    """Shows the entry ``relative`` below the conversation's folder ``root`` without opening
    it. Finder and Explorer select the entry itself (they never open it). Elsewhere the
    desktop is asked to open a folder, and any folder below ``root`` could be swapped by
    running code for a file that the desktop would then open by its content; so the
    conversation's folder opens (a mount point in the kernel's namespace, which the code
    cannot rename or replace). False when nothing could be asked to show it."""
    path = root / relative
    try:
        if sys.platform == "darwin":
            subprocess.Popen(["open", "-R", str(path)])
        elif sys.platform == "win32":
            subprocess.Popen(["explorer", "/select,", str(path)])
        else:
            return QDesktopServices.openUrl(QUrl.fromLocalFile(str(root)))
    except OSError:
        return False
    return True


def no_program_text(name: str) -> str:
    suffix = Path(name).suffix
    kind = f"“{visible_name(suffix)}” files" if suffix else "files like this one"
    return f"No program on this computer is set to open {kind}, so {visible_name(name)} was not opened."


# Types a desktop runs or installs when "opened", and types it shows in the web browser.
RUNNABLE_TYPES = frozenset("""
application/x-executable application/x-sharedlib application/x-ms-dos-executable application/x-msdownload
application/x-msi application/x-ms-shortcut application/x-desktop application/x-shellscript
application/vnd.debian.binary-package application/x-rpm application/vnd.flatpak application/vnd.flatpak.ref
application/vnd.flatpak.repo application/vnd.snap application/x-iso9660-image application/x-apple-diskimage
application/x-java-archive application/x-java-jnlp-file application/x-xpinstall application/x-ms-application
application/x-appimage application/x-cd-image application/x-raw-disk-image application/x-raw-disk-image-xz-compressed
application/vnd.squashfs application/x-mswinurl application/x-ms-wim
""".split())
PAGE_TYPES = frozenset("text/html application/xhtml+xml image/svg+xml application/xml text/xml "
                       "multipart/related application/x-mimearchive".split())
SAID_COPY_BYTES = 64 << 20  # Open says it is copying a file larger than this (about a second or more)
SHOWN_FILES = 500  # rows the panel lists; each is checked on disk at every refresh


def workspace_files(conversation: Conversation, limit: int) -> tuple[list[dict], int]:
    """One row per path (its latest record), newest first, at most ``limit``, with the
    action's number; and how many paths there are in all."""
    numbers = {a["id"]: n for n, a in enumerate(conversation.actions(), start=1)}
    rows, count = conversation.latest_files(limit)
    return [dict(row, action_number=numbers.get(row["action_id"])) for row in rows], count


def button_row(layout, specs) -> list[QPushButton]:
    """A row of buttons, each (text, slot, accessible name), added to ``layout``."""
    row = QHBoxLayout()
    buttons = []
    for text, slot, name in specs:
        button = QPushButton(text)
        button.setAccessibleName(name)
        button.clicked.connect(slot)
        row.addWidget(button)
        buttons.append(button)
    layout.addLayout(row)
    return buttons

class WorkspacePanel(QWidget):
    """The Files panel: the conversation's files, to open, show in their folder or save."""

    save_failed = Signal(str)
    open_refused = Signal(str)

    def __init__(self, background: BackgroundWork, opened_copies: Path, parent=None):
        """``background``: the window's, so quitting waits for a save still copying;
        ``opened_copies``: where Open puts the copies it hands the desktop (no kernel reaches it)."""
        super().__init__(parent)
        self.background, self.opened_copies = background, opened_copies
        self.save_failed.connect(lambda text: show_message(self, "Save as", text, warning=True))
        self.open_refused.connect(lambda text: show_message(self, "Not opened", text))
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
        self.open_button, self.reveal_button, self.save_button = button_row(layout, (
            ("Open", self.open_selected, "open file"),
            ("Show in folder", self.reveal_selected, "show file in folder"),
            ("Save as…", self.save_selected, "save file as")))
        self.open_button.setToolTip("Opens a read-only copy of the file (a web page opens where it is). "
                                    "To change a file, use Save as… first.")
        self._build_notice(layout)
        self._update_buttons()

    def _build_notice(self, layout) -> None:
        """What went wrong with Open or Show in folder, said in the panel beside the file
        (not in a modal box), with what the user can do instead."""
        self.notice = QWidget()
        self.notice.setObjectName("openNotice")
        box = QVBoxLayout(self.notice)
        box.setContentsMargins(0, 4, 0, 0)
        self.notice_label = QLabel()
        self.notice_label.setObjectName("notice")
        self.notice_label.setWordWrap(True)
        self.notice_label.setTextFormat(Qt.PlainText)  # file names are the code's: never markup
        self.notice_label.setTextInteractionFlags(Qt.TextSelectableByMouse)  # the path can be selected
        self.notice_label.setAccessibleName("file message")
        box.addWidget(self.notice_label)
        self.notice_open, self.notice_reveal, self.notice_copy, self.notice_close = button_row(box, (
            ("Open in browser", self._open_notice_page, "open the page in the web browser"),
            ("Show in folder", self._reveal_notice_file, "show it in its folder"),
            ("Copy path", self._copy_notice_path, "copy the file's path"),
            ("Close", self.notice.hide, "close the message")))
        layout.addWidget(self.notice)
        self.notice.hide()
        self._notice_relative: str | None = None

    def show_conversation(self, conversation: Conversation | None) -> None:
        self.conversation = conversation
        self.notice.hide()
        self.refresh()

    def refresh(self) -> None:
        selected = self.selected_path()
        self.list.clear()
        if self.conversation is None:
            return
        rows, count = workspace_files(self.conversation, SHOWN_FILES)
        for row in rows:
            path = Path(self.conversation.workspace) / row["path"]
            origin = "you added it" if row["origin"] == "uploaded" else (
                f"from action {row['action_number']}" if row["action_number"] else "made by code")
            kind = no_follow.kind(self.conversation.workspace, row["path"])
            missing = {"file": "", "folder": "", "missing": " · deleted"}.get(kind, " · a link, not followed")
            item = QListWidgetItem(f"{visible_name(row['path'])}\n{human_size(row['size'])} · {origin}{missing}")
            item.setData(Qt.UserRole, row["path"])
            item.setToolTip(plain_tip(visible_name(str(path))))
            if missing:
                item.setForeground(Qt.gray)
            self.list.addItem(item)
            if selected and str(path) == str(selected):
                item.setSelected(True)
        if count > len(rows):
            more = QListWidgetItem(f"… and {count - len(rows):,} older files, not listed here "
                                   "(Show in folder shows them all)")
            more.setFlags(Qt.NoItemFlags)  # a line of text, not a file
            self.list.addItem(more)
        self.empty.setVisible(not rows)
        self.title.setText(f"<b>Files</b> ({count:,})" if rows else "<b>Files</b>")
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
        if self.list.selectedItems() and self.selected_relative() != self._notice_relative:
            self.notice.hide()  # it spoke of another file

    def open_selected(self) -> None:
        relative = self.selected_relative()
        if relative is None:
            return
        refused, question = self._judge(relative)
        if refused:
            self.open_refused.emit(refused)
        elif question:
            self.tell(relative, question, reveal=True, open_page=True)
        else:
            self._open(relative)

    def _open_notice_page(self) -> None:
        relative = self._notice_relative
        if relative is None or self.conversation is None:
            return
        refused, _ = self._judge(relative)
        if refused:  # judged again: the code may have swapped it meanwhile
            self.tell(relative, refused)
            return
        self._open(relative, asked=True)

    def _judge(self, relative: str, workspace: Path | None = None) -> tuple[str, str]:
        """Why Open will not hand this entry to the desktop, or what it asks first (a page):
        by name and first bytes (``why_not_open``, ``looks_like_page``), and by the type the
        desktop itself will give a file (Qt's copy of shared-mime-info, which xdg-open and
        gio use too, by its name and first 4 KB). ``workspace``: where ``relative`` is, the
        conversation's folder unless it is the private copy's."""
        workspace = workspace or Path(self.conversation.workspace)
        refused = why_not_open(workspace, relative)
        if refused:
            return refused, ""
        types: set[str] = set()
        if no_follow.kind(workspace, relative) == "file":
            # The bytes as written (the desktop's rules sit at fixed offsets) and from the first
            # non-blank one (what a more lenient sniffer sees): a runnable type by either is refused.
            written = file_head(workspace, relative, as_written=True)
            for head in (written, without_leading_blanks(written)):
                kind = QMimeDatabase().mimeTypeForFileNameAndData(Path(relative).name, head or b"")
                types |= {kind.name(), *kind.allAncestors()}
                if types & RUNNABLE_TYPES:
                    return (f"{visible_name(Path(relative).name)} is a {kind.comment() or kind.name()}: it could "
                            "start a program or install one when opened, and the code wrote it, so it is not "
                            "opened from here. Use Show in folder to look at it."), ""
        if types & PAGE_TYPES or looks_like_page(workspace, relative):
            return "", page_question(relative)
        return "", ""

    def _open(self, relative: str, asked: bool = False) -> None:
        """Hands the entry to the desktop: a file as a private copy judged again
        (opened_copies.py), so what opens is what was judged whatever running code does
        meanwhile. A folder is shown in the file manager (``reveal_in_file_manager``). A
        page named as a page opens in place: the browser then shows a page whatever the code
        swaps in, and the user has said yes to one (``asked``)."""
        workspace = Path(self.conversation.workspace)
        kind = no_follow.kind(workspace, relative)
        if kind == "folder":  # shown, never handed over by a path the code can swap (reveal_in_file_manager)
            self._reveal(relative)
            return
        if kind != "file":  # swapped for a link or a FIFO since it was judged
            self.tell(relative, why_not_open(workspace, relative))
            return
        if Path(relative).suffix.lower() in PAGE_SUFFIXES:
            self._hand_to_desktop(relative, workspace / relative)
            return
        conversation, name = self.conversation, visible_name(Path(relative).name)
        try:
            size = (workspace / relative).lstat().st_size
        except OSError:
            size = 0  # gone meanwhile: the copy says so
        if size > SAID_COPY_BYTES:  # seconds of copying: say what is happening
            self.tell(relative, f"Copying {name} ({human_size(size)}) to open it…")

        def opened(copy: Path) -> None:
            if self.conversation is not conversation:
                discard(copy)
                return  # the user went to another conversation meanwhile
            refused, question = self._judge(copy.name, copy.parent)
            if refused:
                discard(copy)
                self.notice.hide()
                self.open_refused.emit(refused)
            elif question and not asked:  # the code made it a page since it was judged
                discard(copy)
                self.tell(relative, question, reveal=True, open_page=True)
            elif not self._hand_to_desktop(relative, copy):
                discard(copy)

        self.background.run("open file", lambda: private_copy(workspace, relative, self.opened_copies), opened,
                            lambda error: self.conversation is conversation and self.tell(
                                relative, f"{name} could not be opened: {visible_name(error)}", reveal=True))

    def _hand_to_desktop(self, relative: str, path: Path) -> bool:
        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            self.notice.hide()
            return True
        # nothing opens this kind of file: say so, where a silent click would look broken
        self.tell(relative, no_program_text(Path(relative).name) + " You can look at it in its folder.", reveal=True)
        return False

    def reveal_selected(self) -> None:
        relative = self.selected_relative()
        if relative is not None and self._selected_kind() in ("file", "folder"):
            self._reveal(relative)

    def tell(self, relative: str, text: str, reveal: bool = False, copy: bool = False,
             open_page: bool = False) -> None:
        """Shows ``text`` about the entry ``relative`` in the panel, with the buttons asked for."""
        self._notice_relative = relative
        self.notice_label.setText(text)
        self.notice_open.setVisible(open_page)
        self.notice_reveal.setVisible(reveal)
        self.notice_copy.setVisible(copy)
        self.notice.show()

    def _reveal_notice_file(self) -> None:
        relative = self._notice_relative
        if relative is None or self.conversation is None:
            return
        # Checked again: the code may have replaced the file with a link since.
        if no_follow.kind(self.conversation.workspace, relative) not in ("file", "folder"):
            refused = why_not_open(self.conversation.workspace, relative)
            self.tell(relative, refused)
            return
        self._reveal(relative)

    def _reveal(self, relative: str) -> None:
        if not reveal_in_file_manager(Path(self.conversation.workspace), relative):
            self._cannot_show(relative)
        elif sys.platform not in ("darwin", "win32") and len(Path(relative).parts) > 1:
            # The conversation's folder opened, not the one the entry is in: say where it is.
            self.tell(relative, f"{visible_name(Path(relative).name)} is in the folder "
                                f"{visible_name(str(Path(relative).parent))} of the conversation's folder, "
                                "which opened.")
        else:
            self.notice.hide()

    def _cannot_show(self, relative: str) -> None:
        """No file manager answered either: where the entry is, and its path to copy."""
        path = Path(self.conversation.workspace) / relative
        self.tell(relative, f"No file manager could show {visible_name(path.name)}. It is in:\n"
                            f"{visible_name(str(path.parent))}", copy=True)

    def _copy_notice_path(self) -> None:
        if self._notice_relative is None or self.conversation is None:
            return
        path = Path(self.conversation.workspace) / self._notice_relative
        if visible_name(str(path)) != str(path):
            # A name with a newline or an escape sequence pasted into a terminal runs what follows it;
            # the code may have named the folders on the way the same.
            folder = next(p for p in path.parents if visible_name(str(p)) == str(p))
            QGuiApplication.clipboard().setText(str(folder))
            self.tell(self._notice_relative, "The name holds characters a terminal would act on, so the folder's "
                                             f"path was copied instead:\n{visible_name(str(folder))}")
            return
        QGuiApplication.clipboard().setText(str(path))
        self.tell(self._notice_relative, f"Copied the path:\n{visible_name(str(path))}")

    def save_selected(self) -> None:
        relative, kind = self.selected_relative(), self._selected_kind()
        if relative is None or kind not in ("file", "folder"):
            return
        workspace, name = Path(self.conversation.workspace), Path(relative).name
        target, _ = QFileDialog.getSaveFileName(self, "Save as", str(save_suggestion(name)))
        if not target:
            return

        def work() -> str:  # a large file must not freeze the window
            try:
                if kind == "folder":  # nothing outside is copied through a link inside
                    links = no_follow.copy_tree_out(workspace, relative, Path(target))
                    if links:
                        return (f"{visible_name(name)} was saved without the {links} link(s) inside it: "
                                "links the code made can point anywhere on this computer.")
                else:
                    no_follow.copy_out(workspace, relative, Path(target))
            except OSError as exc:  # its words may hold a name the code chose: shown on one line
                return f"{visible_name(name)} could not be saved: {visible_name(str(exc))}"
            return ""

        self.background.run("save file", work, lambda problem: self.save_failed.emit(problem) if problem else None,
                            lambda error: self.save_failed.emit(
                                f"{visible_name(name)} could not be saved: {visible_name(error)}"))
