"""Downloading a catalogue model with huggingface_hub: progress, cancel, resume,
a free-disk check, and the file's SHA-256 checked against the Hub's LFS hash before
it is ever offered for loading.

The transfer is huggingface_hub's own ``http_get`` (its headers, token, HF_ENDPOINT,
retries that resume within one attempt) into our ``.part`` file, which the next attempt
resumes after a cancel or a crash. A file already in the Hugging Face cache
(HF_HOME / HF_HUB_CACHE) is used where it is, without a copy. Only a file whose SHA-256
matches the Hub's LFS hash gets the name the app loads.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import filelock

# huggingface_hub is imported where a download needs it (about 0.2 s): the window's welcome
# page uses this module at every start, and most starts download nothing.
from ..sizes import human_size
from ..socket_stop import shut_on_cancel, socket_of
from .catalogue import CatalogueEntry

METADATA_TIMEOUT_S = 10.0  # no network must be a message within seconds, never a hang
DISK_MARGIN_BYTES = 200 << 20  # leave room for the app's own writes
log = logging.getLogger(__name__)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DownloadError(Exception):
    """Why a download did not give a usable file, in words for the user."""


class DownloadCancelled(DownloadError):
    """The user stopped the download; the partial file stays for a resume."""


@dataclass
class Progress:
    """How far a download is, for the dialog's bar and its time left."""

    done: int
    total: int
    bytes_per_s: float
    stage: str = "downloading"  # downloading | verifying

    @property
    def eta_s(self) -> float | None:
        return (self.total - self.done) / self.bytes_per_s if self.bytes_per_s > 0 else None


ProgressHook = Callable[[Progress], None]
_CANCELLED = "The download was cancelled; it resumes where it stopped next time."


def _endpoint() -> str | None:
    # Read at call time: huggingface_hub reads HF_ENDPOINT once, at import.
    return os.environ.get("HF_ENDPOINT") or None


def _cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE)


def _progress_bar(progress: ProgressHook | None, cancel: threading.Event | None):
    """A tqdm for huggingface_hub that reports to us and stops when cancelled."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    class Bar(hf_tqdm):
        """huggingface_hub's progress bar, silent: it reports to ``progress`` and raises when cancelled."""

        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # no terminal output from the library
            super().__init__(*args, **kwargs)
            self.done = kwargs.get("initial", 0) or 0
            self.total_bytes = kwargs.get("total") or 0
            self.started, self.start_done = time.monotonic(), self.done

        def update(self, n=1):
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled(_CANCELLED)
            self.done += n or 0
            if progress is not None:
                elapsed = max(time.monotonic() - self.started, 1e-6)
                progress(Progress(self.done, self.total_bytes, (self.done - self.start_done) / elapsed))
            return super().update(n)

    return Bar


# The socket each downloading thread reads now, and whether its download is cancelled:
# told by hooks on huggingface_hub's HTTP client, which opens the connections itself.
_reading: dict[int, socket.socket | None] = {}
_cancels: dict[int, threading.Event] = {}


def _note_socket(response) -> None:
    if threading.get_ident() in _cancels:
        _reading[threading.get_ident()] = socket_of(response)


def _refuse_when_cancelled(request) -> None:
    # huggingface_hub retries a connection that broke, and Cancel breaks it: no new one.
    cancel = _cancels.get(threading.get_ident())
    if cancel is not None and cancel.is_set():
        raise DownloadCancelled(_CANCELLED)


@contextmanager
def _stopped_at_once(cancel: threading.Event | None):
    """While huggingface_hub downloads on this thread, Cancel shuts its connection down, so
    a stalled or slow transfer stops at once (it read 10 MB between checks: on a line of
    100 KB/s, Cancel took 100 s)."""
    from huggingface_hub import get_session

    client, thread = get_session(), threading.get_ident()
    hooks = client.event_hooks
    if _note_socket not in hooks["response"]:
        client.event_hooks = {"request": [*hooks["request"], _refuse_when_cancelled],
                              "response": [*hooks["response"], _note_socket]}
    if cancel is not None:
        _cancels[thread] = cancel
    try:
        with shut_on_cancel(cancel, lambda: _reading.get(thread)):
            yield
    finally:
        _cancels.pop(thread, None)
        _reading.pop(thread, None)


def sha256_of(path: Path, progress: ProgressHook | None = None, cancel: threading.Event | None = None) -> str:
    digest, done, total = hashlib.sha256(), 0, path.stat().st_size
    started = time.monotonic()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled("Checking the file was cancelled; it is checked again before use.")
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(Progress(done, total, done / max(time.monotonic() - started, 1e-6), "verifying"))
    return digest.hexdigest()


class VerifiedFiles:
    """Which downloaded files passed the SHA-256 check (path, size and mtime), so a
    7 GB file is hashed once, not at every start."""

    def __init__(self, path: Path):
        self.path = path

    def _load(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _key(file: Path) -> str:
        stat = file.stat()
        return f"{file.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"

    def sha_of(self, file: Path) -> str:
        return self._load().get(self._key(file), "")

    def is_verified(self, file: Path, sha256: str) -> bool:
        return bool(sha256) and file.exists() and self._load().get(self._key(file)) == sha256

    def mark(self, file: Path, sha256: str) -> None:
        data = self._load()
        data[self._key(file)] = sha256
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


def _clear_message(exc: Exception, entry: CatalogueEntry) -> str:
    from huggingface_hub.errors import (
        EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError,
    )

    where = _endpoint() or "huggingface.co"
    if not isinstance(exc, HfHubHTTPError):  # connection refused, DNS, timeout, offline mode
        return (f"Could not reach {where} to download {entry.name}: {exc}. Check the network connection, "
                "or use a GGUF file already on this computer.")
    if isinstance(exc, (RepositoryNotFoundError, EntryNotFoundError, RevisionNotFoundError)):
        return f"{entry.repo}/{entry.file} (revision {entry.revision}) was not found on {where}."
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        return f"{where} answered with an error ({status}) for {entry.file}: {exc}"
    return f"The download of {entry.name} failed: {exc}"


def download_model(
    entry: CatalogueEntry,
    models_dir: Path,
    verified: VerifiedFiles,
    progress: ProgressHook | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Downloads (or finds) the entry's file and returns its verified path."""
    lock_dir = models_dir / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(lock_dir / f"{entry.id}.lock"), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise DownloadError(f"{entry.name} is already being downloaded (by this app or another window).") from None
    try:
        return _download_locked(entry, models_dir, verified, progress, cancel)
    finally:
        lock.release()


def target_path(entry: CatalogueEntry, models_dir: Path) -> Path:
    return models_dir / entry.repo.replace("/", "--") / entry.file


def _download_locked(entry, models_dir, verified, progress, cancel) -> Path:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url, try_to_load_from_cache
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    endpoint = _endpoint()
    try:
        meta = get_hf_file_metadata(hf_hub_url(entry.repo, entry.file, revision=entry.revision, endpoint=endpoint),
                                    timeout=METADATA_TIMEOUT_S, endpoint=endpoint)
    except Exception as exc:
        log.warning("the metadata of %s could not be fetched", entry.id, exc_info=True)
        raise DownloadError(_clear_message(exc, entry)) from exc
    commit, expected_sha, size = meta.commit_hash, (meta.etag or "").lower(), meta.size or entry.size_bytes
    if not commit:
        raise DownloadError(f"{endpoint or 'huggingface.co'} did not say which version of {entry.file} it serves.")
    if not _SHA256.fullmatch(expected_sha):  # it names the partial file: never "../", never 60,000 characters
        raise DownloadError(f"The server gave no SHA-256 for {entry.file}, so it cannot be checked; not using it.")
    # Already in the Hugging Face cache (another tool downloaded it): use it where it is.
    cached = try_to_load_from_cache(entry.repo, entry.file, revision=commit, cache_dir=_cache_dir())
    if isinstance(cached, str) and Path(cached).exists():
        return _verify(Path(cached), expected_sha, verified, entry, progress, cancel)
    target = target_path(entry, models_dir)
    if target.exists():
        return _verify(target, expected_sha, verified, entry, progress, cancel)
    # Our own partial file, named by the content's hash, so a resume never mixes versions
    # (huggingface_hub 2.x throws its partial files away when a download stops).
    part = target.with_name(f"{target.name}.{expected_sha[:16]}.part")
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    free = shutil.disk_usage(existing_parent(part.parent)).free
    needed = size - have + DISK_MARGIN_BYTES
    if free < needed:
        raise DownloadError(
            f"Not enough disk space for {entry.name}: it needs {human_size(needed)} more and "
            f"{human_size(free)} is free at {part.parent}.")
    headers = build_hf_headers()
    if urlsplit(meta.location).netloc != urlsplit(endpoint or "https://huggingface.co").netloc:
        headers.pop("authorization", None)  # the token is for the Hub, not for where it redirects
    try:
        with open(part, "ab") as out, _stopped_at_once(cancel):
            http_get(meta.location, _NoLongerThan(out, size), resume_size=have, headers=headers, expected_size=size,
                     displayed_filename=entry.file, tqdm_class=_progress_bar(progress, cancel))
    except DownloadCancelled:
        raise
    except _TooLong as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"The server sent more than the {human_size(size)} it announced for {entry.file}; "
                            "the download was stopped and deleted.") from exc
    except Exception as exc:
        if cancel is not None and cancel.is_set():  # the read that Cancel shut down
            raise DownloadCancelled(_CANCELLED) from exc
        log.warning("the download of %s stopped after %d bytes of %d", entry.id,
                    part.stat().st_size if part.exists() else 0, size, exc_info=True)
        if isinstance(exc, OSError) and getattr(exc, "errno", None) == errno.ENOSPC:
            raise DownloadError(f"The disk filled up while downloading {entry.name}; free some space and "
                                "try again, and it resumes where it stopped.") from exc
        raise DownloadError(_clear_message(exc, entry) + " It resumes where it stopped next time.") from exc
    _check_sha(part, expected_sha, entry, progress, cancel)
    log.info("downloaded and checked %s (%d bytes)", entry.id, size)
    os.replace(part, target)  # only a verified file gets the name that is loaded
    verified.mark(target, expected_sha)
    return target


def _verify(path: Path, expected_sha: str, verified: VerifiedFiles, entry, progress, cancel) -> Path:
    """Checks a file already on disk once (remembered afterwards) and returns it. One that
    passed before is kept whatever the server says now: a server that lies about the
    SHA-256 once made the app delete the user's good model, and a shared cache blob."""
    if verified.is_verified(path, expected_sha):
        return path
    if verified.is_verified(path, verified.sha_of(path)):
        log.warning("%s on disk passed its check before; the server now lists another SHA-256", entry.id)
        return path
    actual = sha256_of(path, progress, cancel)
    if actual != expected_sha:
        raise DownloadError(f"{path} is not the version the server lists (SHA-256 {actual[:12]}… instead of "
                            f"{expected_sha[:12]}…). It was kept; remove it to download again.")
    verified.mark(path, expected_sha)
    return path


def _check_sha(path: Path, expected_sha: str, entry, progress, cancel) -> None:
    """This download's own partial file, checked; deleted when it does not match."""
    actual = sha256_of(path, progress, cancel)
    if actual != expected_sha:
        path.unlink(missing_ok=True)  # never left where it could be loaded, nor resumed
        log.warning("%s arrived damaged (SHA-256 mismatch); deleted", entry.id)
        raise DownloadError(
            f"{entry.file} arrived damaged (SHA-256 {actual[:12]}… instead of {expected_sha[:12]}…). "
            "It was deleted; try the download again.")


class _TooLong(OSError):
    """More bytes than the server announced."""


class _NoLongerThan:
    """The partial file, taking no byte past the size the server announced (an endless body
    wrote 1.8 GB in 3 s for a file said to be 1 KB; the disk was checked for 1 KB)."""

    def __init__(self, out, limit: int):
        self._out, self._limit = out, limit

    def write(self, data: bytes) -> int:
        if self._out.tell() + len(data) > self._limit:
            raise _TooLong(f"past {self._limit} bytes")
        return self._out.write(data)

    def __getattr__(self, name):
        return getattr(self._out, name)


def existing_parent(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def find_downloaded(entry: CatalogueEntry, models_dir: Path, verified: VerifiedFiles) -> Path | None:
    """The entry's file if it is on disk and passed the check; no network."""
    candidates = [target_path(entry, models_dir)]
    cache = _cache_dir() / f"models--{entry.repo.replace('/', '--')}" / "snapshots"
    candidates += sorted(cache.glob(f"*/{entry.file}")) if cache.exists() else []
    for candidate in candidates:
        if candidate.exists() and verified.is_verified(candidate, verified.sha_of(candidate)):
            return candidate
    return None


def partial_download(entry: CatalogueEntry, models_dir: Path) -> int:
    """Bytes already fetched by a download that stopped (0 if none): it resumes from there."""
    target = target_path(entry, models_dir)
    parts = list(target.parent.glob(f"{target.name}.*.part")) if target.parent.exists() else []
    return max((p.stat().st_size for p in parts), default=0)
