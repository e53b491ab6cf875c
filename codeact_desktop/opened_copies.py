"""Read-only copies of the code's files, made for the desktop to open.

Open judges a file (its name, its first bytes, the type the desktop will give it) and then
hands the desktop a path. Code still running in the background can rewrite the file in
between, so the desktop would open something that was never judged: a suffix-less file
judged as text and then swapped for a page or an executable, which the desktop types by
content. So Open copies the file out of the kernel's reach first, judges the copy, and
opens the copy, as a mail program opens an attachment. Changes made in the program that
opens it need Save as; the panel's Save as… keeps the original wherever the user wants.
"""

from __future__ import annotations

import errno
import hashlib
import tempfile
import time
from pathlib import Path

from . import no_follow
from .no_follow import remove_tree
from .sizes import human_size

KEEP_SECONDS = 24 * 3600  # a copy may still be open in its program; a day later it is removed
# What the copies may take of the disk together; the oldest go first to make room. A file
# larger than this is not copied (a sparse file of 2 GB takes no disk in the workspace, but
# 2 GB as a copy, outside the conversation's budget).
ALL_COPIES_BYTES = 2 << 30


def private_copy(workspace: Path, relative: str, copies: Path) -> Path:
    """A read-only copy of the plain file ``relative`` below ``workspace``, in a new folder
    of its own under ``copies`` (a folder no kernel can reach), with the same name. The
    file's earlier copy goes once this one is made, so opening a large file again and again
    does not fill the disk; copies older than KEEP_SECONDS go too. Raises OSError
    (no_follow's) when the file is not plain or the disk has no room."""
    copies.mkdir(parents=True, exist_ok=True, mode=0o700)
    remove_old(copies)
    size = (workspace / relative).lstat().st_size
    if size > ALL_COPIES_BYTES:
        raise no_follow.NoRoom(errno.EFBIG, f"it is {human_size(size)}, more than the {human_size(ALL_COPIES_BYTES)} "
                                            "Open copies; use Save as… and open it from where you saved it")
    make_room(copies, size, ALL_COPIES_BYTES)
    this_file = copies_of(workspace, copies) / _key(relative)
    this_file.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=this_file))
    target = folder / Path(relative).name
    try:
        no_follow.copy_out(workspace, relative, target)
    except BaseException:
        remove_tree(folder)
        raise
    target.chmod(0o444)
    for earlier in this_file.iterdir():
        if earlier != folder:
            remove_tree(earlier)  # open in its program still: gone on Linux and macOS, kept on Windows
    return target


def copies_of(workspace: Path, copies: Path) -> Path:
    """The folder of one conversation's copies: removed with the conversation."""
    return copies / _key(str(workspace))


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def discard(copy: Path) -> None:
    """Removes a copy that was refused or that nothing opened."""
    remove_tree(copy.parent)


def make_room(copies: Path, size: int, budget: int) -> None:
    """Removes the oldest copies until ``size`` more bytes fit in ``budget``."""
    held = []
    for folder in copies.glob("*/*/*"):
        try:
            held.append((folder.lstat().st_mtime, sum(f.lstat().st_size for f in folder.iterdir()), folder))
        except OSError:
            continue
    total = sum(bytes_ for _, bytes_, _ in held)
    for _, bytes_, folder in sorted(held, key=lambda h: h[0]):
        if total + size <= budget:
            break
        remove_tree(folder)
        total -= bytes_


def remove_old(copies: Path, keep_seconds: float = KEEP_SECONDS) -> None:
    cutoff = time.time() - keep_seconds
    for folder in copies.glob("*/*/*"):  # conversation / file / one copy
        try:
            if folder.lstat().st_mtime < cutoff:
                remove_tree(folder)
        except OSError:
            continue  # removed meanwhile by another copy's clean-up

