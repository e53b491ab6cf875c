"""Facts about a kernel's operating-system processes: the kernel below bubblewrap's, why
one ended, what it wrote before it failed, and the runtime folders of apps that were killed.
"""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path

from ..no_follow import remove_tree


def remove_abandoned_runtime_folders() -> list[str]:
    """Kernels' runtime folders (``/tmp/cak-PID-*``: connection file with its key, sockets)
    left by an app that was killed; those of a running app are left alone."""
    import psutil

    removed = []
    for folder in Path(tempfile.gettempdir()).glob("cak-*-*"):
        pid = folder.name.split("-")[1]
        if pid.isdigit() and not psutil.pid_exists(int(pid)) and folder.is_dir() and not folder.is_symlink():
            remove_tree(folder)
            removed.append(folder.name)
    return removed


def log_tail(path: Path, lines: int = 3) -> str:
    try:
        tail = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
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
