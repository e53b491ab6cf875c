"""Stops a kernel before it hurts the computer: too much memory (before the laptop
swaps), too many processes or threads (a fork bomb, where the process limit does not
apply, as for root), or a disk about to fill. Watches everything the kernel started,
its whole process tree however the processes detach (new sessions, double forks: in
bubblewrap's PID namespace orphans go to the namespace's init, still in the tree),
reading /proc directly (fast even with hundreds of processes), and kills the tree at
once when a line is crossed. Without /proc it asks psutil.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Callable

POLL_S = 0.1
MAX_PROCESSES = 128
MAX_THREADS = 2048  # all threads of all processes: a thread bomb exhausts the OS's tables, not memory
PSS_MAX_MEMBERS = 16  # PSS of a process costs milliseconds: read it only for a few
MIN_FREE_DISK = 1 << 30  # the code may not take the last GB of the disk its workspace is on
DISK_FILLING = 64 << 20  # ... judged by what it took since the kernel started
DISK_RECOUNT = 256 << 20  # the conversation's folders are measured again once the disk lost this much
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def process_tree(pid: int) -> list[tuple[int, int, int]]:
    """(pid, resident bytes, threads) of a process and all its descendants. Resident
    counts pages a forked child shares with its parent twice: see ``proportional``."""
    if not os.path.isdir("/proc/self"):
        return [(p, rss, 1) for p, rss in tree_members(pid)]
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2:].split()  # state, ppid, pgrp, ...
            child = int(name)
            children.setdefault(int(fields[1]), []).append(child)
            info[child] = (int(fields[21]) * _PAGE, int(fields[17]))  # rss in pages, num_threads
        except (OSError, ValueError, IndexError):
            continue
    if pid not in info:
        return []
    members, todo = [], [pid]
    while todo:
        member = todo.pop()
        if member in info:
            members.append((member, *info[member]))
        todo += children.get(member, [])
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


def folder_usage(*folders: Path) -> int:
    """Bytes on disk under the folders, links not followed (du's count)."""
    total, todo = 0, [str(f) for f in folders]
    while todo:
        try:
            entries = os.scandir(todo.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += getattr(info, "st_blocks", 0) * 512 or info.st_size
                if entry.is_dir(follow_symlinks=False):
                    todo.append(entry.path)
    return total


def kill_tree(pid: int) -> None:
    """Kills a process and every descendant found (Windows has no process groups)."""
    import psutil

    for member, _ in tree_members(pid):
        try:
            psutil.Process(member).kill()
        except psutil.Error:
            pass


def kill_process_tree(pid: int, timeout: float = 5.0) -> None:
    """SIGKILL the tree until no member is left (a fork bomb keeps adding members). The
    root first: bubblewrap's namespace dies with it, the rest go by name."""
    if not hasattr(os, "killpg"):
        kill_tree(pid)
        return
    deadline = time.monotonic() + timeout
    members = [m[0] for m in process_tree(pid)] or [pid]
    while time.monotonic() < deadline:
        for member in members:
            try:
                os.kill(member, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.killpg(pid, signal.SIGKILL)  # the kernel leads its process group, if it still exists
        except (ProcessLookupError, PermissionError):
            pass
        time.sleep(0.02)
        members = [m[0] for m in process_tree(pid) if not _is_zombie(m[0])]
        if not members:
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
                 min_available: int | None = None, max_threads: int = MAX_THREADS, disk_path: Path | None = None,
                 min_free_disk: int = MIN_FREE_DISK, folders: tuple[Path, ...] = (), disk_budget: int = 0):
        self.pid_of = pid_of
        self.memory_limit = memory_limit
        self.max_processes = max_processes
        self.max_threads = max_threads
        self.min_available = min_available
        self.disk_path = disk_path
        self.min_free_disk = min_free_disk
        # The conversation's own folders (workspace, home) and what they may hold in all.
        self.folders = folders
        self.disk_budget = disk_budget
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
        free_at_start = free_at_count = self._free_disk()
        ticks = 0
        while not self._stop.wait(POLL_S):
            ticks += 1
            pid = self.pid_of()
            if pid is None:
                continue
            members = process_tree(pid)
            if len(members) > self.max_processes:
                self._kill(pid, f"it started more than {self.max_processes} processes (a fork bomb?)")
                continue
            threads = sum(m[2] for m in members)
            if threads > self.max_threads:
                self._kill(pid, f"it started more than {self.max_threads} threads")
                continue
            if ticks % 10 == 0 and free_at_start is not None:  # once a second: statvfs is cheap, not free
                free = self._free_disk()
                # Only a disk the code is filling: one that was already short is the user's business.
                if free is not None and free < self.min_free_disk and free_at_start - free > DISK_FILLING:
                    self._kill(pid, f"the disk was nearly full ({free >> 20} MB left); files the code wrote "
                                    "are still in the conversation's folder")
                    free_at_start = self._free_disk()
                    continue
                if free is not None and self.disk_budget and free_at_count - free > DISK_RECOUNT:
                    # Counting is dear with many files, so only once the disk has lost enough.
                    free_at_count = free
                    used = folder_usage(*self.folders)
                    if used > self.disk_budget:
                        self._kill(pid, f"this conversation's files take {used / (1 << 30):.1f} GB, over its "
                                        f"{self.disk_budget / (1 << 30):.3g} GB limit; delete some to go on")
                        continue
            pairs = [(m[0], m[1]) for m in members]
            rss = sum(m[1] for m in members)
            if rss > self.memory_limit and 1 < len(members) <= PSS_MAX_MEMBERS and os.path.isdir("/proc/self"):
                rss = proportional(pairs)
            elif len(members) > PSS_MAX_MEMBERS:
                continue  # reading PSS of so many takes seconds; the process rule watches them
            if rss > self.memory_limit:
                self._kill(pid, f"it used {rss / (1 << 30):.1f} GB of memory, over the "
                                f"{self.memory_limit / (1 << 30):.1f} GB limit")
            elif rss > 256 << 20 and psutil.virtual_memory().available < min_available:
                self._kill(pid, f"the computer was running out of memory ({rss / (1 << 30):.1f} GB used by the code)")

    def _free_disk(self) -> int | None:
        try:
            return shutil.disk_usage(self.disk_path).free if self.disk_path else None
        except OSError:
            return None

    def _kill(self, pid: int, reason: str) -> None:
        self.reason = f"stopped by the app: {reason}"
        kill_process_tree(pid)
