"""The KV state of prompts llama.cpp has read, kept so that going back to a conversation
does not read it again.

One llama.cpp context serves every conversation: opening another one overwrites what the
context holds, and coming back meant evaluating the whole conversation again (minutes for a
7B model on a CPU). Before the context is overwritten its state is put here, keyed by the
tokens it holds; a later prompt that starts with those tokens gets them back in a memcpy.

Entries live in memory up to a budget, then spill to files in the app's data folder up to a
second budget (least recently used first out of each). A file is valid for the model it was
made with only (``model_key``: the file's name, size and date, the context's KV types), so it
survives a restart of the app and is ignored after the model changes. Files are checked with
a SHA-256 before llama.cpp reads them, and written beside their final name first, so a kill
mid-write leaves nothing half-written under it. No pickle: tokens and bytes only.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..app_log import safe_description

log = logging.getLogger(__name__)

MAGIC = b"CAKV1\n"
SUFFIX = ".kv"
PARTIAL = ".part"
# A ".part" this old is a write that was killed (a 4 GB state takes well under a minute);
# younger ones may be another running instance's write in progress.
STALE_PART_S = 600.0


@dataclass
class CachedPrompt:
    """One saved state: the tokens it holds; its bytes in memory, or its file."""

    tokens: np.ndarray  # int32
    size: int
    data: bytearray | None = None
    file: Path | None = None
    used: float = 0.0


class PromptCache:
    """Saved KV states of recent prompts, bounded in memory and on disk."""

    def __init__(self, model_key: str, ram_bytes: int, folder: Path | None = None, disk_bytes: int = 0):
        self.model_key = model_key
        self.ram_bytes = ram_bytes
        self.folder = folder if disk_bytes > 0 else None
        self.disk_bytes = disk_bytes
        self._ram: OrderedDict[bytes, CachedPrompt] = OrderedDict()  # least recently used first
        self._disk: dict[bytes, CachedPrompt] = {}
        if self.folder is not None:
            self._read_index()

    # -- what is here -----------------------------------------------------------------

    @property
    def ram_used(self) -> int:
        return sum(e.size for e in self._ram.values())

    @property
    def disk_used(self) -> int:
        return sum(e.size for e in self._disk.values())

    def __len__(self) -> int:
        return len(self._ram.keys() | self._disk.keys())

    def longest_prefix(self, tokens: Sequence[int]) -> tuple[CachedPrompt | None, int]:
        """The entry sharing the longest start with ``tokens``, and how many tokens that is."""
        wanted = np.asarray(tokens, dtype=np.int32)
        best, best_n = None, 0
        for entry in [*self._ram.values(), *self._disk.values()]:
            n = _common_prefix(entry.tokens, wanted)
            if n > best_n:
                best, best_n = entry, n
        return best, best_n

    def state(self, entry: CachedPrompt) -> bytearray | None:
        """The entry's bytes, read from its file if it is only there; None when the file is
        gone or does not check out (then it is forgotten)."""
        key = _key(entry.tokens)
        entry.used = time.time()
        if entry.data is not None:
            self._ram.move_to_end(key, last=True)
            return entry.data
        data = _read_file(entry.file, self.model_key, with_payload=True)
        if data is None:
            self._forget_file(key)
            return None
        return data[1]

    # -- keeping ------------------------------------------------------------------------

    def put(self, tokens: Sequence[int], data: bytearray) -> None:
        """Keeps ``data``, the state after ``tokens``; entries that are a prefix of it
        are dropped (it holds all they hold)."""
        array = np.asarray(tokens, dtype=np.int32).copy()
        key = _key(array)
        for other in [k for k, e in self._ram.items() if len(e.tokens) <= len(array)
                      and _common_prefix(e.tokens, array) == len(e.tokens)]:
            del self._ram[other]
        self._ram.pop(key, None)
        self._ram[key] = CachedPrompt(array, len(data), data, used=time.time())
        self._fit_ram()

    def persist(self) -> None:
        """Writes what is only in memory to disk (the app is closing)."""
        for key in list(self._ram):
            if key not in self._disk:
                self._spill(key, self._ram[key])

    def forget(self, start: Sequence[int], shared: int) -> int:
        """Drops every state of the conversation that begins with ``start``: those holding
        all of it, and shorter ones holding more than the ``shared`` start every conversation
        has. Returns how many went."""
        wanted = np.asarray(start, dtype=np.int32)
        gone = 0
        for key in list(self._ram.keys() | self._disk.keys()):
            tokens = (self._ram.get(key) or self._disk[key]).tokens
            n = _common_prefix(tokens, wanted)
            if n == len(wanted) or (n == len(tokens) and n > shared):
                self._ram.pop(key, None)
                if key in self._disk:
                    self._forget_file(key)
                gone += 1
        return gone

    def clear(self) -> None:
        self._ram.clear()
        for key in list(self._disk):
            self._forget_file(key)

    def _fit_ram(self) -> None:
        while self._ram and self.ram_used > self.ram_bytes:
            key, entry = self._ram.popitem(last=False)
            if key not in self._disk:
                self._spill(key, entry)

    def _spill(self, key: bytes, entry: CachedPrompt) -> None:
        if self.folder is None or entry.size > self.disk_bytes:
            return
        self._fit_disk(self.disk_bytes - entry.size)
        path = self.folder / f"{key.hex()}{SUFFIX}"
        try:
            _write_file(path, self.model_key, entry.tokens, entry.data)
        except OSError as exc:  # a full disk loses the entry, nothing else
            log.warning("KV state not written to disk: %s", safe_description(exc))  # no path in the log
            return
        self._disk[key] = CachedPrompt(entry.tokens, entry.size, None, path, entry.used)

    def _fit_disk(self, room: int) -> None:
        for key in sorted(self._disk, key=lambda k: self._disk[k].used):
            if self.disk_used <= room:
                return
            self._forget_file(key)

    def _forget_file(self, key: bytes) -> None:
        entry = self._disk.pop(key, None)
        if entry is not None and entry.file is not None:
            try:
                entry.file.unlink()
            except OSError:
                pass

    def _read_index(self) -> None:
        """The files of earlier runs: this model's are entries, other models' stay until
        the disk budget needs their room (the user may switch back); broken ones go."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            files = sorted(self.folder.glob(f"*{SUFFIX}"))
        except OSError as exc:
            log.warning("KV state folder unusable: %s", safe_description(exc))
            self.folder = None
            return
        others = []
        for path in files:
            found = _read_file(path, None, with_payload=False)
            if found is None:
                path.unlink(missing_ok=True)
                continue
            (model, tokens, _), _ = found
            stat = path.stat()
            stamp, size = stat.st_mtime, stat.st_size  # what the file takes, not what it says
            if model == self.model_key:
                self._disk[_key(tokens)] = CachedPrompt(tokens, size, None, path, stamp)
            else:
                others.append((stamp, path, size))
        # Other models' files count against the budget too: oldest out first.
        used = self.disk_used + sum(size for _, _, size in others)
        for _, path, size in sorted(others):
            if used <= self.disk_bytes:
                break
            path.unlink(missing_ok=True)
            used -= size
        # This model's own files too: the budget may have been lowered since they were written.
        self._fit_disk(self.disk_bytes - (used - self.disk_used))
        self._remove_stale_parts()

    def _remove_stale_parts(self) -> None:
        """Writes a kill or a crash cut short: never read, but they would hold the disk for good."""
        now = time.time()
        for path in self.folder.glob(f"*{PARTIAL}"):
            try:
                if not path.is_symlink() and now - path.stat().st_mtime > STALE_PART_S:
                    path.unlink()
            except OSError:
                continue


def _key(tokens: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(tokens, dtype=np.int32).tobytes()).digest()[:16]


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


def _write_file(path: Path, model_key: str, tokens: np.ndarray, data: bytearray) -> None:
    header = json.dumps({"model": model_key, "n_tokens": len(tokens), "size": len(data),
                         "sha256": hashlib.sha256(data).hexdigest()}).encode()
    tmp = path.with_suffix(PARTIAL)
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + struct.pack("<Q", len(header)) + header)
            f.write(np.ascontiguousarray(tokens, dtype="<i4").tobytes())
            f.write(data)
        os.replace(tmp, path)
    except BaseException:  # a full disk: the half-written state must not keep its room
        tmp.unlink(missing_ok=True)
        raise


def _read_file(path: Path | None, model_key: str | None, *, with_payload: bool):
    """((model, tokens, size), payload or None), or None when the file is not one of ours,
    is for another model (when ``model_key`` is given), or fails its checksum."""
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                return None
            (length,) = struct.unpack("<Q", f.read(8))
            if length > 1 << 16:
                return None
            header = json.loads(f.read(length))
            model, n, size, digest = header["model"], int(header["n_tokens"]), int(header["size"]), header["sha256"]
            if model_key is not None and model != model_key:
                return None
            # Exactly as long as its header says: cut short or grown, it is not a file we wrote.
            if os.fstat(f.fileno()).st_size != len(MAGIC) + 8 + length + 4 * n + size:
                return None
            tokens = np.frombuffer(f.read(4 * n), dtype="<i4").astype(np.int32)
            if len(tokens) != n:
                return None
            if not with_payload:
                return (model, tokens, size), None
            payload = bytearray(size)
            if f.readinto(payload) != size or hashlib.sha256(payload).hexdigest() != digest:
                return None
            return (model, tokens, size), payload
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None


# -- llama.cpp's side: one sequence's state out of and into the context -----------------

def save_sequence(llm) -> bytearray:
    """The KV state of sequence 0 of ``llm`` (a ``llama_cpp.Llama``): the cells of the tokens
    it holds, no logits (llama-cpp-python's own ``save_state`` also copies the logits of a
    whole batch, 0.5 GB for a 262k vocabulary)."""
    import llama_cpp

    ctx = llm._ctx.ctx
    size = llama_cpp.llama_state_seq_get_size(ctx, 0)
    data = bytearray(size)
    buffer = (ctypes.c_uint8 * size).from_buffer(data)
    written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
    del buffer  # a live export of the bytearray would pin it
    if written != size:
        raise RuntimeError(f"llama.cpp wrote {written} of {size} bytes of state")
    return data


def restore_sequence(llm, tokens: np.ndarray, data: bytearray) -> bool:
    """Puts a saved state back into sequence 0 and tells llama-cpp-python which tokens the
    context now holds. False: llama.cpp refused it; the context is then treated as empty."""
    import llama_cpp

    buffer = (ctypes.c_uint8 * len(data)).from_buffer(data)
    try:
        read = llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buffer, len(data), 0)
    finally:
        del buffer
    if read != len(data):
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        llm.n_tokens = 0
        return False
    llm.input_ids[:len(tokens)] = tokens
    llm.n_tokens = len(tokens)
    return True
