"""Which files an action made or changed, without looking at every file each time.

The before/after look (``workspace.snapshot``) costs a few microseconds a file: once code
had written 200,000 files, every action was 9 s slower, and past MAX_ENTRIES it stops
listing. On Linux the OS names what changed (inotify, through ``inotify_simple``): after
an action the app looks at those names alone. A moved or renamed folder is watched again
under its new name, every file in it listed.

The notices are trusted only while they can be complete. When their queue overflowed (a
burst of more than the system's 16,384), that action's files are found by a full look for
what changed since it began (``st_ctime``, which code cannot set back; the files of a
folder renamed in that burst are missed, their status did not change), and the watches
are made again. When the workspace has more than MAX_WATCHED_FOLDERS folders, the notices
are given up for good for the before/after look: each folder is one of the user's inotify
watches, shared with every program of the user, and code must not use them up for the
desktop. Without inotify (macOS, Windows) the before/after look is all there is.

Folders are watched through a descriptor opened without following links
(``no_follow.Folder``), so a folder swapped for a link to ``~`` is never watched, and a
changed name is looked at the same way: links are neither listed nor followed.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from itertools import islice
from pathlib import Path

from .. import no_follow
from ..store.history import OUTPUTS_DIR
from ..visible_text import well_formed
from .attachments import own_copies
from .workspace import MAX_ENTRIES, Snapshot, changed_files, snapshot

try:
    from inotify_simple import INotify, flags
except ImportError:  # not Linux
    INotify = flags = None

log = logging.getLogger(__name__)
# Of the user's inotify watches (8,192 on older kernels, shared by every program of the
# user), a few conversations' worth at most.
MAX_WATCHED_FOLDERS = 1000
# Folders nested deeper are not watched (the before/after look from then on): each is
# opened a step at a time from the workspace, so a chain of 900 made one action take 54 s.
MAX_DEPTH = 32
# One action's notices beyond which the full look is cheaper and bounded: code renaming a
# folder of 300 sub-folders 2,000 times made the app watch 600,000 folders (39 s).
MAX_WORK = 2 * MAX_WATCHED_FOLDERS  # folders watched or forgotten
MAX_NOTICES = 100_000  # a flood from code still running: read on, it could never end
# File-system times lag the clock by up to a tick of the kernel's coarse clock.
CLOCK_SLACK_NS = 50_000_000
Changes = list[tuple[str, int]]  # (path relative to the workspace, size), sorted


class WorkspaceChanges:
    """Call ``before_action`` before each action and ``after_action`` after it."""

    def __init__(self, workspace: Path):
        self.workspace = Path(workspace)
        self.complete = True  # False: the last look stopped at MAX_ENTRIES; files past it are not listed
        self.watching = INotify is not None and os.open in os.supports_dir_fd
        self._notices: INotify | None = None
        self._folders: dict[int, str] = {}  # watch -> folder, relative ("" for the workspace)
        self._trusted = False  # the notices since the last look name every change
        self._seen: Snapshot | None = None  # the before/after look's last "after"
        self._started_ns = 0
        self._work = 0  # folders watched or forgotten in this drain

    def before_action(self) -> None:
        self._started_ns = time.time_ns() - CLOCK_SLACK_NS
        if self.watching and self._notices is None:
            self._watch_all()
        if not self.watching and self._seen is None:
            self._seen = snapshot(self.workspace)

    def after_action(self) -> Changes:
        found = self._changed()
        # The app's own copies of the user's files (dropped between actions, or while this
        # one ran) changed the workspace too: no action made them.
        own = own_copies(self.workspace, [path for path, _ in found])
        return [(path, size) for path, size in found if path not in own] if own else found

    def _changed(self) -> Changes:
        if self.watching:
            changed = self._drain()
            if changed is not None:
                self.complete = True
                return self._files(changed)
            # The notices missed some: watched again first, then a look at all, so what is
            # written between the two is in the next action's notices, not lost.
            if self.watching:
                self._watch_all()
            look = snapshot(self.workspace, with_ctime=True)
            self.complete = look.complete
            if not self.watching:  # given up for good: the before/after look from here on, from this one
                self._seen = Snapshot({p: (size, mtime) for p, (size, mtime, _) in look.files.items()},
                                      look.complete)
            return [(path, size) for path, (size, _mtime, ctime) in sorted(look.files.items())
                    if ctime >= self._started_ns]
        before = self._seen if self._seen is not None else snapshot(self.workspace)
        self._seen = after = snapshot(self.workspace)
        self.complete = after.complete
        return changed_files(before, after)

    def close(self) -> None:
        if self._notices is not None:
            self._notices.close()
            self._notices = None
        self._folders.clear()

    # -- the notices ---------------------------------------------------------------

    def _watch_all(self) -> None:
        """Watches every folder (each before it is listed, so nothing made meanwhile is
        missed), or gives the notices up for good when there are too many."""
        self.close()
        try:
            self._notices = INotify(nonblocking=True)
        except OSError:  # the user's inotify instances are used up (128 by default)
            self._give_up("no inotify instance left")
            return
        self._trusted = True
        todo = [""]
        while todo:
            folder = todo.pop()
            for name in self._watch(folder) or ():
                todo.append(_join(folder, name))
            if not self.watching:
                return

    def _watch(self, folder: str) -> list[str] | None:
        """Watches ``folder``; returns its sub-folders (None: it is gone or not a folder)."""
        if len(self._folders) >= MAX_WATCHED_FOLDERS or folder.count("/") >= MAX_DEPTH:
            self._give_up(f"more than {MAX_WATCHED_FOLDERS} folders, or deeper than {MAX_DEPTH}")
            return None
        self._work += 1
        try:
            with no_follow.Folder(self.workspace, folder) as opened:
                # The descriptor, not the name: what was opened without links is what is watched.
                watch = self._notices.add_watch(f"/proc/self/fd/{opened.fd}", _WATCHED)
                self._folders[watch] = folder
                with os.scandir(opened.fd) as entries:
                    return [e.name for e in entries if e.is_dir(follow_symlinks=False) and _kept(folder, e.name)]
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.ENOMEM, errno.EMFILE):  # the user's watches are used up
                self._give_up("no inotify watch left")
            elif exc.errno in (errno.EACCES, errno.EPERM):
                # chmod 000 while the app looked, back later: unwatched, its files would be
                # missed for good. Not trusted: the next action looks at all, and watches again.
                self._trusted = False
            return None  # otherwise gone already, or a link now: nothing to watch there

    def _give_up(self, why: str) -> None:
        log.info("a workspace's changes are found by looking from now on: %s", why)
        self.close()
        self.watching = self._trusted = False

    def _drain(self) -> set[str] | None:
        """The names changed since the last drain; None when the notices may have missed some."""
        changed: set[str] = set()
        self._work = read = 0
        while self._trusted:
            events = self._notices.read(timeout=0)
            if not events:
                break
            for event in events:
                self._take(event, changed)
            read += len(events)
            # Bounded, as the full look is: past these, that look (MAX_ENTRIES) is cheaper.
            if read > MAX_NOTICES or self._work > MAX_WORK or len(changed) > MAX_ENTRIES:
                self._trusted = False
        return changed if self._trusted else None

    def _take(self, event, changed: set[str]) -> None:
        if event.mask & flags.Q_OVERFLOW:
            self._trusted = False
            return
        folder = self._folders.get(event.wd)
        if event.mask & flags.IGNORED:
            self._folders.pop(event.wd, None)
            return
        if folder is None:  # a watch given up already (its folder left): its last notices
            return
        if event.mask & flags.MOVE_SELF:
            if folder == "":
                self._trusted = False  # the workspace itself moved (the sandbox does not let code)
            return  # any other folder: its parent's MOVED_FROM and MOVED_TO say where it went
        if not event.name or not _kept(folder, event.name):
            return
        path = _join(folder, event.name)
        if not self._trusted:  # given up on this drain's notices already: the full look follows
            return
        if event.mask & flags.ISDIR and event.mask & flags.MOVED_FROM:
            # Its watches would name the old place: dropped, and watched again under its new
            # name with every file in it listed (MOVED_TO, below), or gone from the workspace.
            self._work += 1
            self._forget(path)
            return
        if event.mask & flags.ISDIR and event.mask & (flags.CREATE | flags.MOVED_TO):
            # A new folder: watched from now, and what was made in it before that is listed.
            todo = [path]
            while todo and self.watching and self._work <= MAX_WORK and len(changed) <= MAX_ENTRIES:
                inner = todo.pop()
                subfolders = self._watch(inner)
                if subfolders is None:
                    continue
                todo += [_join(inner, name) for name in subfolders]
                changed.update(_join(inner, name) for name in _file_names(self.workspace, inner))
            if not self.watching:
                self._trusted = False
            return
        changed.add(path)

    def _forget(self, folder: str) -> None:
        for watch, name in list(self._folders.items()):
            if name == folder or name.startswith(folder + "/"):
                del self._folders[watch]
                try:
                    self._notices.rm_watch(watch)
                except OSError:  # the folder went already
                    pass

    def _files(self, changed: set[str]) -> Changes:
        """Of the changed names, the plain files still there, with their sizes."""
        by_folder: dict[str, list[str]] = {}
        for path in changed:
            folder, _, name = path.rpartition("/")
            by_folder.setdefault(folder, []).append(name)
        found = []
        for folder, names in by_folder.items():  # each folder opened once, not once a file
            try:
                with no_follow.Folder(self.workspace, folder) as opened:
                    for name in names:
                        try:
                            info = opened.lstat(name)
                        except OSError:
                            continue
                        if stat.S_ISREG(info.st_mode):
                            found.append((_join(folder, name), info.st_size))
            except OSError:
                continue
        return sorted(found)


_WATCHED = 0
if flags is not None:
    # What makes or changes a name, and a watched folder's own move. Not ATTRIB: a chmod
    # produces nothing. ONLYDIR: a folder swapped for a file between open and watch fails.
    _WATCHED = (flags.CREATE | flags.MODIFY | flags.CLOSE_WRITE | flags.MOVED_TO | flags.MOVED_FROM
                | flags.DELETE | flags.MOVE_SELF | flags.ONLYDIR | flags.EXCL_UNLINK)


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _kept(folder: str, name: str) -> bool:
    """Names the app lists: valid text, and not the app's own outputs folder."""
    return well_formed(name) == name and not (folder == "" and name == OUTPUTS_DIR)


def _file_names(workspace: Path, folder: str) -> list[str]:
    try:
        with no_follow.Folder(workspace, folder) as opened, os.scandir(opened.fd) as entries:
            # One more than the drain takes: a folder of a million files is the full look's.
            return list(islice((e.name for e in entries if e.is_file(follow_symlinks=False) and _kept(folder, e.name)),
                               MAX_ENTRIES + 1))
    except OSError:
        return []


__all__ = ["MAX_ENTRIES", "WorkspaceChanges"]
