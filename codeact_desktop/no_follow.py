"""Files inside folders the kernel can write (a workspace, a kernel's home), reached by
the app without ever following a link there.

Code in the kernel can replace any name in its workspace with a symbolic link at any
moment: to ``~/.ssh/id_rsa`` for the app to read into an export, to ``~/.bashrc`` for
the app to write through. So every step below the trusted root (a folder the app made
and the kernel cannot rename) is opened with ``O_NOFOLLOW`` relative to the step before
(``openat``), and files are created with ``O_EXCL``: a planted link fails the call
instead of redirecting it. Where the OS lacks ``dir_fd`` support (Windows), each step is
checked with ``lstat`` first: racy, which is one reason Windows counts as not isolated.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import sys
from collections import deque
from pathlib import Path, PurePath

_AT = os.open in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_PATH = getattr(os, "O_PATH", 0) if sys.platform.startswith("linux") else 0  # /proc/self/fd: Linux's


class UnsafePath(OSError):
    """A name under the root is a link, not a plain file or folder, or leaves the root."""


ROOM_LEFT_BYTES = 200 << 20  # a copy out leaves this much of the target's disk free


class NoRoom(OSError):
    """A copy out that would fill the target's disk (ENOSPC), said in words."""

    def __str__(self) -> str:
        return self.strerror


def plain_file(fd: int, what: str | Path) -> int:
    """``fd`` when it is a plain file; closed, and UnsafePath, when not. Opened with
    ``O_NONBLOCK``, which is cleared here: code that turned a listed file into a FIFO held
    Save as (and the window, opening an old conversation's image) waiting for a writer."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePath(f"{what}: not a plain file")
    if _NONBLOCK:
        os.set_blocking(fd, True)
    return fd


def check_room(size: int, target: Path) -> None:
    """Raises ENOSPC, in words, before a copy of ``size`` bytes to ``target`` would fill its
    disk: code can make a file of 2 GB that takes no disk (sparse) and a copy writes it all."""
    from .sizes import human_size

    folder = Path(target).parent
    free = shutil.disk_usage(folder).free
    if size > free - ROOM_LEFT_BYTES:
        raise NoRoom(errno.ENOSPC, f"it is {human_size(size)} and only {human_size(free)} is free at {folder}")


def _parts(rel: str | PurePath) -> list[str]:
    parts = [p for p in PurePath(rel).parts if p not in ("", ".")]
    if any(p == ".." or os.sep in p or (os.altsep and os.altsep in p) for p in parts) \
            or PurePath(rel).is_absolute():
        raise UnsafePath(f"{rel}: not a name inside the folder")
    return parts


class Folder:
    """An open folder below ``root`` (``rel`` may be empty), reached without links.
    Use as a context manager; ``fd`` is None on systems without ``dir_fd``."""

    def __init__(self, root: Path, rel: str | PurePath = "", create: bool = False):
        self.path = Path(root)
        self.fd: int | None = None
        parts = _parts(rel)
        if not _AT:
            for part in parts:
                self.path = self.path / part
                if create and not os.path.lexists(self.path):
                    os.mkdir(self.path)
                if not stat.S_ISDIR(os.lstat(self.path).st_mode):
                    raise UnsafePath(f"{self.path}: not a plain folder")
            return
        self.fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
        try:
            for part in parts:
                if create:
                    try:
                        os.mkdir(part, 0o755, dir_fd=self.fd)
                    except FileExistsError:
                        pass
                try:
                    step = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=self.fd)
                except OSError as exc:
                    if exc.errno in (40, 20):  # ELOOP (a link), ENOTDIR (a file where a folder was expected)
                        raise UnsafePath(f"{self.path / part}: not a plain folder") from None
                    raise
                os.close(self.fd)
                self.fd = step
                self.path = self.path / part
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "Folder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    # -- entries of this folder, by name ------------------------------------------

    def lstat(self, name: str) -> os.stat_result:
        if self.fd is None:
            return os.lstat(self.path / name)
        return os.stat(name, dir_fd=self.fd, follow_symlinks=False)

    def exists(self, name: str) -> bool:
        try:
            self.lstat(name)
            return True
        except FileNotFoundError:
            return False

    def open(self, name: str, flags: int, mode: int = 0o644) -> int:
        """``os.open`` of an entry; never through a link (ELOOP becomes UnsafePath)."""
        flags |= _NOFOLLOW | _BINARY | _CLOEXEC
        try:
            if self.fd is None:
                if os.path.islink(self.path / name):
                    raise UnsafePath(f"{self.path / name}: a link")
                return os.open(self.path / name, flags, mode)
            return os.open(name, flags, mode, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == 40:
                raise UnsafePath(f"{self.path / name}: a link") from None
            raise

    def open_plain(self, name: str) -> int:
        """A descriptor for reading a plain file of this folder (``plain_file``)."""
        return plain_file(self.open(name, os.O_RDONLY | _NONBLOCK), self.path / name)

    def mkdir(self, name: str) -> None:
        if self.fd is None:
            os.mkdir(self.path / name)
        else:
            os.mkdir(name, 0o755, dir_fd=self.fd)

    def rename(self, old: str, new: str) -> None:
        """Within this folder; the names themselves are moved, never what they point to."""
        if self.fd is None:
            os.replace(self.path / old, self.path / new)
        else:
            os.rename(old, new, src_dir_fd=self.fd, dst_dir_fd=self.fd)


def open_plain_below(root: Path, rel: str | PurePath) -> int:
    """A descriptor for reading the plain file ``rel`` below ``root``, every step reached
    without following a link; UnsafePath for a link or anything but a plain file."""
    parts = _parts(rel)
    if not parts:
        raise UnsafePath(f"{root}: not a file")
    with Folder(root, PurePath(*parts[:-1])) as folder:
        return folder.open_plain(parts[-1])


def read_file(root: Path, rel: str | PurePath, max_bytes: int | None = None) -> bytes:
    """The bytes of a plain file below ``root``; UnsafePath for a link or anything else."""
    with os.fdopen(open_plain_below(root, rel), "rb") as f:
        data = f.read(max_bytes + 1 if max_bytes is not None else -1)
    if max_bytes is not None and len(data) > max_bytes:
        raise UnsafePath(f"{root / rel}: larger than {max_bytes} bytes")
    return data


def read_head(root: Path, rel: str | PurePath, size: int) -> bytes:
    """The first ``size`` bytes of a plain file below ``root`` (``open_plain_below``)."""
    with os.fdopen(open_plain_below(root, rel), "rb") as f:
        return f.read(size)


def kind(root: Path, rel: str | PurePath) -> str:
    """"file", "folder", "link" (anywhere on the way), "other" or "missing"."""
    parts = _parts(rel)
    if not parts:
        return "folder"
    try:
        with Folder(root, PurePath(*parts[:-1])) as folder:
            mode = folder.lstat(parts[-1]).st_mode
    except UnsafePath:
        return "link"
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "other"
    if stat.S_ISLNK(mode):
        return "link"
    return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "other"


def write_new_file(folder: Folder, name: str, data: bytes) -> None:
    """Creates ``name`` (which must not exist, not even as a link) with ``data``."""
    fd = folder.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def copy_out(root: Path, rel: str | PurePath, target: Path, chunk: int = 1 << 20,
             budget: int | None = None) -> int:
    """Copies a plain file below ``root`` to ``target`` (a place the user chose): as large
    as it was when opened, and only where that leaves room on the disk (``check_room``) and
    fits in ``budget`` bytes. Returns its size; a copy that fails leaves nothing behind."""
    with os.fdopen(open_plain_below(root, rel), "rb") as src:
        size = left = os.fstat(src.fileno()).st_size  # code that grows the file meanwhile grows no copy
        if budget is not None and size > budget:
            raise NoRoom(errno.ENOSPC, "a file in it grew after the room for the copy was checked")
        check_room(size, target)
        try:
            with open(target, "wb") as out:
                while left > 0 and (block := src.read(min(chunk, left))):
                    out.write(block)
                    left -= len(block)
        except BaseException:
            Path(target).unlink(missing_ok=True)
            raise
    return size


MAX_COPY_DEPTH = 100  # folders a copy of a tree goes down (in: a dropped folder; out: Save as)


def copy_tree_out(root: Path, rel: str | PurePath, target: Path) -> int:
    """Copies a folder below ``root`` to ``target`` (a new folder where the user chose):
    its plain files and folders, each reached without following a link, so code that swaps
    a folder for a link to ``~`` while the copy runs gets a failed copy, not the home
    copied. Links are left out; their count is returned. Walked without recursion, at
    most MAX_COPY_DEPTH folders deep, once to check the disk has room for it all."""
    top = PurePath(*_parts(rel))
    target = Path(target)
    budget = sum(size for _, entries in walk_tree(root, top) for _, kind, size in entries if kind == "file")
    check_room(budget, target)
    target.mkdir()
    links = 0
    try:
        for here, entries in walk_tree(root, top):
            into = target / here.relative_to(top)
            for name, kind, _ in entries:
                if kind == "folder":
                    (into / name).mkdir()
                elif kind == "file":  # files the code grows while this runs take no more than was checked
                    budget -= copy_out(root, here / name, into / name, budget=budget)
                elif kind == "link":
                    links += 1
    except BaseException:
        remove_tree(target)  # no half copy left where the user looks
        raise
    return links


def walk_tree(root: Path, top: PurePath):
    """Each folder from ``top`` down (relative to ``root``), parents first and by name, with
    its entries by name: (name, "folder" | "file" | "link" | "other", size). Each folder is
    reached without following a link, without recursion, at most MAX_COPY_DEPTH deep."""
    todo = [top]
    while todo:
        here = todo.pop()
        if len(here.parts) - len(top.parts) > MAX_COPY_DEPTH:
            raise UnsafePath(f"{top.name} holds folders nested more than {MAX_COPY_DEPTH} deep; not copied further.")
        with Folder(root, here) as folder, os.scandir(folder.fd if folder.fd is not None else folder.path) as listing:
            entries = sorted((e.name, _entry_kind(e), e.stat(follow_symlinks=False).st_size) for e in listing)
        yield here, entries
        todo.extend(here / name for name, kind, _ in reversed(entries) if kind == "folder")


def _entry_kind(entry: os.DirEntry) -> str:
    if entry.is_symlink():
        return "link"
    return "folder" if entry.is_dir(follow_symlinks=False) else "file" if entry.is_file(follow_symlinks=False) \
        else "other"


def _writable_then_again(remove, path: str, _) -> None:
    """shutil.rmtree's error handler: Windows refuses to delete a read-only file (Open's
    copies are read-only), so it is made writable and tried once more; anything else,
    or a file still open on Windows, is left (``ignore_errors``)."""
    if remove not in (os.unlink, os.remove, os.rmdir):
        return
    try:
        os.chmod(path, os.lstat(path).st_mode | stat.S_IWRITE)
        remove(path)
    except OSError:
        pass


def rights_back(name: str | Path, dir_fd: int | None = None) -> None:
    """Gives a folder its owner's rights back (code may lock what it made: mode 000, 0555),
    without following a link: through an O_PATH descriptor of the folder itself."""
    if not _PATH:
        return
    try:
        fd = os.open(name, _PATH | _NOFOLLOW | _DIRECTORY | _CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode) and mode & 0o700 != 0o700:
            os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(mode) | 0o700)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_tree(path: Path) -> bool:
    """Removes a file, a link or a folder and all below it, as ``shutil.rmtree(path,
    ignore_errors=True)`` would, but at any depth, with two descriptors open at most, each
    entry tried once, and folders the code locked opened again. True when nothing is left.

    Code can nest folders as deep as it likes (``mkdir`` relative to a descriptor knows no
    path length), and shutil.rmtree recurses: at 1,000 levels it raised RecursionError,
    which ``ignore_errors`` does not catch, and the kernel's next start failed for good.
    So each folder's subfolders are moved up beside it, directly below ``path`` (rename
    within one file system), and removed from there in turn; nothing is followed."""
    path = Path(path)
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            path.unlink()
            return True
    except FileNotFoundError:
        return True
    except OSError:
        return not os.path.lexists(path)
    if not _AT:
        try:
            shutil.rmtree(path, onerror=_writable_then_again)
        except RecursionError:
            pass
        return not os.path.lexists(path)
    rights_back(path)
    try:
        top = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
    except OSError:
        return False
    tag, moved = secrets.token_hex(4), 0
    try:
        with os.scandir(top) as entries:
            todo = deque((e.name, e.is_dir(follow_symlinks=False)) for e in entries)
        while todo:
            name, is_folder = todo.popleft()
            try:
                if not is_folder:
                    os.unlink(name, dir_fd=top)
                    continue
                rights_back(name, top)
                inner = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=top)
                try:
                    with os.scandir(inner) as entries:
                        below = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
                    for child, child_is_folder in below:
                        if child_is_folder:  # up beside it, removed in its turn
                            rights_back(child, inner)  # moving a folder writes its "..": it needs its rights
                            moved += 1
                            os.rename(child, f".removing-{tag}-{moved}", src_dir_fd=inner, dst_dir_fd=top)
                            todo.append((f".removing-{tag}-{moved}", True))
                        else:
                            os.unlink(child, dir_fd=inner)
                finally:
                    os.close(inner)
                os.rmdir(name, dir_fd=top)
            except OSError:
                continue  # as ignore_errors: it stays, and is not tried again (no round per leftover)
        os.rmdir(path)
    except OSError:
        pass
    finally:
        os.close(top)
    return not os.path.lexists(path)
