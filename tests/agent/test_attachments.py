"""Copying files in: progress, cancel without leftovers, files already in place."""

import threading

import pytest

from codeact_desktop.agent.attachments import CHUNK, CopyCancelled, copy_into_workspace


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
