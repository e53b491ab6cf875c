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
    assert first.name == "report.csv" and copies in first.parents and first.read_bytes() == b"a,b\n1,2\n"
    assert not first.stat().st_mode & 0o222 and not copies.stat().st_mode & 0o077
    (workspace / "out" / "report.csv").write_bytes(b"changed")
    assert first.read_bytes() == b"a,b\n1,2\n"  # what the code writes later does not reach it
    other = private_copy(workspace, "out/report.csv", copies.parent / "other")
    assert other.parent != first.parent


def test_opening_a_file_again_replaces_its_copy(tmp_path):
    # A 2 GB video opened ten times must not take 20 GB of the disk.
    workspace, copies = tmp_path / "ws", tmp_path / "copies"
    workspace.mkdir()
    (workspace / "a.bin").write_bytes(b"a" * 1000)
    (workspace / "b.bin").write_bytes(b"b")
    copies_of_a = [private_copy(workspace, "a.bin", copies) for _ in range(10)]
    b = private_copy(workspace, "b.bin", copies)
    kept = sorted(p for p in copies.rglob("*") if p.is_file())
    assert kept == sorted([copies_of_a[-1], b]) and copies_of_a[-1].read_bytes() == b"a" * 1000


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
    assert [p for p in copies.rglob("*") if not p.is_dir()] == []  # no half copy


def test_copies_older_than_a_day_are_removed_at_the_next(tmp_path):
    workspace, copies = tmp_path / "ws", tmp_path / "copies"
    workspace.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (workspace / name).write_text(name)
    old = private_copy(workspace, "a.txt", copies)
    recent = private_copy(workspace, "b.txt", copies)
    past = time.time() - KEEP_SECONDS - 60
    os.utime(old.parent, (past, past))
    newest = private_copy(workspace, "c.txt", copies)
    assert not old.parent.exists() and recent.exists() and newest.exists()


def test_a_conversations_copies_are_in_one_folder_and_a_discarded_copy_goes(tmp_path):
    from codeact_desktop.opened_copies import copies_of, discard

    copies = tmp_path / "copies"
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.txt").write_text(name)
    a, b = (private_copy(tmp_path / name, "x.txt", copies) for name in ("a", "b"))
    assert copies_of(tmp_path / "a", copies) in a.parents and copies_of(tmp_path / "a", copies) not in b.parents
    discard(a)
    assert not a.parent.exists() and b.exists()


def test_copies_take_at_most_their_budget_and_a_larger_file_is_not_copied(tmp_path, monkeypatch):
    # A sparse file of 300 MB takes no disk in the workspace but 300 MB as a copy, outside
    # the conversation's budget; distinct files opened once each added up without end.
    from codeact_desktop import opened_copies
    from codeact_desktop.no_follow import NoRoom

    monkeypatch.setattr(opened_copies, "ALL_COPIES_BYTES", 3000)
    workspace, copies = tmp_path / "ws", tmp_path / "copies"
    workspace.mkdir()
    for name in "abcd":
        (workspace / name).write_bytes(b"x" * 1000)
    with open(workspace / "sparse", "wb") as f:
        f.truncate(300 << 20)
    made = []
    for name in "abcd":
        made.append(private_copy(workspace, name, copies))
        time.sleep(0.01)  # each copy a little newer than the one before
    assert [m.exists() for m in made] == [False, True, True, True]  # the oldest went to make room
    with pytest.raises(NoRoom, match="more than the 2.9 KB Open copies"):
        private_copy(workspace, "sparse", copies)
    assert sum(f.stat().st_size for f in copies.rglob("*") if f.is_file()) == 3000
