"""What an action made, from the OS's notices (inotify) instead of a look at every file,
and the full look wherever the notices may be incomplete: a moved folder, an overflowed
queue, more folders than the watches allowed. Links are never listed or watched."""

import os
import sys
import time

import pytest

from codeact_desktop.agent import workspace_changes
from codeact_desktop.agent.workspace_changes import WorkspaceChanges

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


@pytest.fixture
def changes(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "old.csv").write_text("a\n")
    (ws / "sub").mkdir()
    (ws / "sub" / "kept.txt").write_text("k")
    time.sleep(2 * workspace_changes.CLOCK_SLACK_NS / 1e9)  # before the first action, even to a coarse clock
    watched = WorkspaceChanges(ws)
    watched.before_action()
    assert watched.watching
    yield ws, watched
    watched.close()


def test_new_changed_and_nested_files_are_named_and_nothing_else(changes):
    ws, watched = changes
    (ws / "new.png").write_bytes(b"x" * 10)
    (ws / "old.csv").write_text("a\nb\n")
    os.makedirs(ws / "deep" / "er")  # files made in a folder before the app watched it
    (ws / "deep" / "er" / "inside.txt").write_text("in")
    (ws / "sub" / "made.txt").write_text("m")
    assert watched.after_action() == [("deep/er/inside.txt", 2), ("new.png", 10), ("old.csv", 4),
                                      ("sub/made.txt", 1)]
    watched.before_action()
    (ws / "deep" / "er" / "second.txt").write_text("2")  # the new folders are watched now
    assert watched.after_action() == [("deep/er/second.txt", 1)]
    watched.before_action()
    assert watched.after_action() == [] and watched.complete


def test_links_are_not_listed_and_a_folder_swapped_for_a_link_is_not_watched(changes, tmp_path):
    ws, watched = changes
    outside = tmp_path / "home"
    outside.mkdir()
    (ws / "to_home").symlink_to(outside)
    (ws / "to_file").symlink_to(outside / "secret")
    os.rename(ws / "sub", ws / "sub_moved")
    (ws / "sub").symlink_to(outside)
    found = watched.after_action()
    assert [p for p, _ in found if "to_" in p or p.startswith("sub/")] == []
    watched.before_action()
    (outside / "secret").write_text("the user's")  # through no watch of the app's
    (outside / "more.txt").write_text("x")
    assert watched.after_action() == []
    assert os.stat(outside).st_ino not in _watched_inodes() and os.stat(ws).st_ino in _watched_inodes()


def test_a_moved_folder_is_watched_by_its_new_name_and_its_files_listed(changes):
    ws, watched = changes
    os.rename(ws / "sub", ws / "renamed")
    (ws / "renamed" / "after_move.txt").write_text("m")
    found = dict(watched.after_action())
    assert found == {"renamed/after_move.txt": 1, "renamed/kept.txt": 1}  # new names, both
    watched.before_action()
    (ws / "renamed" / "again.txt").write_text("a")  # watched again, by its new name
    assert watched.after_action() == [("renamed/again.txt", 1)] and watched._trusted


def test_an_overflowed_queue_falls_back_to_a_full_look(changes):
    ws, watched = changes
    (ws / "burst").mkdir()
    n = int(open("/proc/sys/fs/inotify/max_queued_events").read()) + 1000
    for i in range(n):
        (ws / "burst" / f"{i}").write_bytes(b"")
    found = watched.after_action()
    assert len([p for p, _ in found if p.startswith("burst/")]) == n and watched.complete
    watched.before_action()
    (ws / "burst" / "one_more").write_text("1")
    assert watched.after_action() == [("burst/one_more", 1)]


def test_more_folders_than_the_watches_allowed_gives_the_watches_back(changes, monkeypatch):
    """Each folder is one of the user's inotify watches, shared with every program of the
    user: code making thousands of folders must not use them up for the desktop."""
    ws, watched = changes
    monkeypatch.setattr(workspace_changes, "MAX_WATCHED_FOLDERS", 50)
    for i in range(60):
        (ws / f"d{i}").mkdir()
    (ws / "d59" / "late.txt").write_text("l")
    watched.after_action()
    assert not watched.watching and watched._notices is None and os.stat(ws).st_ino not in _watched_inodes()
    watched.before_action()
    (ws / "d3" / "found.txt").write_text("f")  # the before/after look of old
    assert watched.after_action() == [("d3/found.txt", 1)]


def _watched_inodes() -> set[int]:
    """The folders this process's inotify descriptors watch, by inode (/proc/self/fdinfo)."""
    inodes = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") != "anon_inode:inotify":
                continue
            for line in open(f"/proc/self/fdinfo/{name}"):
                if line.startswith("inotify "):
                    inodes.add(int(line.split("ino:")[1].split()[0], 16))
        except OSError:
            pass
    return inodes


def test_the_users_watches_used_up_by_others_mean_looking_not_missing(changes, monkeypatch):
    """Another program took the last of the user's inotify watches: add_watch fails with
    ENOSPC. A folder left unwatched would hide what is written in it, so the notices are
    given up and the before/after look finds the file."""
    import errno

    ws, watched = changes

    def no_watch_left(self, path, mask):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(workspace_changes.INotify, "add_watch", no_watch_left)
    (ws / "late").mkdir()
    (ws / "late" / "in_unwatched.txt").write_text("u")
    assert ("late/in_unwatched.txt", 1) in watched.after_action()
    assert not watched.watching
    watched.before_action()
    (ws / "late" / "next.txt").write_text("n")
    assert watched.after_action() == [("late/next.txt", 1)]
