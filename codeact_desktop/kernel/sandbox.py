"""What a conversation's kernel may touch, and what was actually applied.

``kernel_policy`` says what ``restricted_start.py`` applies inside the kernel's process before
ipykernel starts, and ``launcher_argv`` puts it on the kernel's command line (inside
bubblewrap's namespaces on Linux, ``bubblewrap.py``), so it never passes through a file
the kernel could edit. The launcher's report comes back on a pipe only the app reads;
``SandboxReport`` holds it, together with what the app saw from outside (the kernel's
namespaces against its own), for the window, ``doctor`` and the approval rule: no layer
applied means every action needs the user's approval.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..no_follow import remove_tree
from .bubblewrap import bwrap_argv, bwrap_path
from .venv import KernelVenv, base_interpreter, base_layer_paths

LAUNCHER = Path(__file__).with_name("restricted_start.py")  # beside this module, also in a packaged app
GB = 1 << 30
# Read and execute: the OS's programs and libraries. /etc is read-only configuration
# (locales, certificates, fonts); the user's home is not on any list.
_SYSTEM_READ_EXEC = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_READ = ("/etc", "/proc", "/sys", "/dev")
_DEVICES_WRITABLE = ("/dev/null", "/dev/zero", "/dev/full", "/dev/shm", "/dev/ptmx", "/dev/pts")  # pts: `!cmd`
MAX_FILE_BYTES = 2 * GB  # one file the code writes; a runaway write stops here, not at a full disk
REPORT_TIMEOUT_S = 30.0


@dataclass
class KernelLimits:
    """What the kernel may use: memory, file size, processes, disk; applied at its start and watched."""

    address_space: int
    file_size: int = MAX_FILE_BYTES
    processes: int = 256  # on top of what the user already runs
    # Open files, sockets and pipes at once, half most desktops' default: each socket pair
    # can hold 400 KB of kernel memory that no process's RSS shows (6,908 pairs held 3 GB),
    # and the user's descriptors in flight over Unix sockets may pass a process's own limit
    # only by one message's 253: past the 1,024 of a desktop program, its fd passing
    # (Wayland, D-Bus, PipeWire) fails with ETOOMANYREFS.
    open_files: int = 512
    # Signals queued at once (POSIX timers take one each when made), counted for the user
    # across namespaces: 96,554 timers left none for the user's other programs.
    pending_signals: int = 1024
    memory: int = 0  # resident memory of the kernel and its children, for the watchdog
    min_free_disk: int = 1 * GB  # the watchdog stops code that takes the disk below this
    disk: int = 20 * GB  # what one conversation's folders (workspace, home, temp) may hold in all
    entries: int = 1_000_000  # ... and how many files and folders

    @classmethod
    def for_this_machine(cls) -> "KernelLimits":
        import psutil

        total = psutil.virtual_memory().total
        # Half the RAM for the kernel's address space (the model and the desktop need the
        # rest); never below 4 GB, which numpy, pandas and their threads reserve easily.
        return cls(address_space=max(4 * GB, total // 2), memory=int(total * 0.6))


@dataclass(frozen=True)
class RuntimeDir:
    """A kernel's private folder: the connection file (read-only to the kernel), its
    sockets and its temp folder. Short, for Unix socket names (~100 bytes at most).
    ``tmp_in``: where the temp folder goes instead (the kernel's home, on the disk whose
    use the watchdog counts, not a /tmp that may be memory)."""

    root: Path
    tmp_in: Path | None = None

    @property
    def connection_file(self) -> Path:
        return self.root / "kernel.json"

    @property
    def sockets(self) -> Path:
        return self.root / "sock"

    @property
    def relay(self) -> Path:
        """Where the app's sockets meet its relay to the kernel's (channel_relay.py): not
        in the kernel's sandbox."""
        return self.root / "relay"

    @property
    def tmp(self) -> Path:
        return self.tmp_in / ".tmp" if self.tmp_in is not None else self.root / "tmp"

    @property
    def shm(self) -> Path:
        """What the kernel sees as ``/dev/shm`` (bubblewrap): inside its temp folder."""
        return self.tmp / ".shm"

    @property
    def start_folder(self) -> Path:
        """Empty and the app's: the kernel's working folder while ipykernel starts."""
        return self.root / "start"

    def make(self) -> "RuntimeDir":
        if self.tmp_in is not None:  # a fresh temp folder per start
            for left in self.tmp_in.glob(".tmp-left-*"):
                remove_tree(left)
            if not remove_tree(self.tmp):
                # Something the last kernel left could not be removed: set aside, never a reason
                # for this start to fail (the watchdog still counts it against the disk budget).
                os.rename(self.tmp, self.tmp.with_name(f".tmp-left-{secrets.token_hex(4)}"))
        for folder in (self.sockets, self.relay, self.tmp):
            folder.mkdir(mode=0o700, parents=True, exist_ok=False if folder == self.tmp else True)
        self.shm.mkdir(mode=0o700)
        self.start_folder.mkdir(mode=0o555, exist_ok=True)
        return self


def kernel_policy(venv: KernelVenv, workspace: Path, runtime: RuntimeDir, writable: list[Path],
                  network: bool, limits: KernelLimits) -> dict:
    """What the launcher applies. Only the read-only layers go on ``sys.path`` at start; the
    conversation's own packages (writable) are added once the kernel is up
    (``ConversationKernel._enter_workspace``)."""
    layers = [str(p) for p in base_layer_paths()]
    python_read = [Path(sys.base_prefix), base_interpreter().parent.parent, *layers]
    return {
        "read_exec": [*_SYSTEM_READ_EXEC, *_unique([*python_read, venv.root])],
        "read": [*_SYSTEM_READ, str(runtime.connection_file), str(runtime.start_folder)]
        + (["/run/systemd/resolve"] if network else []),
        "write": _unique(_outermost([workspace, runtime.tmp, *writable])) + list(_DEVICES_WRITABLE),
        "network": network,
        "tmp": str(runtime.tmp),
        "shm": str(runtime.shm),
        "sockets": str(runtime.sockets),  # its own sockets only: see restricted_start.SOCKETS_ONLY
        "site_dirs": layers,
        "start_folder": str(runtime.start_folder),
        "executable": str(venv.python),
        "in_namespaces": sys.platform == "linux" and bwrap_path() is not None,
        "limits": {"address_space": limits.address_space, "file_size": limits.file_size, "core": 0,
                   "open_files": limits.open_files, "pending_signals": limits.pending_signals,
                   "processes": _user_process_count() + limits.processes,
                   "job_processes": limits.processes},  # Windows: counted inside the kernel's job only
    }


def launcher_argv(policy: dict, runtime: RuntimeDir, workspace: Path, report_fd: int) -> list[str]:
    """The restricted kernel's command: the base interpreter in isolated mode (nothing the
    kernel can write is read before the launcher has applied the policy), inside
    bubblewrap where there is one."""
    bwrap = bwrap_path() if policy["in_namespaces"] else None
    argv = [str(base_interpreter()), "-I", "-S", str(LAUNCHER), json.dumps(policy), str(report_fd),
            "-f", "{connection_file}"]
    if bwrap:
        return [*bwrap_argv(bwrap, policy, [str(LAUNCHER)], policy["start_folder"]), *argv]
    if sys.platform == "darwin" and shutil.which("sandbox-exec"):
        # env marks the kernel as inside the profile, for the launcher's report
        return ["sandbox-exec", "-p", macos_profile(policy), "/usr/bin/env", "CODEACT_SANDBOX_EXEC=1", *argv]
    return argv


def unrestricted_argv(policy: dict) -> list[str]:
    """The fallback kernel (no layer could be applied): the same isolated start, the
    launcher applying nothing and reporting nothing."""
    return [str(base_interpreter()), "-I", "-S", str(LAUNCHER), json.dumps(policy), "-1", "-f", "{connection_file}"]


def read_report(fd: int, alive, timeout: float = REPORT_TIMEOUT_S) -> dict:
    """The launcher's one line, written before any of the kernel's code ran. Raises
    RuntimeError when the kernel dies or stays silent first."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the restriction launcher did not report within {timeout:g} s")
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError("the restricted kernel exited before it reported")
            data += chunk
        elif not alive():
            raise RuntimeError("the restricted kernel exited before it reported")
    return json.loads(data.split(b"\n", 1)[0])


# The system services (Mach names) Python and its scientific stack look up; not the
# ones that start programs (LaunchServices behind `open`), read the pasteboard or the
# screen, or reach other apps: the macOS counterparts of the desktop's D-Bus.
_MACOS_SERVICES = ("com.apple.system.opendirectoryd.libinfo", "com.apple.system.notification_center",
                   "com.apple.system.logger", "com.apple.logd", "com.apple.diagnosticd",
                   "com.apple.cfprefsd.daemon", "com.apple.cfprefsd.agent")
_MACOS_NETWORK_SERVICES = ("com.apple.SystemConfiguration.configd", "com.apple.SystemConfiguration.DNSConfiguration",
                           "com.apple.mDNSResponder", "com.apple.dnssd.service", "com.apple.trustd",
                           "com.apple.trustd.agent", "com.apple.nsurlsessiond")


def macos_profile(policy: dict) -> str:
    """sandbox-exec's language: deny by default, then what the policy allows. Never run
    on a Mac here; a profile the OS rejects makes the kernel start unrestricted and every
    action wait for approval."""
    def subpaths(paths):  # JSON's string escapes are the profile language's too
        return " ".join(f"(subpath {json.dumps(str(Path(p).resolve()), ensure_ascii=False)})" for p in paths)

    def services(names):
        return " ".join(f'(global-name "{name}")' for name in names)

    rules = ["(version 1)", "(deny default)", "(allow process-fork)", "(allow signal (target same-sandbox))",
             "(allow sysctl-read)", "(allow ipc-posix-shm) (allow ipc-posix-sem)",
             f"(allow mach-lookup {services(_MACOS_SERVICES)})",
             "(allow file-read-metadata)",  # stat() on the way to allowed paths; not their contents
             f"(allow process-exec {subpaths(policy['read_exec'])})",
             f"(allow file-read* {subpaths(policy['read_exec'] + policy['read'] + policy['write'])}"
             ' (literal "/") (subpath "/private/etc") (subpath "/System") (subpath "/Library"))',
             f"(allow file-write* {subpaths(policy['write'] + [policy['sockets']])})",
             # Unix sockets: its own channel to the app only, not the desktop's or other kernels'
             f"(allow network-bind network-outbound {subpaths([policy['sockets']])})"]
    if policy["network"]:
        # IP only: with the network on, Unix sockets stay as above
        rules += ["(allow system-socket)", '(allow network-outbound (remote ip "*:*"))',
                  '(allow network-bind network-inbound (local ip "*:*"))',
                  f"(allow mach-lookup {services(_MACOS_NETWORK_SERVICES)})"]
    return "\n".join(rules)


def _size(n: int) -> str:
    return f"{n / GB:.3g} GB" if n >= GB else f"{n >> 20} MB"


def _outermost(paths) -> list[Path]:
    """Drops a path that lies inside another one of the list, before any link is resolved:
    a name inside a writable folder may be a link the kernel made (to the user's home),
    and resolving it would grant where it points."""
    absolute = [Path(os.path.abspath(p)) for p in paths]
    return [p for p in absolute if not any(other != p and other in p.parents for other in absolute)]


def _unique(paths) -> list[str]:
    return list(dict.fromkeys(str(Path(p).resolve()) for p in paths))


def _user_process_count() -> int:
    """The user's processes now (RLIMIT_NPROC counts them all, not the kernel's alone)."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    if sys.platform == "linux":
        # /proc/<pid> belongs to the process's user: one stat each, where psutil reads three
        # files per process (20 ms with 66 processes, each read waiting for the GIL again
        # while the window's build holds it).
        try:
            with os.scandir("/proc") as entries:
                return sum(1 for entry in entries if entry.name.isdigit() and _owner(entry) == uid)
        except OSError:
            pass
    import psutil

    try:
        return sum(1 for p in psutil.process_iter(["uids"])
                   if uid is None or (p.info["uids"] and p.info["uids"].real == uid))
    except psutil.Error:
        return 1024


def _owner(entry: os.DirEntry) -> int | None:
    try:
        return entry.stat(follow_symlinks=False).st_uid
    except OSError:  # the process ended meanwhile
        return None


_NAMESPACES = ("mnt", "pid", "net", "ipc", "user")


def observe_namespaces(pid: int) -> dict:
    """What the app sees of a kernel from outside, which the kernel cannot forge: which of
    the app's namespaces it does not share, and its no_new_privs and seccomp state."""
    seen: dict = {}
    for name in _NAMESPACES:
        try:
            seen[name] = os.readlink(f"/proc/{pid}/ns/{name}") != os.readlink(f"/proc/self/ns/{name}")
        except OSError:
            seen[name] = False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        seen["no_new_privs"] = fields.get("NoNewPrivs", "0").strip() == "1"
        if "Seccomp" in fields:
            seen["seccomp"] = int(fields["Seccomp"].strip())  # 2: a filter is loaded
        seen["capabilities"] = int(fields.get("CapEff", "0").strip(), 16)
    except (OSError, ValueError):
        pass
    return seen


@dataclass
class SandboxReport:
    """What the launcher applied (``raw``, its own report) and what the app saw from
    outside (``observed``), in words. ``missing`` names what is not isolated; anything
    missing means every action needs the user's approval."""

    raw: dict = field(default_factory=dict)
    observed: dict = field(default_factory=dict)

    @property
    def landlock(self) -> bool:
        return bool(self.raw.get("landlock", {}).get("applied"))

    @property
    def namespaces(self) -> bool:
        """bubblewrap's namespaces, as seen from outside: own files and processes."""
        return bool(self.observed.get("mnt") and self.observed.get("pid"))

    @property
    def layers(self) -> list[str]:
        found = []
        if self.namespaces:
            found.append("namespaces (bubblewrap): only its own files, processes and sockets are visible")
        landlock = self.raw.get("landlock", {})
        if landlock.get("applied"):
            tcp = "" if landlock["tcp"] == "left to the namespace" else f"; TCP {landlock['tcp']}"
            scoped = "; no signals or abstract sockets outside" if landlock.get("scoped") else ""
            found.append(f"Landlock ABI {landlock['abi']}: files outside the workspace are off limits{scoped}{tcp}")
        if self.raw.get("network_namespace", {}).get("applied"):
            found.append("private network namespace: no network at all")
        seccomp = self.raw.get("seccomp", {})
        if seccomp.get("applied"):
            found.append(f"seccomp: {seccomp['refused']} kernel calls no task needs are refused "
                         "(io_uring, eBPF, ptrace, keyrings, mounts)")
        if self.raw.get("sandbox_exec", {}).get("applied"):
            found.append("sandbox-exec profile")
        return found

    @property
    def missing(self) -> list[str]:
        """What model code could still reach: empty when every layer this app needs is there."""
        if not self.raw:
            return ["everything: the restriction launcher did not report"]
        if self.raw.get("sandbox_exec", {}).get("applied"):
            return []
        gaps = []
        if not (self.landlock or self.namespaces):
            gaps.append("your files")
        if self.namespaces and not self.landlock:
            # The app's client follows the kernel's socket paths; only Landlock keeps the
            # code from replacing them with links to the desktop's sockets.
            gaps.append("the app's connection to it (its socket folder)")
        network = self.raw.get("network_namespace", {})
        if not self.namespaces:
            gaps.append("the desktop's and other conversations' sockets and processes")
        elif not network.get("applied") and not self.raw.get("landlock", {}).get("scoped"):
            # Sharing the computer's network namespace shares its abstract Unix sockets (X11's
            # and some D-Bus buses'); only Landlock's scoping (ABI 6, Linux 6.12) shuts them.
            gaps.append("the desktop's abstract sockets (X11, D-Bus) while the network is on")
        tcp_blocked = self.raw.get("landlock", {}).get("tcp") == "blocked"
        if not network.get("applied") and network.get("why") != "the network is on for this conversation" \
                and not tcp_blocked:
            gaps.append("the network")
        return gaps

    def mismatches(self, asked_namespaces: bool, asked_network: bool) -> list[str]:
        """What was asked for and is not in force, seen from outside where possible."""
        wrong = []
        if asked_namespaces:
            wrong += [f"no {name} namespace" for name in ("mnt", "pid", "ipc", "user") if not self.observed.get(name)]
            if not asked_network and not self.observed.get("net"):
                wrong.append("no network namespace")
            if self.observed.get("capabilities"):
                wrong.append("capabilities left")
        if sys.platform == "linux" and self.raw.get("landlock", {}).get("applied") \
                and not self.observed.get("no_new_privs"):
            wrong.append("no_new_privs not set")
        if self.raw.get("seccomp", {}).get("applied") and self.observed.get("seccomp") not in (None, 2):
            wrong.append("no seccomp filter")
        return wrong

    @property
    def limits(self) -> str:
        limits = self.raw.get("limits", {})
        job = self.raw.get("job_object", {})
        if job.get("applied"):
            return f"a job object: memory {_size(job['memory'])}, at most {job['processes']} processes"
        if not limits.get("applied"):
            return "no resource limits"
        parts = []
        if isinstance(limits.get("address_space"), int):
            parts.append(f"memory {_size(limits['address_space'])}")
        if isinstance(limits.get("file_size"), int):
            parts.append(f"files up to {_size(limits['file_size'])}")
        if isinstance(limits.get("open_files"), int):
            parts.append(f"at most {limits['open_files']:,} open files")
        if "core" in limits:
            parts.append("no core dumps")
        if isinstance(limits.get("processes"), str):
            parts.append(f"processes: {limits['processes']}")
        return ", ".join(parts)

    def summary(self) -> str:
        if not self.raw:
            return "not restricted: the restriction launcher did not report"
        layers = self.layers
        text = "; ".join(layers) if layers else "no restriction layer could be applied"
        return f"{text}; {self.limits}"

    def why_not(self) -> str:
        """Why the code is not fully restricted (empty when it is)."""
        missing = self.missing
        if not missing:
            return ""
        reasons = [part.get("why", "") for key in ("start_failed", "namespaces", "landlock", "network_namespace",
                                                   "sandbox_exec")
                   if isinstance(part := self.raw.get(key), dict) and part.get("why")]
        if os.name == "nt":
            reasons.append("on Windows files and the network are not isolated; a job object limits only memory "
                           "and processes")
        return f"not isolated: {', '.join(missing)}" + (f" ({'; '.join(reasons)})" if reasons else "")
