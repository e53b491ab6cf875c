"""Stops a kernel before it hurts the computer: too much memory (before the laptop
swaps), too many processes or threads (a fork bomb, where the process limit does not
apply, as for root), or a disk about to fill. Watches everything the kernel started,
its whole process tree however the processes detach (new sessions, double forks: in
bubblewrap's PID namespace orphans go to the namespace's init, still in the tree),
reading /proc directly (fast even with hundreds of processes), and kills the tree at
once when a line is crossed. Without /proc it asks psutil.

Following the kernel's pid anyway, it is also the one to notice that the kernel ended
(killed, crashed, exited) while no code was running, and says so through ``on_exit``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

POLL_S = 0.1
MAX_PROCESSES = 128
MAX_THREADS = 2048  # all threads of all processes: a thread bomb exhausts the OS's tables, not memory
# Sockets and pipes open in the whole tree at once, each counted once: each can hold a few
# hundred KB of the system's memory that no process's RSS shows, and the open-file limit
# is per process (16 children held 15,360 sockets and 2.9 GB)
MAX_BUFFERS = 1024
PSS_MAX_MEMBERS = 16  # PSS of a process costs milliseconds: read it only for a few
MIN_FREE_DISK = 1 << 30  # the code may not take the last GB of the disk its workspace is on
DISK_FILLING = 64 << 20  # ... judged by what it took since the kernel started
DISK_RECOUNT = 256 << 20  # the conversation's folders are measured again once the disk lost this much
INODES_RECOUNT = 100_000  # ... or this many free file entries
MAX_ENTRIES = 1_000_000  # files and folders one conversation may hold
MIN_FREE_INODES = 100_000  # the code may not take the disk's last file entries (every file needs one)
INODES_FILLING = 50_000  # ... judged by what it took since the kernel started
_log = logging.getLogger(__name__)
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


def buffers_held(pids: list[int]) -> int:
    """Distinct sockets and pipes open in the processes, however many of them hold each."""
    seen = set()
    for pid in pids:
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{name}")
            except OSError:
                continue
            if target.startswith(("socket:", "pipe:")):
                seen.add(target)
    return len(seen)


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


def proportional(members: list[tuple[int, int]], stop_above: int | None = None) -> int:
    """Their memory with shared pages split between sharers (PSS): dearer to read than
    RSS, so read only when RSS says a line may be crossed; largest first, and no further
    than ``stop_above``, where the answer is known."""
    total = 0
    for pid, rss in sorted(members, key=lambda m: -m[1]):
        if stop_above is not None and total > stop_above:
            break
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError):
            total += rss
    return total


def folder_usage(*folders: Path) -> tuple[int, int]:
    """Bytes on disk under the folders and the number of entries, links not followed (du's count)."""
    total, entries_seen, todo = 0, 0, [str(f) for f in folders]
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
                entries_seen += 1
                if entry.is_dir(follow_symlinks=False):
                    todo.append(entry.path)
    return total, entries_seen


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


def process_ended(pid: int) -> bool:
    """The process is gone or a zombie nobody has reaped yet: it runs no more."""
    if os.path.isdir("/proc/self"):
        return _is_zombie(pid)
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] == b"Z"
    except OSError:
        return True


class KernelWatchdog:
    """One thread per conversation's kernel, following its pid across restarts;
    ``reason`` says why it killed the kernel, if it did. ``on_exit(pid)`` is called on
    this thread, once per process, when the process it follows has ended."""

    def __init__(self, pid_of: Callable[[], int | None], memory_limit: int, max_processes: int = MAX_PROCESSES,
                 min_available: int | None = None, max_threads: int = MAX_THREADS, disk_path: Path | None = None,
                 min_free_disk: int = MIN_FREE_DISK, folders: Callable[[], tuple[Path, ...]] = tuple,
                 disk_budget: int = 0, max_entries: int = MAX_ENTRIES, min_free_inodes: int = MIN_FREE_INODES,
                 on_exit: Callable[[int], None] | None = None):
        self.pid_of = pid_of
        self.memory_limit = memory_limit
        self.max_processes = max_processes
        self.max_threads = max_threads
        self.min_available = min_available
        self.disk_path = disk_path
        self.min_free_disk = min_free_disk
        # The conversation's own folders (workspace, home, its kernel's temp folder) and what
        # they may hold in all.
        self.folders = folders
        self.disk_budget = disk_budget
        self.max_entries = max_entries
        self.min_free_inodes = min_free_inodes
        self.on_exit = on_exit
        self._exit_told: int | None = None  # the last pid whose end went to on_exit
        self.reason = ""
        self._pss_reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernel-watchdog-pss")
        self._pss_job: Future | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kernel-watchdog", daemon=True)

    def start(self) -> "KernelWatchdog":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._pss_reader.shutdown(wait=False)

    def take_reason(self) -> str:
        reason, self.reason = self.reason, ""
        return reason

    def _run(self) -> None:
        import psutil

        min_available = self.min_available
        if min_available is None:
            min_available = max(512 << 20, psutil.virtual_memory().total // 20)
        start = counted = self._disk()
        ticks = 0
        while not self._stop.wait(POLL_S):
            ticks += 1
            pid = self.pid_of()
            if pid is None:
                continue
            if process_ended(pid):
                self._tell_exit(pid)
                continue
            members = process_tree(pid)
            if len(members) > self.max_processes:
                self._kill(pid, f"it started more than {self.max_processes} processes (a fork bomb?)")
                continue
            threads = sum(m[2] for m in members)
            if threads > self.max_threads:
                self._kill(pid, f"it started more than {self.max_threads} threads")
                continue
            if ticks % 10 == 5 and os.path.isdir("/proc/self"):  # once a second, between the disk's looks
                held = buffers_held([m[0] for m in members])
                if held > MAX_BUFFERS:
                    self._kill(pid, f"it held {held:,} sockets and pipes open at once, over the {MAX_BUFFERS:,} "
                                    "limit (each can hold memory no process shows)")
                    continue
            if ticks % 10 == 0 and start is not None:  # once a second: statvfs is cheap, not free
                now = self._disk()
                if now is None:
                    continue
                free, inodes = now
                # Only a disk the code is filling: one that was already short is the user's business.
                if free < self.min_free_disk and start[0] - free > DISK_FILLING:
                    self._kill(pid, f"the disk was nearly full ({free >> 20} MB left); files the code wrote "
                                    "are still in the conversation's folder")
                    start = self._disk()
                    continue
                if inodes < self.min_free_inodes and start[1] - inodes > INODES_FILLING:
                    self._kill(pid, f"the disk was running out of room for new files ({inodes:,} left)")
                    start = self._disk()
                    continue
                recount_entries = min(INODES_RECOUNT, self.max_entries // 4)
                if self.disk_budget and (counted[0] - free > DISK_RECOUNT or counted[1] - inodes > recount_entries):
                    # Counting is dear with many files, so only once the disk has lost enough.
                    counted = now
                    size, entries = folder_usage(*self.folders())
                    over = [f"{size / (1 << 30):.1f} GB, over its {self.disk_budget / (1 << 30):.3g} GB limit"
                            if size > self.disk_budget else "",
                            f"{entries:,} files, over its {self.max_entries:,} limit" if entries > self.max_entries
                            else ""]
                    if any(over):
                        self._kill(pid, f"this conversation's files take {' and '.join(o for o in over if o)}; "
                                        "delete some to go on")
                        continue
            pairs = [(m[0], m[1]) for m in members]
            rss = used = sum(m[1] for m in members)
            if rss > self.memory_limit and len(members) > 1 and os.path.isdir("/proc/self"):
                # Forked children's shared pages count twice in RSS; PSS splits them. For a
                # large tree PSS is read on a thread of its own (a forking tree can make it
                # take seconds), so the process and thread rules keep their pace meanwhile.
                if len(members) <= PSS_MAX_MEMBERS:
                    used = proportional(pairs, stop_above=self.memory_limit)
                else:
                    used = self._large_tree_pss(pid, pairs)
            if used is not None and used > self.memory_limit:
                self._kill(pid, f"it used {used / (1 << 30):.1f} GB of memory, over the "
                                f"{self.memory_limit / (1 << 30):.1f} GB limit")
            elif rss > 256 << 20 and psutil.virtual_memory().available < min_available:
                self._kill(pid, f"the computer was running out of memory ({rss / (1 << 30):.1f} GB used by the code)")

    def _tell_exit(self, pid: int) -> None:
        if self.on_exit is None or pid == self._exit_told:
            return
        self._exit_told = pid
        try:
            self.on_exit(pid)
        except Exception:  # noqa: BLE001 - the watchdog must keep watching whatever the listener does
            _log.exception("the kernel-exit callback failed")

    def _large_tree_pss(self, pid: int, pairs: list[tuple[int, int]]) -> int | None:
        """The last finished PSS reading of this kernel's tree (None while there is none),
        and a new reading started when none is under way."""
        job = self._pss_job
        if job is not None and not job.done():
            return None
        self._pss_job = self._pss_reader.submit(lambda: (pid, proportional(pairs, stop_above=self.memory_limit)))
        if job is None:
            return None
        read_for, value = job.result()
        return value if read_for == pid else None

    def _disk(self) -> tuple[int, int] | None:
        """Free bytes and free file entries (inodes) on the workspace's disk."""
        if not self.disk_path:
            return None
        try:
            if hasattr(os, "statvfs"):
                info = os.statvfs(self.disk_path)
                return info.f_bavail * info.f_frsize, info.f_favail if info.f_files else 1 << 62
            return shutil.disk_usage(self.disk_path).free, 1 << 62
        except OSError:
            return None

    def _kill(self, pid: int, reason: str) -> None:
        self.reason = f"stopped by the app: {reason}"
        kill_process_tree(pid)
