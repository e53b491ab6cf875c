"""Facts about a kernel's operating-system processes: the kernel below bubblewrap's, why
one ended, what it wrote before it failed, and the runtime folders of apps that were killed.
"""

from __future__ import annotations

import os
import signal
import stat
import tempfile
import threading
from pathlib import Path

from ..no_follow import remove_tree
from ..process_ids import process_running


def remove_abandoned_runtime_folders() -> list[str]:
    """Kernels' runtime folders (``/tmp/cak-PID-*``: connection file with its key, sockets)
    left by an app that was killed; those of a running app, and anything not the user's
    own (``/tmp`` is every user's), are left alone."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob("cak-*-*"):
        try:
            info = folder.lstat()
        except OSError:
            continue
        mine = not hasattr(os, "getuid") or info.st_uid == os.getuid()
        if stat.S_ISDIR(info.st_mode) and mine and not process_running(folder.name.split("-")[1]):
            try:
                remove_tree(folder)
            except OSError:  # another's, or in use: never a reason not to start
                continue
            removed.append(folder.name)
    return removed


class OutputTail:
    """What the kernel's process writes to its own stdout and stderr (``os.write(1, ...)``,
    a C library, a child process): read from a pipe on a thread of its own, the last
    KEEP_BYTES kept for a failed start's message and the rest dropped. It used to go to a
    file outside the conversation's disk budget, where code wrote 2 GB into it (and a /tmp
    in memory holds that in RAM). Never the user's terminal: its escapes would act there."""

    KEEP_BYTES = 64 << 10

    def __init__(self, read_fd: int):
        self._tail = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, args=(read_fd,), name="kernel output", daemon=True)
        self._thread.start()

    def _drain(self, read_fd: int) -> None:
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                with self._lock:
                    self._tail += chunk
                    del self._tail[:-self.KEEP_BYTES]

    def last_lines(self, lines: int = 3, wait: float = 0.5) -> str:
        """": line / line / line" from the end of what it wrote ("" when nothing); waits a
        little for a process that is ending to write its last words."""
        self._thread.join(wait)
        with self._lock:
            tail = self._tail.decode(errors="replace").strip().splitlines()[-lines:]
        return f": {' / '.join(tail)}" if tail else ""


def innermost_process(pid: int | None) -> int | None:
    """The kernel itself, below bubblewrap's processes (or the process itself without them)."""
    import psutil

    if pid is None:
        return None
    try:
        process = psutil.Process(pid)
        for child in process.children(recursive=True):
            if child.name() != "bwrap":
                return child.pid
    except psutil.Error:
        pass
    return pid


def exit_reason(code: int | None, in_namespaces: bool) -> str:
    """A process's end in plain words, from its exit status (None: it has not ended)."""
    if code is None:
        return "the process stopped answering"
    if code > 128 and in_namespaces:
        code = 128 - code  # bubblewrap exits with 128 + the signal that ended the kernel
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
