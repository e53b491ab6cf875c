"""Stops a kernel before it hurts the computer: too much memory (before the laptop
swaps), or too many processes (a fork bomb, where the process limit does not apply,
as for root). Watches the kernel's whole process group, reading /proc directly (fast
even with hundreds of processes), and kills the group at once when a line is crossed.
Without /proc it asks psutil; without process groups (Windows) it watches the kernel's
process tree.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Callable

POLL_S = 0.1
MAX_PROCESSES = 128
PSS_MAX_MEMBERS = 16  # PSS of a process costs milliseconds: read it only for a few
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def group_members(pgid: int) -> list[tuple[int, int]]:
    """(pid, resident bytes) of every process in the group (Linux /proc; psutil elsewhere).
    Resident counts pages a forked child shares with its parent twice: see ``proportional``."""
    if not os.path.isdir("/proc/self"):
        import psutil

        if not hasattr(os, "getpgid"):  # Windows: no process groups; the kernel and its descendants
            return tree_members(pgid)
        members = []
        for p in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(p.pid) == pgid:
                    members.append((p.pid, p.memory_info().rss))
            except (OSError, psutil.Error):
                pass
        return members
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2:].split()
            if int(fields[2]) != pgid:  # state, ppid, pgrp, ...
                continue
            members.append((int(name), int(fields[21]) * _PAGE))  # rss, in pages
        except (OSError, ValueError, IndexError):
            continue
    return members


def tree_members(pid: int) -> list[tuple[int, int]]:
    """(pid, resident bytes) of a process and all its descendants (psutil)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    members = []
    for process in processes:
        try:
            members.append((process.pid, process.memory_info().rss))
        except psutil.Error:
            pass
    return members


def proportional(members: list[tuple[int, int]]) -> int:
    """Their memory with shared pages split between sharers (PSS): dearer to read than
    RSS, so read only when RSS says a line may be crossed."""
    total = 0
    for pid, rss in members:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError):
            total += rss
    return total


def kill_tree(pid: int) -> None:
    """Kills a process and every descendant found (Windows has no process groups)."""
    import psutil

    for member, _ in tree_members(pid):
        try:
            psutil.Process(member).kill()
        except psutil.Error:
            pass


def kill_group(pgid: int, timeout: float = 5.0) -> None:
    """SIGKILL the group until no member is left (a fork bomb keeps adding members)."""
    if not hasattr(os, "killpg"):
        kill_tree(pgid)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        time.sleep(0.02)
        if not [m for m in group_members(pgid) if not _is_zombie(m[0])]:
            return


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] == b"Z"
    except OSError:
        return True


class KernelWatchdog:
    """One thread per kernel; ``reason`` says why it killed the kernel, if it did."""

    def __init__(self, pid_of: Callable[[], int | None], memory_limit: int, max_processes: int = MAX_PROCESSES,
                 min_available: int | None = None):
        self.pid_of = pid_of
        self.memory_limit = memory_limit
        self.max_processes = max_processes
        self.min_available = min_available
        self.reason = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kernel-watchdog", daemon=True)

    def start(self) -> "KernelWatchdog":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def take_reason(self) -> str:
        reason, self.reason = self.reason, ""
        return reason

    def _run(self) -> None:
        import psutil

        min_available = self.min_available
        if min_available is None:
            min_available = max(512 << 20, psutil.virtual_memory().total // 20)
        while not self._stop.wait(POLL_S):
            pid = self.pid_of()
            if pid is None:
                continue
            members = group_members(pid)  # the kernel leads its own session and group
            if len(members) > self.max_processes:
                self._kill(pid, f"it started more than {self.max_processes} processes (a fork bomb?)")
                continue
            rss = sum(m[1] for m in members)
            if rss > self.memory_limit and 1 < len(members) <= PSS_MAX_MEMBERS and os.path.isdir("/proc/self"):
                rss = proportional(members)
            elif len(members) > PSS_MAX_MEMBERS:
                continue  # reading PSS of so many takes seconds; the process rule watches them
            if rss > self.memory_limit:
                self._kill(pid, f"it used {rss / (1 << 30):.1f} GB of memory, over the "
                                f"{self.memory_limit / (1 << 30):.1f} GB limit")
            elif rss > 256 << 20 and psutil.virtual_memory().available < min_available:
                self._kill(pid, f"the computer was running out of memory ({rss / (1 << 30):.1f} GB used by the code)")

    def _kill(self, pgid: int, reason: str) -> None:
        self.reason = f"stopped by the app: {reason}"
        kill_group(pgid)
