"""Copying files in: progress, cancel without leftovers, files already in place."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from codeact_desktop.no_follow import remove_tree
from codeact_desktop.agent.attachments import (CHUNK, CopyCancelled, attachment_lines, copy_into_workspace,
                                               remove_abandoned_copies)


def test_progress_reaches_the_total_and_folders_copy(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (3 * CHUNK + 5))
    folder = tmp_path / "photos é"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("a")
    seen = []
    ws = tmp_path / "ws"
    attached = copy_into_workspace([big, folder], ws, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (3 * CHUNK + 6, 3 * CHUNK + 6) and len(seen) == 5
    assert [a.name for a in attached] == ["big.bin", "photos é"]
    assert (ws / "photos é" / "sub" / "a.txt").read_text() == "a"
    # a second copy gets a free name; a file already in the workspace is named, not copied
    again = copy_into_workspace([big, ws / "big.bin"], ws)
    assert [a.name for a in again] == ["big (1).bin", "big.bin"]


def test_cancel_leaves_no_half_file(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (4 * CHUNK))
    cancel = threading.Event()
    ws = tmp_path / "ws"

    def progress(done, total):
        if done >= CHUNK:
            cancel.set()

    with pytest.raises(CopyCancelled):
        copy_into_workspace([big], ws, progress=progress, cancel=cancel)
    assert list(ws.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_kill_mid_copy_leaves_no_file_under_the_real_name(tmp_path, what):
    source = tmp_path / "data"
    if what == "file":
        source.write_bytes(b"x" * (8 * CHUNK))
    else:
        for i in range(8):
            (source / str(i)).mkdir(parents=True)
            (source / str(i) / "part.bin").write_bytes(b"x" * CHUNK)
    ws = tmp_path / "ws"
    slow_copy = ("import sys, time; from codeact_desktop.agent.attachments import copy_into_workspace as c; "
                 "c([sys.argv[1]], __import__('pathlib').Path(sys.argv[2]), progress=lambda d, t: time.sleep(0.2))")
    copier = subprocess.Popen([sys.executable, "-c", slow_copy, str(source), str(ws)])
    deadline = time.monotonic() + 30
    def partial_copy():
        found = list(ws.glob(f".data.partial-{copier.pid}-*")) if ws.exists() else []
        return found[0] if found and (found[0].is_dir() or found[0].stat().st_size >= CHUNK) else None

    while not (partial := partial_copy()):
        assert time.monotonic() < deadline and copier.poll() is None
        time.sleep(0.02)
    os.kill(copier.pid, signal.SIGKILL)
    copier.wait(10)
    assert sorted(p.name for p in ws.iterdir()) == [partial.name]  # nothing under the name "data"
    # a copy under way in a live process is left alone; the dead one's is removed
    live = ws / f".other.partial-{os.getpid()}"
    live.write_bytes(b"x")
    assert remove_abandoned_copies(ws) == [partial.name]
    assert sorted(p.name for p in ws.iterdir()) == [live.name]


def _drop_and_outside(tmp_path, secret_name: str):
    """A dropped folder (a.txt, sub/b.txt) and a folder of the user's outside it with a secret."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / secret_name).write_text("secret")
    drop = tmp_path / "drop"
    (drop / "sub").mkdir(parents=True)
    (drop / "a.txt").write_text("a")
    (drop / "sub" / "b.txt").write_text("b")
    return drop, outside


def test_links_inside_a_dropped_folder_are_counted_not_copied(tmp_path):
    drop, outside = _drop_and_outside(tmp_path, "key")
    os.symlink(outside / "key", drop / "key.txt")
    os.symlink(outside, drop / "sub" / "elsewhere")
    os.symlink(tmp_path / "nothing", drop / "dangling")
    os.mkfifo(drop / "pipe")
    ws = tmp_path / "ws"
    [attached] = copy_into_workspace([drop], ws)
    copied = sorted(str(p.relative_to(ws)) for p in ws.rglob("*"))
    assert copied == ["drop", "drop/a.txt", "drop/sub", "drop/sub/b.txt"], copied
    assert attached.links_left == 3 and attached.size == 2
    assert attachment_lines([attached]).endswith("- ./drop (2 bytes, folder; 3 links inside not copied)")
    # A link the user dropped is the user's choice: what it points at is copied.
    [chosen] = copy_into_workspace([drop / "key.txt"], ws)
    assert (ws / chosen.name).read_text() == "secret" and chosen.links_left == 0


def test_a_folder_swapped_for_a_link_during_the_copy_is_not_read_through(tmp_path):
    """The dropped folder may be one that running code controls (another conversation's
    workspace): a folder it swaps for a link between the walk and the copy is not followed."""
    drop, outside = _drop_and_outside(tmp_path, "b.txt")
    ws = tmp_path / "ws"

    def swap(done, total):
        if (drop / "sub").is_dir() and not (drop / "sub").is_symlink():
            (drop / "sub" / "b.txt").unlink()
            (drop / "sub").rmdir()
            os.symlink(outside, drop / "sub")

    with pytest.raises(OSError, match="not a plain folder"):
        copy_into_workspace([drop], ws, progress=swap)
    assert list(ws.iterdir()) == []


def test_a_folder_nested_thousands_deep_gets_a_message(tmp_path):
    top = tmp_path / "archive"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(1500):  # as an unpacked archive can be; os.walk raised RecursionError
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)
    ws = tmp_path / "ws"
    try:
        with pytest.raises(OSError, match="nested more than 100 deep"):
            copy_into_workspace([top], ws)
        assert not ws.exists() or list(ws.iterdir()) == []
    finally:
        remove_tree(top)  # pytest's own clean-up of old runs recurses (shutil.rmtree)


def test_cancel_is_seen_between_empty_files(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(50):
        (folder / f"{i}.txt").touch()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CopyCancelled):
        copy_into_workspace([folder], tmp_path / "ws", cancel=cancel)
    assert list((tmp_path / "ws").iterdir()) == []
