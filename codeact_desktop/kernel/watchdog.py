"""Stops a kernel before it hurts the computer: too much memory (before the laptop
swaps), too many processes or threads (a fork bomb, where the process limit does not
apply, as for root), kernel objects no RSS shows (sockets, pipes, epoll watches), a disk
about to fill, or a processor kept busy after the code's action ended. Watches everything the kernel started,
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
import stat
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

from ..no_follow import rights_back

POLL_S = 0.1
MAX_PROCESSES = 128
MAX_THREADS = 2048  # all threads of all processes: a thread bomb exhausts the OS's tables, not memory
# Sockets and pipes open in the whole tree at once, each counted once: each can hold a few
# hundred KB of the system's memory that no process's RSS shows, and the open-file limit
# is per process (16 children held 15,360 sockets and 2.9 GB)
MAX_BUFFERS = 512  # distinct sockets and pipes: 512 pipes of 64 KB are half the user's 64 MB of pipe pages
MAX_QUEUED = 256 << 20  # bytes in the TCP and UDP sockets of the kernel's own network namespace
# Pseudo-terminals (``!cmd`` takes one a run): the 3,072 that every sandbox's devpts shares
# were all taken by one kernel, and another conversation's ``!cmd`` failed.
MAX_PTYS = 64
# Files watched by epoll instances, across the tree. The user's watches (fs.epoll.max_user_watches,
# about 4% of low memory) are counted across every namespace: 500 epolls each watching the
# same 500 eventfds are 250,000 watches in one process under the open-file limit.
MAX_EPOLL_WATCHES = 16_384
# Code left running after its action (a thread or a process that spins) keeps a core busy
# while the conversation looks idle: more than this share of a core over this window, with
# no action running, and the kernel is stopped.
IDLE_CPU_WINDOW_S = 10.0
IDLE_CPU_SHARE = 0.5
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
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_BY_DESCRIPTOR = os.scandir in os.supports_fd and os.open in os.supports_dir_fd
_FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
MAX_WALK_DEPTH = 128  # folders nested deeper are a reason to stop the kernel, not counted


# Linux lists each thread's child processes (CONFIG_PROC_CHILDREN, on in the common
# distributions' kernels): the tree is read from its own entries alone.
_CHILDREN_FILES = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def process_tree(pid: int) -> list[tuple[int, int, int]]:
    """(pid, resident bytes, threads) of a process and all its descendants. Resident
    counts pages a forked child shares with its parent twice: see ``proportional``."""
    if not os.path.isdir("/proc/self"):
        return [(p, rss, 1) for p, rss in tree_members(pid)]
    if _CHILDREN_FILES:
        return _tree_by_children(pid)
    return _tree_by_scan(pid)


def _stat_fields(pid: int) -> list[bytes]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return stat[stat.rindex(b")") + 2:].split()  # state, ppid, pgrp, ...


def _resident_and_threads(fields: list[bytes]) -> tuple[int, int]:
    return int(fields[21]) * _PAGE, int(fields[17])  # rss in pages, num_threads


def _tree_by_children(pid: int) -> list[tuple[int, int, int]]:
    """Reads the tree's own entries only. The scan of every process's stat file took
    14.6 us a process here: with the 300 to 500 processes of a desktop session, 5 to 7 ms,
    ten times a second, for each open conversation's kernel, idle or not."""
    members: list[tuple[int, int, int]] = []
    todo, seen = [pid], set()
    while todo:
        member = todo.pop()
        if member in seen:
            continue
        seen.add(member)
        try:
            fields = _stat_fields(member)
            tasks = os.listdir(f"/proc/{member}/task")
            members.append((member, *_resident_and_threads(fields)))
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile
        for task in tasks:  # a thread's children are listed under that thread
            try:
                with open(f"/proc/{member}/task/{task}/children", "rb") as f:
                    todo += [int(child) for child in f.read().split()]
            except (OSError, ValueError):
                continue  # a thread that ended: its children went to another thread of the process
    return members


def _tree_by_scan(pid: int) -> list[tuple[int, int, int]]:
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = _stat_fields(int(name))
            child = int(name)
            children.setdefault(int(fields[1]), []).append(child)
            info[child] = _resident_and_threads(fields)
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


@dataclass
class OpenFiles:
    """What the processes' open files hold that neither their RSS nor a walk of the
    conversation's folders shows."""

    buffers: int = 0  # distinct sockets and pipes, however many processes hold each
    ptys: int = 0  # pseudo-terminals held, by either side
    epoll_watches: int = 0  # counted up to a little past the limit asked
    unnamed_bytes: int = 0  # disk taken by files removed while open, or never named (O_TMPFILE)


def open_files(pids: list[int], watches_enough: int = MAX_EPOLL_WATCHES) -> OpenFiles:
    buffers, unnamed, watches, masters, slaves = set(), {}, 0, 0, set()
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
                buffers.add(target)
            elif target in ("/dev/ptmx", "/dev/pts/ptmx"):
                masters += 1
            elif target.startswith("/dev/pts/"):  # a terminal held by its other side
                slaves.add(target.removesuffix(" (deleted)"))
            elif target == "anon_inode:[eventpoll]":
                if watches <= watches_enough:  # reading stops once the answer is known
                    watches += _epoll_watches(pid, name)
            elif target.endswith(" (deleted)"):
                try:
                    info = os.stat(f"/proc/{pid}/fd/{name}")
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode):
                    unnamed[(info.st_dev, info.st_ino)] = info.st_blocks * 512
    return OpenFiles(len(buffers), max(masters, len(slaves)), watches, sum(unnamed.values()))


def mapped_unseen(pids: list[int]) -> tuple[int, int]:
    """(shared anonymous memory, removed files) the processes map, in bytes: neither is in
    their RSS until touched, nor has a descriptor. Children that wrote 2.4 GB into a
    shared mapping and exited left it with the parent at 124 MB of RSS; a file mapped,
    closed and removed kept 750 MB of disk. Each object once, by its largest extent."""
    shared, removed = {}, {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps", "rb") as f:
                lines = [line for line in f.read().splitlines() if line.endswith(b" (deleted)")]
        except OSError:
            continue
        for line in lines:  # "start-end perms offset dev inode path (deleted)"
            fields = line.split(None, 5)
            if len(fields) < 6:
                continue
            start, end = (int(n, 16) for n in fields[0].split(b"-"))
            key, extent = (fields[3], fields[4]), int(fields[2], 16) + end - start
            into = shared if fields[5].startswith(b"/dev/zero") and fields[1].endswith(b"s") else removed
            into[key] = max(into.get(key, 0), extent)
    return sum(shared.values()), sum(removed.values())


def private_network(pids: list[int]) -> tuple[int, int]:
    """(sockets, bytes queued in TCP and UDP sockets) of the network namespaces the processes
    are in that are not the app's: with the network off the kernel's is its own, and it
    shows what no process's descriptors do (sockets sent away over a Unix socket and
    closed, TCP data left in closed connections: 1.6 GB in 440). (0, 0) when they share the
    app's namespace (network on): then the computer's sockets are there too."""
    try:
        ours = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return 0, 0
    seen, sockets, queued = {ours}, 0, 0
    for pid in pids:
        try:
            namespace = os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            continue
        if namespace in seen:
            continue
        seen.add(namespace)
        for table in ("unix", "tcp", "tcp6", "udp", "udp6"):
            try:
                with open(f"/proc/{pid}/net/{table}", "rb") as f:
                    lines = f.read().splitlines()[1:]
            except OSError:
                continue
            sockets += len(lines)
            if table != "unix":  # "sl local remote st tx_queue:rx_queue ...", in hex
                queued += sum(sum(int(n, 16) for n in line.split()[4].split(b":")) for line in lines
                              if len(line.split()) > 4)
    return sockets, queued


def _epoll_watches(pid: int, fd: str) -> int:
    """Files an epoll instance watches: a ``tfd:`` line each in its fdinfo."""
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as f:
            return sum(1 for line in f if line.startswith(b"tfd:"))
    except OSError:
        return 0


@dataclass
class Census:
    """What a kernel's tree holds that no RSS shows, read once a second."""

    files: OpenFiles
    network: tuple[int, int]  # private_network
    shared_anonymous: int
    removed: int  # bytes of removed files still mapped


def take_census(pids: list[int]) -> Census:
    shared, removed = mapped_unseen(pids)
    return Census(open_files(pids), private_network(pids), shared, removed)


class BackgroundReading:
    """A slow reading of a kernel's tree, one at a time on a thread of its own, so that the
    watchdog's 0.1 s looks never wait for it."""

    def __init__(self, thread_name: str):
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._job: Future | None = None

    def latest(self, pid: int, read: Callable[[], object]):
        """The last finished reading for kernel ``pid`` (None while there is none, or when
        it was of another kernel); a new one started when none is under way. A reading
        that raised raises here."""
        job = self._job
        if job is not None and not job.done():
            return None
        try:
            self._job = self._reader.submit(lambda: (pid, read()))
        except RuntimeError:  # stopped meanwhile: the watchdog's loop ends at the next wait
            return None
        if job is None:
            return None
        read_for, value = job.result()
        return value if read_for == pid else None

    def stop(self) -> None:
        self._reader.shutdown(wait=False)


def processor_seconds(pids: list[int]) -> dict[int, tuple[float, float]]:
    """Processor time (user and system) each process has used so far, its own and that of
    its children it has waited for (short-lived children end there, not in any look)."""
    used = {}
    for pid in pids:
        try:
            fields = _stat_fields(pid)
            used[pid] = ((int(fields[11]) + int(fields[12])) / _TICKS, (int(fields[13]) + int(fields[14])) / _TICKS)
        except (OSError, ValueError, IndexError):
            continue
    return used


def processor_used(before: dict, after: dict, seconds: float) -> float:
    """Processor time the tree used between two looks ``seconds`` apart. What a process
    gains from children it waited for counts at most ``seconds`` (one core's worth): a
    child may have run long before the first look (a whole action's work, reaped once
    the action ended, must not read as spinning on a laptop of many cores)."""
    cap = seconds
    used = 0.0
    for pid, (own, children) in after.items():
        was_own, was_children = before.get(pid, (0.0, children))  # one born since: its own time, all new
        used += max(0.0, own - was_own) + min(cap, max(0.0, children - was_children))
    return used


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


class FolderUsage(NamedTuple):
    """What a conversation's folders hold."""

    bytes: int  # on disk (du's count)
    entries: int  # files and folders
    too_deep: bool  # folders nested below MAX_WALK_DEPTH, not counted


def folder_usage(*folders: Path) -> FolderUsage:
    """Bytes on disk under the folders and the number of entries, links not followed. By
    folder descriptors where the OS has them: a path past 4,096 bytes (18 folders of 250
    characters) cannot be listed by name, and what it held went uncounted (2 GB over a
    200 MB budget). One descriptor per level, so the walk stops MAX_WALK_DEPTH deep."""
    usage = [0, 0, False]
    for folder in folders:
        if _BY_DESCRIPTOR:
            try:
                fd = _open_folder(folder)
            except OSError:
                continue
            try:
                _count_below(fd, 0, usage)
            finally:
                os.close(fd)
        else:
            _count_by_name(str(folder), usage)
    return FolderUsage(*usage)


def _count_below(fd: int, depth: int, usage: list) -> None:
    try:
        folders = _tally(os.scandir(fd), usage)
    except OSError:
        return
    if folders and depth >= MAX_WALK_DEPTH:
        usage[2] = True
        return
    for folder in folders:
        try:
            child = _open_folder(folder.name, fd)
        except OSError:
            continue
        try:
            _count_below(child, depth + 1, usage)
        finally:
            os.close(child)


def _open_folder(name, dir_fd: int | None = None) -> int:
    """A folder of the conversation's, opened to be listed. One the code made unreadable
    (mode 0o300: files go in, nobody lists them) gets its owner's rights back first: its
    600 MB were not counted."""
    try:
        return os.open(name, _FOLDER_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        rights_back(name, dir_fd)
        return os.open(name, _FOLDER_FLAGS, dir_fd=dir_fd)


def _count_by_name(top: str, usage: list) -> None:
    todo = [top]
    while todo:
        try:
            todo += [folder.path for folder in _tally(os.scandir(todo.pop()), usage)]
        except OSError:
            continue


def _tally(listing, usage: list) -> list[os.DirEntry]:
    """Adds a folder's entries to ``usage``; its folders, links not followed."""
    folders = []
    with listing:
        for entry in listing:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            usage[0] += getattr(info, "st_blocks", 0) * 512 or info.st_size
            usage[1] += 1
            if stat.S_ISDIR(info.st_mode):
                folders.append(entry)
    return folders


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
        fields = _stat_fields(pid)
    except OSError:
        return True
    return fields[:1] == [b"Z"]


class KernelWatchdog:
    """One thread per conversation's kernel, following its pid across restarts;
    ``reason`` says why it killed the kernel, if it did. ``on_exit(pid)`` is called on
    this thread, once per process, when the process it follows has ended."""

    def __init__(self, pid_of: Callable[[], int | None], memory_limit: int, max_processes: int = MAX_PROCESSES,
                 min_available: int | None = None, max_threads: int = MAX_THREADS, disk_path: Path | None = None,
                 min_free_disk: int = MIN_FREE_DISK, folders: Callable[[], tuple[Path, ...]] = tuple,
                 disk_budget: int = 0, max_entries: int = MAX_ENTRIES, min_free_inodes: int = MIN_FREE_INODES,
                 on_exit: Callable[[int], None] | None = None, busy: Callable[[], bool] = lambda: True):
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
        self.busy = busy  # whether an action (or the kernel's start) is running: the code may use the processor
        self._idle_since: float | None = None
        self._last_look: tuple[float, dict] | None = None  # (when, processor_seconds)
        self._processor: deque[tuple[float, float]] = deque()  # (when, processor seconds used since the look before)
        self._unnamed_bytes = 0
        self._shared_anonymous = 0  # shared anonymous memory the tree maps, read once a second
        self._followed: int | None = None  # the kernel's pid the figures above were read for
        self._exit_told: int | None = None  # the last pid whose end went to on_exit
        self.reason = ""
        self._pss_reading = BackgroundReading("kernel-watchdog-pss")
        self._census_reading = BackgroundReading("kernel-watchdog-census")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kernel-watchdog", daemon=True)

    def start(self) -> "KernelWatchdog":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._pss_reading.stop()
        self._census_reading.stop()

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
            if pid != self._followed:  # a new kernel: nothing read of the last one holds for it
                self._followed, self._shared_anonymous, self._unnamed_bytes = pid, 0, 0
                self._idle_since = self._last_look = None
                self._processor.clear()
            members = process_tree(pid)
            if len(members) > self.max_processes:
                self._kill(pid, f"it started more than {self.max_processes} processes (a fork bomb?)")
                continue
            threads = sum(m[2] for m in members)
            if threads > self.max_threads:
                self._kill(pid, f"it started more than {self.max_threads} threads")
                continue
            if ticks % 10 == 5 and os.path.isdir("/proc/self"):  # once a second, between the disk's looks
                census = self._census(pid, [m[0] for m in members])
                if census is not None:
                    self._shared_anonymous = census.shared_anonymous
                    self._unnamed_bytes = census.files.unnamed_bytes + census.removed
                    reason = self._census_reason(census)
                    if reason:
                        self._kill(pid, reason)
                        continue
            if ticks % 10 == 7 and os.path.isdir("/proc/self"):
                spinning = self._busy_while_idle([m[0] for m in members])
                if spinning:
                    self._kill(pid, f"code left running after its action kept {spinning:.0%} of a processor busy "
                                    f"for {IDLE_CPU_WINDOW_S:g} s")
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
                    size, entries, too_deep = folder_usage(*self.folders())
                    size += self._unnamed_bytes  # files it holds open with no name: no walk finds them
                    if size > self.disk_budget or entries > self.max_entries:
                        self._kill(pid, self._over_budget(size, entries))
                        continue
                    if too_deep:
                        self._kill(pid, f"this conversation's folders nest more than {MAX_WALK_DEPTH} deep, "
                                        "too deep to count what they hold")
                        continue
            pairs = [(m[0], m[1]) for m in members]
            # What a shared anonymous mapping holds is memory whoever touched it: counted
            # whole, on top (pages also resident somewhere count twice: an over-count).
            rss = used = sum(m[1] for m in members) + self._shared_anonymous
            if rss > self.memory_limit and len(members) > 1 and os.path.isdir("/proc/self"):
                # Forked children's shared pages count twice in RSS; PSS splits them. For a
                # large tree PSS is read on a thread of its own (a forking tree can make it
                # take seconds), so the process and thread rules keep their pace meanwhile.
                if len(members) <= PSS_MAX_MEMBERS:
                    used = proportional(pairs, stop_above=self.memory_limit) + self._shared_anonymous
                else:
                    used = self._large_tree_pss(pid, pairs)
                    used = None if used is None else used + self._shared_anonymous
            if used is not None and used > self.memory_limit:
                self._kill(pid, f"it used {used / (1 << 30):.1f} GB of memory, over the "
                                f"{self.memory_limit / (1 << 30):.1f} GB limit")
            elif rss > 256 << 20 and psutil.virtual_memory().available < min_available:
                self._kill(pid, f"the computer was running out of memory ({rss / (1 << 30):.1f} GB used by the code)")

    def _census(self, pid: int, pids: list[int]) -> Census | None:
        """The last finished census of this kernel's tree, a new one started: on a thread
        of its own, because 125 processes with 440 epolls each made one take 0.6 to 1.9 s,
        and the memory and process rules are to keep their 0.1 s pace meanwhile."""
        try:
            return self._census_reading.latest(pid, lambda: take_census(pids))
        except Exception:  # noqa: BLE001 - a process that went mid-read: the next census reads again
            _log.debug("a census of the kernel's tree failed", exc_info=True)
            return None

    def _census_reason(self, census: Census) -> str:
        """Why the census stops the kernel ("" when it does not)."""
        held, (sockets, queued) = census.files, census.network
        if held.buffers > MAX_BUFFERS:
            return (f"it held {held.buffers:,} sockets and pipes open at once, over the {MAX_BUFFERS:,} limit "
                    "(each can hold memory no process shows)")
        if sockets > MAX_BUFFERS or queued > MAX_QUEUED:
            return (f"its network held {sockets:,} sockets and {queued >> 20:,} MB queued in them, over the "
                    f"{MAX_BUFFERS:,} and {MAX_QUEUED >> 20} MB limits")
        if held.ptys > MAX_PTYS:
            return (f"it held {held.ptys:,} terminals open at once, over the {MAX_PTYS} limit "
                    "(all conversations share them)")
        if held.epoll_watches > MAX_EPOLL_WATCHES:
            return f"it watched more than {MAX_EPOLL_WATCHES:,} files with epoll, a limit every program of yours shares"
        if self.disk_budget and self._unnamed_bytes > self.disk_budget:
            return self._over_budget(self._unnamed_bytes, 0)
        return ""

    def _over_budget(self, size: int, entries: int) -> str:
        over = [f"{size / (1 << 30):.1f} GB, over its {self.disk_budget / (1 << 30):.3g} GB limit"
                if size > self.disk_budget else "",
                f"{entries:,} files, over its {self.max_entries:,} limit" if entries > self.max_entries else ""]
        return f"this conversation's files take {' and '.join(o for o in over if o)}; delete some to go on"

    def _busy_while_idle(self, pids: list[int]) -> float:
        """The share of a processor the tree used over the last IDLE_CPU_WINDOW_S with no
        action running, once that is over IDLE_CPU_SHARE (else 0)."""
        now = time.monotonic()
        if self.busy():
            self._idle_since = self._last_look = None
            self._processor.clear()
            return 0.0
        if self._idle_since is None:
            self._idle_since = now
        sample = processor_seconds(pids)
        if self._last_look is not None:
            then, before = self._last_look
            self._processor.append((now, processor_used(before, sample, now - then)))
        self._last_look = (now, sample)
        while self._processor and now - self._processor[0][0] > IDLE_CPU_WINDOW_S:
            self._processor.popleft()
        if now - self._idle_since < IDLE_CPU_WINDOW_S or not self._processor:
            return 0.0
        share = sum(used for _, used in self._processor) / IDLE_CPU_WINDOW_S
        return share if share > IDLE_CPU_SHARE else 0.0

    def _tell_exit(self, pid: int) -> None:
        if self.on_exit is None or pid == self._exit_told:
            return
        self._exit_told = pid
        try:
            self.on_exit(pid)
        except Exception:  # noqa: BLE001 - the watchdog must keep watching whatever the listener does
            _log.exception("the kernel-exit callback failed")

    def _large_tree_pss(self, pid: int, pairs: list[tuple[int, int]]) -> int | None:
        """The last finished PSS reading of this kernel's tree, a new one started."""
        return self._pss_reading.latest(pid, lambda: proportional(pairs, stop_above=self.memory_limit))

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
