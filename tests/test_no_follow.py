"""Reaching files in a folder someone else can write, without following their links."""

import os

import pytest

from codeact_desktop import no_follow

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="links")


@pytest.fixture
def tree(tmp_path):
    root, outside = tmp_path / "ws", tmp_path / "outside"
    (root / "real").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret").write_text("secret")
    (root / "real" / "plain.txt").write_text("plain")
    os.symlink(outside, root / "linked-dir")
    os.symlink(outside / "secret", root / "real" / "linked-file")
    return root, outside


def test_plain_files_are_read_and_links_are_refused(tree):
    root, _ = tree
    assert no_follow.read_file(root, "real/plain.txt") == b"plain"
    for rel in ("real/linked-file", "linked-dir/secret", "../outside/secret", "/etc/passwd"):
        with pytest.raises(no_follow.UnsafePath):
            no_follow.read_file(root, rel)
    with pytest.raises(no_follow.UnsafePath):
        no_follow.read_file(root, "real/plain.txt", max_bytes=2)


def test_kind_tells_links_apart_anywhere_on_the_way(tree):
    root, _ = tree
    assert [no_follow.kind(root, r) for r in ("real", "real/plain.txt", "real/linked-file", "linked-dir/secret",
                                               "nothing")] == ["folder", "file", "link", "link", "missing"]


def test_creating_never_writes_through_a_link(tree):
    root, outside = tree
    with pytest.raises(no_follow.UnsafePath):
        no_follow.Folder(root, "linked-dir/new", create=True)
    with no_follow.Folder(root, "real/a/b", create=True) as folder:
        no_follow.write_new_file(folder, "new.txt", b"x")
        with pytest.raises(FileExistsError):  # O_EXCL: not even a link's target is written
            no_follow.write_new_file(folder, "new.txt", b"y")
    with no_follow.Folder(root, "real") as folder, pytest.raises(FileExistsError):
        no_follow.write_new_file(folder, "linked-file", b"overwritten")
    assert (root / "real/a/b/new.txt").read_bytes() == b"x"
    assert sorted(p.name for p in outside.iterdir()) == ["secret"] and (outside / "secret").read_text() == "secret"


def test_copy_out_copies_the_file_not_what_a_link_points_at(tree, tmp_path):
    root, _ = tree
    no_follow.copy_out(root, "real/plain.txt", tmp_path / "saved")
    assert (tmp_path / "saved").read_text() == "plain"
    with pytest.raises(no_follow.UnsafePath):
        no_follow.copy_out(root, "real/linked-file", tmp_path / "saved2")
