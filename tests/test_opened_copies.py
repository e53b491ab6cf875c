"""Open's private copies (opened_copies.py): read-only, out of the workspace, each in a
folder of its own, never of a link or a special file, and gone after a day."""

import os
import time

import pytest

from codeact_desktop.opened_copies import KEEP_SECONDS, private_copy


def test_a_copy_is_read_only_apart_and_the_same(tmp_path):
    workspace, copies = tmp_path / "ws", tmp_path / "copies"
    workspace.mkdir()
    (workspace / "out").mkdir()
    (workspace / "out" / "report.csv").write_bytes(b"a,b\n1,2\n")
    first = private_copy(workspace, "out/report.csv", copies)
    second = private_copy(workspace, "out/report.csv", copies)
    assert first != second and first.name == second.name == "report.csv"
    assert first.parent.parent == copies and first.read_bytes() == b"a,b\n1,2\n"
    assert not first.stat().st_mode & 0o222 and not copies.stat().st_mode & 0o077
    (workspace / "out" / "report.csv").write_bytes(b"changed")
    assert first.read_bytes() == b"a,b\n1,2\n"  # what the code writes later does not reach it


@pytest.mark.parametrize("make", ["link", "fifo", "linked folder"])
def test_no_copy_through_a_link_or_of_a_special_file(tmp_path, make):
    workspace, copies, secret = tmp_path / "ws", tmp_path / "copies", tmp_path / "secret"
    workspace.mkdir()
    secret.mkdir()
    (secret / "key").write_text("private")
    if make == "link":
        (workspace / "key").symlink_to(secret / "key")
        relative = "key"
    elif make == "fifo":
        os.mkfifo(workspace / "key")
        relative = "key"
    else:
        (workspace / "out").symlink_to(secret)
        relative = "out/key"
    with pytest.raises(OSError):
        private_copy(workspace, relative, copies)
    assert list(copies.iterdir()) == []  # no half copy, no empty folder


def test_copies_older_than_a_day_are_removed_at_the_next(tmp_path):
    workspace, copies = tmp_path / "ws", tmp_path / "copies"
    workspace.mkdir()
    (workspace / "a.txt").write_text("a")
    old = private_copy(workspace, "a.txt", copies)
    recent = private_copy(workspace, "a.txt", copies)
    past = time.time() - KEEP_SECONDS - 60
    os.utime(old.parent, (past, past))
    newest = private_copy(workspace, "a.txt", copies)
    assert not old.parent.exists() and recent.exists() and newest.exists()
