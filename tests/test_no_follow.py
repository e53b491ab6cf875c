"""Reaching files in a folder someone else can write, without following their links."""

import os
import subprocess
import time

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


def _nest(top, depth: int) -> None:
    """``depth`` folders one in another below ``top``, a file and a link at the bottom."""
    fd = os.open(top, os.O_RDONLY)
    for _ in range(depth):  # relative to a descriptor: no path length bounds the depth
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.symlink("/", "root-link", dir_fd=fd)
    os.close(fd)


def test_remove_tree_at_any_depth_follows_nothing(tmp_path):
    kept = tmp_path / "users"
    kept.mkdir()
    (kept / "precious.txt").write_text("keep me")
    tree = tmp_path / "tree"
    tree.mkdir()
    _nest(tree, 3000)  # shutil.rmtree raised RecursionError at 1,000
    os.symlink(kept, tree / "link-to-users")
    (tree / "a").mkdir()
    os.symlink(kept, tree / "a" / "inner-link")
    no_follow.remove_tree(tree)
    if os.path.lexists(tree):  # left, it would break pytest's own clean-up of later sessions
        subprocess.run(["rm", "-rf", str(tree)], check=False)
    assert not os.path.lexists(tree)
    assert (kept / "precious.txt").read_text() == "keep me"
    no_follow.remove_tree(tree)  # gone already: nothing to do, no error
    link = tmp_path / "a-link"
    os.symlink(kept, link)
    no_follow.remove_tree(link)  # a link is removed, never what it points to
    assert not os.path.lexists(link) and (kept / "precious.txt").exists()


def _workspace_and_users(tmp_path, secret_name: str):
    """A workspace with out/a.txt and out/sub/b.txt, and a folder of the user's with a secret."""
    users = tmp_path / "users"
    users.mkdir()
    (users / secret_name).write_text("secret")
    ws = tmp_path / "ws"
    (ws / "out" / "sub").mkdir(parents=True)
    (ws / "out" / "a.txt").write_text("a")
    (ws / "out" / "sub" / "b.txt").write_text("b")
    return ws, users


def test_copy_tree_out_copies_files_and_folders_and_leaves_links_out(tmp_path):
    ws, users = _workspace_and_users(tmp_path, "id_rsa")
    os.symlink(users, ws / "out" / "home")
    os.symlink(users / "id_rsa", ws / "out" / "sub" / "key.txt")
    saved = tmp_path / "saved"
    assert no_follow.copy_tree_out(ws, "out", saved) == 2
    assert sorted(str(p.relative_to(saved)) for p in saved.rglob("*")) == ["a.txt", "sub", "sub/b.txt"]
    deep = ws / "deep"
    deep.mkdir()
    _nest(deep, 150)
    with pytest.raises(no_follow.UnsafePath, match="nested more than 100 deep"):
        no_follow.copy_tree_out(ws, "deep", tmp_path / "saved-deep")
    no_follow.remove_tree(deep)
    no_follow.remove_tree(tmp_path / "saved-deep")


def test_copy_tree_out_does_not_follow_a_folder_swapped_for_a_link_mid_copy(tmp_path, monkeypatch):
    ws, users = _workspace_and_users(tmp_path, "b.txt")
    real_copy_out = no_follow.copy_out

    def swapping_copy_out(root, rel, target, **kwargs):  # as running code would, between two steps
        if (ws / "out" / "sub").is_dir() and not (ws / "out" / "sub").is_symlink():
            (ws / "out" / "sub" / "b.txt").unlink()
            (ws / "out" / "sub").rmdir()
            os.symlink(users, ws / "out" / "sub")
        return real_copy_out(root, rel, target, **kwargs)

    monkeypatch.setattr(no_follow, "copy_out", swapping_copy_out)
    with pytest.raises(no_follow.UnsafePath):
        no_follow.copy_tree_out(ws, "out", tmp_path / "saved")
    assert all("secret" not in p.read_text() for p in (tmp_path / "saved").rglob("*") if p.is_file())


def test_remove_tree_opens_folders_the_code_locked_and_tries_each_entry_once(tmp_path):
    """As an ordinary user (test_as_another_user.py runs this file): a mode-000 folder
    cannot be listed nor a 0555 one emptied, and what stayed was walked again in every
    round (20,000 files beside a chain of 5,000 folders: 34 s)."""
    tree = tmp_path / "tree"
    locked = tree / "locked"
    (locked / "inner").mkdir(parents=True)
    (locked / "inner" / "f").touch()
    for i in range(2000):
        (locked / f"f{i}").touch()
    _nest(locked, 1000)
    os.chmod(locked / "inner", 0)
    os.chmod(locked, 0o555)
    started = time.monotonic()
    removed = no_follow.remove_tree(tree)
    took = time.monotonic() - started
    if os.path.lexists(tree):  # left, it would break pytest's own clean-up of later sessions
        subprocess.run(["chmod", "-R", "u+rwx", str(tree)], check=False)
        subprocess.run(["rm", "-rf", str(tree)], check=False)
    assert removed and took < 10


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_a_fifo_in_place_of_a_file_is_refused_at_once(tmp_path):
    # Code turned a listed report.csv into a FIFO while the user was in the Save dialog: the
    # copy's open waited for a writer for ever, and so did the app's quit behind it.
    import threading

    root = tmp_path / "ws"
    root.mkdir()
    os.mkfifo(root / "report.csv")
    outcomes = []

    def attempt(fn):
        try:
            fn()
            outcomes.append("read")
        except no_follow.UnsafePath as exc:
            outcomes.append(str(exc))

    for fn in (lambda: no_follow.read_file(root, "report.csv"),
               lambda: no_follow.copy_out(root, "report.csv", tmp_path / "saved.csv")):
        worker = threading.Thread(target=attempt, args=(fn,), daemon=True)
        worker.start()
        worker.join(5)
        if worker.is_alive():  # release it, so the test run goes on
            os.close(os.open(root / "report.csv", os.O_WRONLY | os.O_NONBLOCK))
            worker.join(5)
            pytest.fail("the open waited for a writer")
    assert len(outcomes) == 2 and all("not a plain file" in o for o in outcomes), outcomes
    assert not (tmp_path / "saved.csv").exists()


def test_a_copy_out_that_would_fill_the_disk_is_refused_before_writing(tmp_path, monkeypatch):
    # Sparse files take no disk inside the workspace; their copy writes every byte. Two of
    # 2 GB under a folder the panel showed as 1,002 bytes wrote 4.29 GB.
    import errno
    from collections import namedtuple

    root = tmp_path / "ws"
    (root / "photos" / ".cache").mkdir(parents=True)
    (root / "photos" / "a.jpg").write_bytes(b"x" * 1002)
    for i in range(3):
        with open(root / "photos" / ".cache" / f"blob{i}", "wb") as f:
            f.truncate(2 << 30)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(no_follow.shutil, "disk_usage", lambda p: usage(8 << 30, 6 << 30, 3 << 29))
    with pytest.raises(OSError) as refused:
        no_follow.copy_tree_out(root, "photos", tmp_path / "saved")
    assert refused.value.errno == errno.ENOSPC
    assert str(refused.value).startswith("it is 6.0 GB and only 1.5 GB is free at ")
    assert not (tmp_path / "saved").exists()
    with pytest.raises(OSError, match="it is 2.0 GB"):
        no_follow.copy_out(root, "photos/.cache/blob0", tmp_path / "blob")
    assert not (tmp_path / "blob").exists()
    no_follow.copy_out(root, "photos/a.jpg", tmp_path / "a.jpg")  # what fits is copied
    assert (tmp_path / "a.jpg").stat().st_size == 1002


def test_files_grown_during_a_folder_copy_take_no_more_than_was_checked(tmp_path, monkeypatch):
    # Code watching its folder grew the other files (sparse) once the copy began: the check
    # on the first pass saw 8 bytes, and the copy wrote 40 MB before the disk check stopped it.
    root = tmp_path / "ws"
    (root / "out").mkdir(parents=True)
    for i in range(8):
        (root / "out" / f"f{i}").write_bytes(b"x")
    real_copy_out, grown = no_follow.copy_out, []

    def growing(root_, rel, target, **kwargs):
        if not grown:
            for i in range(1, 8):
                with open(root / "out" / f"f{i}", "r+b") as f:
                    f.truncate(5 << 20)
            grown.append(True)
        return real_copy_out(root_, rel, target, **kwargs)

    monkeypatch.setattr(no_follow, "copy_out", growing)
    with pytest.raises(no_follow.NoRoom, match="grew after the room"):
        no_follow.copy_tree_out(root, "out", tmp_path / "saved")
    assert not (tmp_path / "saved").exists()  # and no half copy left behind
