"""Files given with a request: copied into the workspace, named to the model.

Copies go in 1 MB chunks so a window can show progress and cancel a large file; a
cancelled or failed copy leaves nothing half-written behind. Each copy is written under
a hidden name that carries the copying process's id and renamed when complete, so not
even a kill mid-copy leaves a partial file under the real name; the next start removes
the hidden leftovers of processes that are gone (``remove_abandoned_copies``).

A dropped folder is as hostile as the files in it (an archive from the web, another
conversation's workspace): a link inside it may point at ``~/.ssh`` or ``/proc/self/environ``,
so links below the folder are neither followed nor copied, only counted and named. The file
or folder the user dropped may itself be a link: that one the user chose.

The copies are the app's, not the code's: each is remembered as written (``own_copies``), so
an action running while, or after, the app copies is not credited with it; once the code
changes the file, it is.
"""

from __future__ import annotations

import mimetypes
import os
import re
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath
from typing import Callable

from ..no_follow import Folder, open_plain_below, plain_file, remove_tree, walk_tree
from ..process_ids import process_running
from ..resources import messages
from ..sizes import human_size
from ..visible_text import visible_name, well_formed

CHUNK = 1 << 20
_PARTIAL = re.compile(r"^\..+\.partial-(\d+)(?:-[0-9a-f]+)?$")  # .NAME.partial-PID-RANDOM
# The app's copies, as written: (workspace, name) -> (inode, size, mtime_ns, ctime_ns); a copy
# still being written, under its hidden name: (inode, None, None, None). Oldest forgotten first.
MAX_REMEMBERED = 100_000
_copies: dict[tuple[str, str], tuple] = {}
_copies_lock = threading.Lock()


@dataclass
class Attachment:
    """A file or folder the user gave a message, as copied into the workspace."""

    name: str  # relative to the workspace
    size: int
    kind: str
    links_left: int = 0  # links inside a folder: not copied

    def to_json(self) -> dict:
        return asdict(self)


class CopyCancelled(Exception):
    """The user cancelled the copy; nothing half-copied is left."""


def describe_kind(path: Path) -> str:
    if path.is_dir():
        return "folder"
    mime, _ = mimetypes.guess_type(path.name)
    return mime or "file"


def _free_name(folder: Folder, name: str) -> str:
    stem, suffix = Path(name).stem, Path(name).suffix
    target, n = name, 1
    while folder.exists(target):  # a link counts as taken: it is never written through
        target = f"{stem} ({n}){suffix}"
        n += 1
    return target


def _files_of(source: Path) -> tuple[list[Path], int]:
    """A file, or the plain files of a folder; and how many links below the folder were
    left out (to files or folders: never followed). Fifos, devices and sockets are not
    files to copy either. A folder from an archive can nest thousands deep: past
    no_follow.MAX_COPY_DEPTH it is refused (``walk_tree``)."""
    if not source.is_dir():
        return [source], 0
    found, links = [], 0
    for here, entries in walk_tree(source, PurePath()):
        found += [source / here / name for name, kind, _ in entries if kind == "file"]
        links += sum(1 for _, kind, _ in entries if kind == "link")
    return found, links


def total_bytes(sources: list[Path]) -> int:
    return sum(f.stat().st_size for s in sources for f in _files_of(Path(s))[0])


def _open_source(source: Path, file: Path) -> int:
    """A descriptor for ``file``: the dropped file itself (a link the user chose is followed),
    or a plain file below the dropped folder, reached without following any link on the way
    (something could swap a folder for a link between the walk and the copy)."""
    if file == source:
        return plain_file(os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)), file)
    return open_plain_below(source, file.relative_to(source))  # a fifo would block the copy for ever


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def check_sources(sources: list[Path], workspace: Path) -> None:
    """Raises with a message a person understands for what cannot be attached."""
    for source in sources:
        if not source.exists():
            raise FileNotFoundError(f"No file at {source}.")
        if source.is_dir() and _inside(workspace, source):
            raise IsADirectoryError(f"{source} holds this conversation's own folder, so it would be copied into "
                                    "itself; attach the files inside it instead.")


def copy_into_workspace(
    sources: list[Path],
    workspace: Path,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[Attachment]:
    """Copies files and folders into the workspace under free names.

    Sources already inside the workspace are named, not copied. ``progress(done, total)``
    is called per chunk from the calling thread. Nothing is written through a link the
    kernel may have planted in the workspace (``no_follow``).
    """
    workspace.mkdir(parents=True, exist_ok=True)
    sources = [Path(s) for s in sources]
    check_sources(sources, workspace)
    total, done = total_bytes([s for s in sources if not _inside(s, workspace)]), 0
    attached = []
    for source in sources:
        if _inside(source, workspace):
            size = sum(f.stat().st_size for f in _files_of(source)[0])
            name = str(source.resolve().relative_to(workspace.resolve()))
            attached.append(Attachment(name=name, size=size, kind=describe_kind(source)))
            continue
        with Folder(workspace) as folder:
            target = _free_name(folder, well_formed(source.name))  # a name that is not UTF-8 gets "?"s
            # random too: code cannot plant something under the name before the copy starts
            partial = f".{target}.partial-{os.getpid()}-{secrets.token_hex(4)}"
            size = 0
            files, links_left = _files_of(source)
            hidden: list[PurePath] = []  # the copies under their hidden names
            written: dict[PurePath, tuple] = {}  # their real names -> as written
            try:
                if source.is_dir():
                    folder.mkdir(partial)  # fails on anything already there, a link included
                for file in files:
                    if cancel is not None and cancel.is_set():  # between files too: thousands of empty ones
                        raise CopyCancelled(f"Copying {source.name} was cancelled.")
                    inside = PurePath() if file == source else file.relative_to(source)
                    relative = PurePath(partial, inside)
                    with Folder(workspace, relative.parent, create=True) as into, \
                            os.fdopen(_open_source(source, file), "rb") as src:
                        out = os.fdopen(into.open(relative.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb")
                        with out:
                            _remember(workspace, relative, (os.fstat(out.fileno()).st_ino, None, None, None))
                            hidden.append(relative)
                            while chunk := src.read(CHUNK):
                                if cancel is not None and cancel.is_set():
                                    raise CopyCancelled(f"Copying {source.name} was cancelled.")
                                out.write(chunk)
                                done += len(chunk)
                                size += len(chunk)
                                if progress:
                                    progress(done, total)
                            out.flush()  # before its times are set: the buffer's last write would set them again
                            copied = os.fstat(src.fileno())
                            os.utime(out.fileno(), ns=(copied.st_atime_ns, copied.st_mtime_ns))
                            written[PurePath(target, inside)] = _identity(os.fstat(out.fileno()))
                folder.rename(partial, target)  # complete: under its real name at once
                if not source.is_dir():  # renaming a file changes its ctime; the files of a folder keep theirs
                    now, before = _identity(folder.lstat(target)), written[PurePath(target)]
                    written[PurePath(target)] = now if now[:3] == before[:3] else before
                for name, identity in written.items():
                    _remember(workspace, name, identity)
            except BaseException:
                remove_tree(workspace / partial)  # nothing half-copied may look like a complete file to the model
                raise
            finally:
                _forget(workspace, hidden)
        attached.append(Attachment(name=target, size=size, kind=describe_kind(source), links_left=links_left))
    return attached


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when anything writes the file: ctime too, which code cannot set back."""
    return info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns


def _key(workspace: Path) -> str:
    return os.path.realpath(workspace)


def _remember(workspace: Path, name: PurePath, identity: tuple) -> None:
    with _copies_lock:
        _copies[(_key(workspace), name.as_posix())] = identity
        while len(_copies) > MAX_REMEMBERED:
            del _copies[next(iter(_copies))]


def _forget(workspace: Path, names: list[PurePath]) -> None:
    key = _key(workspace)
    with _copies_lock:
        for name in names:
            _copies.pop((key, name.as_posix()), None)


def own_copies(workspace: Path, paths: list[str]) -> set[str]:
    """Of ``paths`` (files relative to the workspace, as an action's look names them), the
    app's copies of the user's files, unchanged since the app wrote them (or still being
    written): no action made those. The code writing one makes it the code's."""
    key = _key(workspace)
    with _copies_lock:
        known = {path: _copies[(key, path)] for path in paths if (key, path) in _copies}
    own = set()
    for path, written in known.items():
        folder, _, name = path.rpartition("/")
        try:
            with Folder(workspace, folder) as opened:
                now = _identity(opened.lstat(name))
        except OSError:
            continue
        if all(w is None or w == n for w, n in zip(written, now)):
            own.add(path)
    return own


def remove_abandoned_copies(workspace: Path) -> list[str]:
    """Removes what copies cut off by a kill left behind (their process is gone)."""
    removed = []
    try:
        entries = list(Path(workspace).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _PARTIAL.match(entry.name)
        if match and not process_running(match.group(1)):
            try:
                remove_tree(entry)
            except OSError:  # what the code made of it: never a reason not to start
                continue
            removed.append(entry.name)
    return removed


def attachment_lines(attached: list[Attachment]) -> str:
    lines = [messages()["files_header"]]
    # A name may hold a newline or escape bytes (a file from an archive, say): one visible line each.
    lines += [f"- ./{visible_name(a.name)} ({'; '.join([f'{human_size(a.size)}, {a.kind}', *links_note(a)])})"
              for a in attached]
    return "\n".join(lines)


def links_note(attachment: Attachment) -> list[str]:
    """What was left out of a copied folder, for the model and the user (none: [])."""
    n = attachment.links_left
    return [f"{n} link{'s' if n != 1 else ''} inside not copied"] if n else []


def split_user_text(content: str) -> str:
    """The user's own words of a stored message, without the lines naming its files."""
    return content.split("\n\n" + messages()["files_header"], 1)[0]
