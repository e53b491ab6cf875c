"""Copying files in: progress, cancel without leftovers, files already in place."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from codeact_desktop.agent.attachments import CHUNK, CopyCancelled, copy_into_workspace, remove_abandoned_copies


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
