"""Downloads with the real huggingface_hub client against a local server that speaks
the Hub's protocol (HF_ENDPOINT), serving the real test GGUF, with faults injected."""

import threading
import time
from dataclasses import replace

import pytest

from codeact_desktop.models.catalogue import find_entry, load_catalogue
from codeact_desktop.models.download import DownloadCancelled, DownloadError, VerifiedFiles, download_model, find_downloaded
from codeact_desktop.models.gguf_file import inspect_gguf

from .fake_hub import FakeHub, serving

REPO, FILE = "test-org/tiny-gguf", "model é.gguf"


@pytest.fixture(scope="module")
def gguf_bytes(gguf_path):
    return gguf_path.read_bytes()


@pytest.fixture
def hub(gguf_bytes, monkeypatch, tmp_path):
    with serving(monkeypatch, tmp_path, REPO, FILE, gguf_bytes) as server:
        monkeypatch.setenv("HF_TOKEN", "hf_test_token")
        yield server


@pytest.fixture
def entry():
    base = find_entry()  # the default entry, pointed at the test repo
    return replace(base, id="test", repo=REPO, file=FILE, size_bytes=0)


@pytest.fixture
def verified(tmp_path):
    return VerifiedFiles(tmp_path / "verified.json")


def test_catalogue_has_the_default_model():
    default = find_entry()
    assert default.repo == "xingyaoww/CodeActAgent-Mistral-7b-v0.1.q8_0.gguf"
    assert default.file == "CodeActAgent-Mistral-7b-v0.1.q8_0.gguf" and default.chat_format == "chatml"
    assert default.n_ctx_train == 32768 and len(load_catalogue()) >= 2
    with pytest.raises(KeyError, match="Choose one of"):
        find_entry("nope")


def test_download_verifies_reports_progress_and_sends_the_token(hub, entry, verified, tmp_path, gguf_bytes):
    seen = []
    path = download_model(entry, tmp_path / "models", verified, progress=seen.append)
    assert path.read_bytes() == gguf_bytes and inspect_gguf(path).architecture
    downloading = [p for p in seen if p.stage == "downloading"]
    assert downloading[-1].done == len(gguf_bytes) and downloading[-1].total == len(gguf_bytes)
    assert any(p.stage == "verifying" for p in seen) and downloading[-1].bytes_per_s > 0
    assert hub.gets()[0]["authorization"] == "Bearer hf_test_token"
    assert find_downloaded(entry, tmp_path / "models", verified) == path
    # a second call finds it in the cache: no new GET, no new hashing
    seen.clear()
    assert download_model(entry, tmp_path / "models", verified, progress=seen.append) == path
    assert len(hub.gets()) == 1 and not seen


def test_dropped_connection_resumes_and_ends_verified(hub, entry, verified, tmp_path, gguf_bytes):
    hub.drop_after = 25 << 20  # past the library's 10 MB read chunks, so some bytes are kept
    path = download_model(entry, tmp_path / "models", verified)
    assert path.read_bytes() == gguf_bytes
    ranges = [g.get("range") for g in hub.gets()]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and int(ranges[1][6:].split("-")[0]) > 0


def test_wrong_bytes_are_rejected_and_nothing_loadable_is_left(hub, entry, verified, tmp_path):
    hub.wrong_bytes = True
    with pytest.raises(DownloadError, match="arrived damaged"):
        download_model(entry, tmp_path / "models", verified)
    assert find_downloaded(entry, tmp_path / "models", verified) is None
    assert not [p for p in (tmp_path / "models").rglob("*") if p.is_file() and not p.name.endswith(".lock")]


def test_404_is_a_clear_message(hub, entry, verified, tmp_path):
    with pytest.raises(DownloadError, match="was not found"):
        download_model(replace(entry, file="missing.gguf"), tmp_path / "models", verified)


def test_no_network_fails_at_once(entry, verified, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(DownloadError, match="Could not reach"):
        download_model(entry, tmp_path / "models", verified)


def test_cancel_then_resume_continues_where_it_stopped(hub, entry, verified, tmp_path, gguf_bytes):
    hub.delay_per_chunk = 0.05
    cancel = threading.Event()

    def progress(p):
        if p.done >= 20 << 20:
            cancel.set()

    with pytest.raises(DownloadCancelled):
        download_model(entry, tmp_path / "models", verified, progress=progress, cancel=cancel)
    assert find_downloaded(entry, tmp_path / "models", verified) is None
    hub.delay_per_chunk = 0
    path = download_model(entry, tmp_path / "models", verified)
    assert path.read_bytes() == gguf_bytes
    resumed_at = int(hub.gets()[-1]["range"][6:].split("-")[0])
    assert resumed_at >= 20 << 20


def test_cancel_stops_a_stalled_transfer_at_once(hub, entry, verified, tmp_path):
    # A line that stalls (or drips) sends no full 10 MB read for huggingface_hub to check
    # Cancel at: before, Cancel waited for the read timeout, and the retry stalled again.
    hub.stall_after = 1 << 20
    cancel, errors = threading.Event(), []
    worker = threading.Thread(target=lambda: _catch(errors, download_model, entry, tmp_path / "models",
                                                    verified, cancel=cancel))
    worker.start()
    deadline = time.monotonic() + 10
    while not hub.gets() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # the 1 MB is read; the read now waits
    cancel.set()
    asked = time.monotonic()
    worker.join(30)
    took = time.monotonic() - asked
    assert errors and isinstance(errors[0], DownloadCancelled), errors
    assert took < 3, f"Cancel took {took:.1f} s"
    assert len(hub.gets()) == 1  # and no new connection after it


def test_a_second_download_of_the_same_model_is_refused(hub, entry, verified, tmp_path):
    hub.delay_per_chunk = 0.05
    cancel, errors = threading.Event(), []
    first = threading.Thread(target=lambda: _catch(errors, download_model, entry, tmp_path / "models",
                                                   verified, cancel=cancel))
    first.start()
    try:
        deadline = time.monotonic() + 10
        while not hub.gets() and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(DownloadError, match="already being downloaded"):
            download_model(entry, tmp_path / "models", verified)
    finally:
        cancel.set()
        first.join(30)
    assert isinstance(errors[0], DownloadCancelled)


def test_not_enough_disk_is_refused_with_the_numbers(hub, entry, verified, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 << 30, 10 << 30, 50 << 20))
    with pytest.raises(DownloadError, match=r"needs .* more and 50.0 MB is free"):
        download_model(entry, tmp_path / "models", verified)
    assert not hub.gets()


def _catch(errors, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        errors.append(exc)


def test_a_file_in_the_hugging_face_cache_is_used_where_it_is(hub, entry, verified, tmp_path, gguf_bytes):
    from .fake_hub import COMMIT

    snapshot = tmp_path / "hf cache" / "models--test-org--tiny-gguf" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / FILE).write_bytes(gguf_bytes)
    path = download_model(entry, tmp_path / "models", verified)
    assert path == snapshot / FILE and hub.gets() == []  # checked, not downloaded, not copied
    assert not (tmp_path / "models" / "test-org--tiny-gguf").exists()


def test_cli_download_and_list(gguf_bytes, tmp_path):
    import os
    import subprocess
    import sys

    default = find_entry()
    server = FakeHub(default.repo, default.file, gguf_bytes)  # the default entry, served locally
    env = dict(os.environ, HF_ENDPOINT=server.url, HF_HUB_CACHE=str(tmp_path / "hf"),
               CODEACT_HOME=str(tmp_path / "home"))
    cli = [sys.executable, "-m", "codeact_desktop.cli", "models"]
    try:
        done = subprocess.run([*cli, "download"], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "ready:" in done.stdout and "downloading [" in done.stderr
        listed = subprocess.run([*cli, "list"], env=env, capture_output=True, text=True, timeout=60).stdout
        assert f"downloaded: {tmp_path / 'home'}" in listed
        wrong = subprocess.run([*cli, "download", "nope"], env=env, capture_output=True, text=True, timeout=60)
        assert wrong.returncode == 2 and "Choose one of" in wrong.stderr
    finally:
        server.close()


# Runs inside a private mount namespace on a 600 MB tmpfs: the download starts with room
# to spare, then a filler file takes the free space, so the kernel answers ENOSPC mid-file.
_DISK_FULL_SCRIPT = r"""
import json, os, shutil, sys
from dataclasses import replace
from pathlib import Path
from codeact_desktop.models.catalogue import find_entry
from codeact_desktop.models.download import DownloadError, VerifiedFiles, download_model, partial_download, target_path
disk = Path(sys.argv[1])
entry = replace(find_entry(), id="test", repo=sys.argv[2], file=sys.argv[3], size_bytes=0)
models, verified, filler = disk / "models", VerifiedFiles(disk / "verified.json"), disk / "filler"
def fill(progress):
    if progress.done > (30 << 20) and not filler.exists():
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
            except OSError:
                pass
result = {}
try:
    download_model(entry, models, verified, progress=fill)
except DownloadError as exc:
    result["message"] = str(exc)
result["kept"] = partial_download(entry, models)
result["loadable"] = target_path(entry, models).exists()
filler.unlink()
path = download_model(entry, models, verified)
result["after_freeing"] = path.stat().st_size
print(json.dumps(result))
"""


def test_a_disk_that_fills_mid_download_is_a_clear_message_and_resumes(hub, tmp_path, gguf_bytes):
    import json
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a small private tmpfs")
    disk = tmp_path / "small disk"
    disk.mkdir()
    mount = f"mount -t tmpfs -o size=600m tmpfs '{disk}'"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", mount], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"this machine does not allow a private tmpfs: {probe.stderr.strip()}")
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f'{mount} && exec "$0" -c "$1" "$2" "$3" "$4"',
         sys.executable, _DISK_FULL_SCRIPT, str(disk), REPO, FILE],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "disk filled up" in result["message"] and "resumes where it stopped" in result["message"]
    assert result["kept"] >= 20 << 20 and not result["loadable"]
    assert result["after_freeing"] == len(gguf_bytes)
    assert int(hub.gets()[-1]["range"][6:].split("-")[0]) > 0  # the second attempt resumed


# -- a hostile or compromised endpoint (stop 30's third independent run) -------------------

def test_a_body_longer_than_announced_is_stopped_and_deleted(hub, entry, verified, tmp_path):
    hub.extra_bytes = 64 << 20  # an endless body wrote 1.8 GB in 3 s for a file said to be 1 KB
    with pytest.raises(DownloadError, match="sent more than the .* it announced"):
        download_model(entry, tmp_path / "models", verified)
    leftovers = [p for p in (tmp_path / "models").rglob("*") if p.is_file() and ".locks" not in p.parts]
    assert leftovers == [], leftovers


def test_the_token_does_not_follow_a_redirect_to_another_host(hub, entry, verified, tmp_path, gguf_bytes):
    hub.redirect_host = "localhost"  # the endpoint is 127.0.0.1: another host to the client
    path = download_model(entry, tmp_path / "models", verified)
    assert path.read_bytes() == gguf_bytes
    assert hub.gets() and all("authorization" not in headers for headers in hub.gets())


def test_a_server_that_lies_about_the_sha_deletes_nothing_of_the_users(hub, entry, verified, tmp_path, gguf_bytes):
    path = download_model(entry, tmp_path / "models", verified)
    hub.claimed_sha = "ab" * 32  # the user's good, checked file was deleted
    assert download_model(entry, tmp_path / "models", verified) == path and path.read_bytes() == gguf_bytes
    (tmp_path / "verified.json").unlink()  # never checked: kept too, with a message
    with pytest.raises(DownloadError, match="It was kept"):
        download_model(entry, tmp_path / "models", verified)
    assert path.read_bytes() == gguf_bytes
    hub.claimed_sha = "../../../tmp/x"  # names the partial file: refused before anything is written
    path.unlink()
    with pytest.raises(DownloadError, match="gave no SHA-256"):
        download_model(entry, tmp_path / "models", verified)
    assert not list((tmp_path / "models").rglob("*.part"))
