"""Restricts this process, then becomes the Jupyter kernel.

Run by the kernel's Python in isolated mode, so that nothing the kernel could ever
write (``.pth`` files, ``sitecustomize``, ``PYTHONPATH``, the user site) is read
before the restrictions hold; standard library only:

    python -I -S restricted_start.py POLICY_JSON REPORT_FD -f CONNECTION_FILE

The policy comes on the command line from the app, never from a file the kernel can
write. Linux: inside bubblewrap's namespaces (built by the app, ``bubblewrap.py``) or
on its own, it sets resource limits, a private network namespace when bubblewrap did
not make one and the network is off, and Landlock (files: read/execute the system and
Python paths, write only the workspace, the kernel's home and its private runtime
folders; no signals to and no abstract Unix sockets of anything outside, ABI 6; TCP
denied when nothing else blocks it), and a seccomp filter refusing the kernel calls no
notebook needs (io_uring, eBPF, ptrace, keyrings, mounts…). macOS restrictions come from ``sandbox-exec``
around this script. Windows: a job object limits memory and process count and ends
everything the kernel started with it; files and the network are not isolated there.
Then it adds the read-only package layers to ``sys.path``, writes one JSON line of what
it applied to REPORT_FD (a pipe only the app reads; -1 for the unrestricted fallback,
which applies nothing), closes it, imports the policy's ``warm_up`` modules and runs
``ipykernel_launcher`` in this same process, in an empty folder of the app's; the app
moves it to the workspace once it is up.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import runpy
import sys

# Landlock (linux/landlock.h)
_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446  # the same on x86_64 and aarch64
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
FS = {name: 1 << bit for bit, name in enumerate((
    "execute", "write_file", "read_file", "read_dir", "remove_dir", "remove_file", "make_char", "make_dir",
    "make_reg", "make_sock", "make_fifo", "make_block", "make_sym", "refer", "truncate", "ioctl_dev"))}
_FS_BITS_BY_ABI = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}  # how many of the rights above each ABI knows
_FILE_ONLY = FS["execute"] | FS["write_file"] | FS["read_file"] | FS["truncate"] | FS["ioctl_dev"]
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2  # ABI 6: nothing outside this domain

READ = FS["read_file"] | FS["read_dir"]
READ_EXEC = READ | FS["execute"]
_WRITE_DIR = (FS["write_file"] | FS["remove_dir"] | FS["remove_file"] | FS["make_dir"] | FS["make_reg"]
              | FS["make_sock"] | FS["make_fifo"] | FS["make_sym"] | FS["refer"] | FS["truncate"]
              | FS["ioctl_dev"])  # ioctl_dev: only device files (the pty behind `!cmd`) are affected
READ_WRITE = READ | _WRITE_DIR


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64", "arm64"):
        return 0
    abi = _libc().syscall(_SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(abi, 0)


# The kernel's socket folder: it may make its own sockets there and nothing else (no link
# in place of a socket, for the app's client to follow to another socket).
SOCKETS_ONLY = READ | FS["make_sock"]


def apply_landlock(read: list[str], read_exec: list[str], write: list[str], block_tcp: bool,
                   sockets: list[str] = ()) -> dict:
    abi = landlock_abi()
    if abi < 1:
        return {"applied": False, "why": "this Linux kernel has no Landlock (5.13 or newer with it enabled)"}
    libc = _libc()
    handled_fs = sum(1 << b for b in range(_FS_BITS_BY_ABI.get(abi, 16)))
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    attr = _RulesetAttr(handled_fs, _NET_BIND_TCP | _NET_CONNECT_TCP if block_tcp and abi >= 4 else 0, scoped)
    size = 8 if abi < 4 else 16 if abi < 6 else 24  # the struct grew with ABI 4 (network) and 6 (scopes)
    ruleset = libc.syscall(_SYS_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return {"applied": False, "why": f"landlock_create_ruleset failed: {os.strerror(ctypes.get_errno())}"}
    allowed: dict[str, int] = {}
    for paths, access in ((read, READ), (read_exec, READ_EXEC), (write, READ_WRITE), (sockets, SOCKETS_ONLY)):
        for path in paths:
            allowed[path] = allowed.get(path, 0) | access
    skipped = []
    try:
        for path, access in allowed.items():
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                skipped.append(path)  # not on this system (e.g. /lib64)
                continue
            try:
                if not os.path.isdir(path):
                    access &= _FILE_ONLY
                rule = _PathBeneath(access & handled_fs, fd)
                if libc.syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                                ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                    skipped.append(f"{path}: {os.strerror(ctypes.get_errno())}")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return {"applied": False, "why": f"no_new_privs failed: {os.strerror(ctypes.get_errno())}"}
        if libc.syscall(_SYS_RESTRICT, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            return {"applied": False, "why": f"landlock_restrict_self failed: {os.strerror(ctypes.get_errno())}"}
    finally:
        os.close(ruleset)
    tcp = ("blocked" if abi >= 4 else "not restricted (Landlock ABI < 4)") if block_tcp else "left to the namespace"
    return {"applied": True, "abi": abi, "tcp": tcp, "scoped": bool(scoped), "skipped": skipped}


# Kernel calls no notebook task needs and that attacks on the Linux kernel itself lean on
# (io_uring, eBPF, user faults, keyrings, perf, tracing, mounts, module loading), and
# the ways to hold memory outside any process (memfd, System V IPC): refused
# with EPERM by a seccomp filter (libseccomp, through ctypes). Calls of another
# architecture (32-bit syscalls on x86_64) kill the process, libseccomp's default.
SECCOMP_DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "perf_event_open", "bpf", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key", "request_key",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "mount", "umount2",
    "pivot_root", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr",
    "setns", "unshare", "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff", "reboot", "acct",
    "quotactl", "syslog", "uselib", "vhangup", "iopl", "ioperm", "lookup_dcookie", "nfsservctl",
    # memory that is in no process's RSS until mapped, so the watchdog would not see it;
    # System V semaphores and message queues hold kernel memory no process shows (32,000
    # sets of 32,000 semaphores, 32,000 queues of 1 MB) under the IPC namespace's defaults
    "memfd_create", "memfd_secret", "shmget", "semget", "msgget",
    # the user's inotify instances (128) and watches are counted across every namespace:
    # code holding them would leave none for the desktop, nor for the app's own watch;
    # so are Linux AIO's 65,536 events (8 contexts took them all)
    "inotify_init", "inotify_init1", "fanotify_init", "io_setup")
# fcntl(F_SETPIPE_SZ): a pipe grown to 1 MB takes the user's pipe pages (64 MB, counted
# across namespaces; past them every new pipe of the user's gets one page)
SECCOMP_DENIED_FCNTL = 1031
_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_CMP_EQ = 4


class _ScmpArgCmp(ctypes.Structure):
    """libseccomp's ``struct scmp_arg_cmp``: argument number, comparison, two values."""

    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


_SCMP_ACT_ERRNO_EPERM = 0x00050000 | 1


def apply_seccomp(denied: tuple[str, ...] = SECCOMP_DENIED) -> dict:
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        return {"applied": False, "why": "libseccomp is not installed"}
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.c_void_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        return {"applied": False, "why": "seccomp_init failed"}
    try:
        refused = 0
        for name in denied:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                continue  # not a call of this architecture
            if lib.seccomp_rule_add(ctx, _SCMP_ACT_ERRNO_EPERM, number, 0) == 0:
                refused += 1
        fcntl_number = lib.seccomp_syscall_resolve_name(b"fcntl")
        grow_pipe = _ScmpArgCmp(1, _SCMP_CMP_EQ, SECCOMP_DENIED_FCNTL, 0)  # its second argument, the command
        if fcntl_number >= 0 and lib.seccomp_rule_add_array(ctx, _SCMP_ACT_ERRNO_EPERM, fcntl_number, 1,
                                                              ctypes.byref(grow_pipe)) == 0:
            refused += 1
        code = lib.seccomp_load(ctx)
        if code != 0:
            return {"applied": False, "why": f"seccomp_load failed: {os.strerror(-code)}"}
        return {"applied": True, "refused": refused}
    finally:
        lib.seccomp_release(ctx)


def private_network() -> dict:
    """A new, empty network namespace (no interface but a down loopback): no TCP, UDP or DNS.
    Needs unprivileged user namespaces; the kernel's own channels are Unix sockets, unaffected."""
    if sys.platform != "linux":
        return {"applied": False, "why": "network namespaces are Linux only"}
    clone_newuser, clone_newnet = 0x10000000, 0x40000000
    uid, gid = os.getuid(), os.getgid()
    libc = _libc()
    if libc.unshare(clone_newuser | clone_newnet) != 0:
        return {"applied": False, "why": f"unshare failed: {os.strerror(ctypes.get_errno())}"}
    try:  # keep our own ids inside the namespace, so files and names look the same
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    except OSError:
        pass
    _loopback_up()  # the namespace's own loopback: ipykernel's subprocess-output pipe binds there
    return {"applied": True}


def _loopback_up() -> None:
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            flags = struct.unpack("16sh", fcntl.ioctl(s, siocgifflags, struct.pack("16sh", b"lo", 0)))[1]
            fcntl.ioctl(s, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))
    except OSError:
        pass


def apply_limits(limits: dict) -> dict:
    try:
        import resource
    except ImportError:
        return {"applied": False, "why": "no resource limits on this system"}
    applied = {}
    names = {"address_space": "RLIMIT_AS", "file_size": "RLIMIT_FSIZE", "processes": "RLIMIT_NPROC",
             "core": "RLIMIT_CORE", "open_files": "RLIMIT_NOFILE", "pending_signals": "RLIMIT_SIGPENDING"}
    for key, name in names.items():
        value = limits.get(key)
        which = getattr(resource, name, None)
        if value is None or which is None:
            continue
        try:
            hard = resource.getrlimit(which)[1]
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value))
            applied[key] = value
        except (ValueError, OSError) as exc:
            applied[key] = f"failed: {exc}"
    if "processes" in applied and os.getuid() == 0:
        applied["processes"] = "not enforced for root"
    return {"applied": bool(applied), **applied}


# Windows job objects (winnt.h): the kernel and its children share one memory and process budget.
_JOB_LIMIT_ACTIVE_PROCESS = 0x8
_JOB_LIMIT_JOB_MEMORY = 0x200
_JOB_LIMIT_DIE_ON_UNHANDLED_EXCEPTION = 0x400  # a crash ends the process, no error dialog waits
_JOB_LIMIT_KILL_ON_JOB_CLOSE = 0x2000  # the kernel's end (its handle closing) ends its children
_JOB_EXTENDED_LIMIT_INFORMATION = 9
_JOB = None  # the job's handle, open as long as the kernel runs


class _JobBasicLimits(ctypes.Structure):
    _fields_ = [("per_process_user_time_limit", ctypes.c_int64), ("per_job_user_time_limit", ctypes.c_int64),
                ("limit_flags", ctypes.c_uint32), ("minimum_working_set_size", ctypes.c_size_t),
                ("maximum_working_set_size", ctypes.c_size_t), ("active_process_limit", ctypes.c_uint32),
                ("affinity", ctypes.c_size_t), ("priority_class", ctypes.c_uint32),
                ("scheduling_class", ctypes.c_uint32)]


class _JobExtendedLimits(ctypes.Structure):
    _fields_ = [("basic", _JobBasicLimits), ("io_counters", ctypes.c_uint64 * 6),
                ("process_memory_limit", ctypes.c_size_t), ("job_memory_limit", ctypes.c_size_t),
                ("peak_process_memory_used", ctypes.c_size_t), ("peak_job_memory_used", ctypes.c_size_t)]


def _last_error() -> int:
    return ctypes.get_last_error() if hasattr(ctypes, "get_last_error") else 0  # Windows only


def apply_job_object(memory: int, processes: int, kernel32=None) -> dict:
    """Puts this process (and so all it starts) in a new job with a memory and a process limit."""
    global _JOB
    if kernel32 is None:
        if sys.platform != "win32":
            return {"applied": False, "why": "job objects are Windows only"}
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.CreateJobObjectW.restype = ctypes.c_void_p
        kernel32.GetCurrentProcess.restype = ctypes.c_void_p
        kernel32.SetInformationJobObject.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
        kernel32.AssignProcessToJobObject.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    job = kernel32.CreateJobObjectW(None, None)
    if not job:
        return {"applied": False, "why": f"CreateJobObject failed (error {_last_error()})"}
    info = _JobExtendedLimits()
    info.basic.limit_flags = (_JOB_LIMIT_JOB_MEMORY | _JOB_LIMIT_ACTIVE_PROCESS | _JOB_LIMIT_KILL_ON_JOB_CLOSE
                              | _JOB_LIMIT_DIE_ON_UNHANDLED_EXCEPTION)
    info.basic.active_process_limit = processes
    info.job_memory_limit = memory
    if not kernel32.SetInformationJobObject(job, _JOB_EXTENDED_LIMIT_INFORMATION, ctypes.byref(info),
                                            ctypes.sizeof(info)):
        return {"applied": False, "why": f"SetInformationJobObject failed (error {_last_error()})"}
    if not kernel32.AssignProcessToJobObject(job, kernel32.GetCurrentProcess()):
        return {"applied": False, "why": f"AssignProcessToJobObject failed (error {_last_error()})"}
    _JOB = job
    return {"applied": True, "memory": memory, "processes": processes}


OUTPUT_PIECE_CHARS = 1 << 20


def split_large_writes(limit: int = OUTPUT_PIECE_CHARS) -> bool:
    """One print of 100 MB would reach the app as one 100 MB message, and parsing it
    holds Python's lock long enough to freeze the window (0.4 s measured). Written in
    1 MB pieces, each sent on its own, every pause stays a few milliseconds."""
    try:
        from ipykernel.iostream import OutStream
    except ImportError:
        return False
    write = OutStream.write

    def write_in_pieces(self, string):
        if not isinstance(string, str) or len(string) <= limit:
            return write(self, string)
        for start in range(0, len(string), limit):
            write(self, string[start:start + limit])
            self.flush()  # public API: sends what is buffered, as its own message
        return len(string)

    OutStream.write = write_in_pieces
    return True


def add_package_folders(site_dirs: list[str], executable: str | None) -> None:
    """Only now, with the restrictions in force: the read-only package layers and their
    ``.pth`` files, and the working directory as ``python -m`` has it (an empty folder of
    the app's until the kernel is up). Nothing here is a folder the kernel can write.
    ``sys.executable`` becomes the kernel venv's Python, so processes the code starts see
    the same packages."""
    import site

    for folder in site_dirs:
        site.addsitedir(folder)
    sys.path.insert(0, "")
    site.setquit()  # what -S left out and people type: exit(), help()
    site.sethelper()
    if executable:
        sys.executable = sys._base_executable = executable


def warm_up(modules: list[str]) -> None:
    """The imports most actions need (numpy, pandas, matplotlib), done now, before ipykernel
    starts, with the restrictions in force: while the app connects, the kernel works."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # a layer without it: the code's own import says so later
            pass


def main(argv: list[str]) -> None:
    policy = json.loads(argv[1])
    report_fd = int(argv[2])
    report = {"pid": os.getpid(), "limits": apply_limits(policy.get("limits", {}))}
    if not policy.get("apply", True):
        pass  # the fallback kernel: no layer, and the app knows it
    elif sys.platform == "linux":
        network = policy.get("network", False)
        if network:
            report["network_namespace"] = {"applied": False, "why": "the network is on for this conversation"}
        elif policy.get("in_namespaces"):
            report["network_namespace"] = {"applied": True, "by": "bubblewrap"}
        else:
            report["network_namespace"] = private_network()
        # Without a namespace, Landlock blocks TCP itself (ipykernel then loses the pipe that
        # carries subprocesses' output); with one, the namespace has no way out anyway.
        block_tcp = not network and not report["network_namespace"]["applied"]
        report["landlock"] = apply_landlock(policy["read"], policy["read_exec"], policy["write"], block_tcp,
                                            [policy["sockets"]] if policy.get("sockets") else [])
        report["seccomp"] = apply_seccomp()  # last: the steps above need unshare and friends
    elif sys.platform == "win32":
        limits = policy.get("limits", {})
        report["job_object"] = apply_job_object(limits.get("address_space", 0), limits.get("job_processes", 256))
    elif sys.platform == "darwin":
        report["sandbox_exec"] = {"applied": bool(os.environ.get("CODEACT_SANDBOX_EXEC")),
                                  "why": "" if os.environ.get("CODEACT_SANDBOX_EXEC") else "sandbox-exec not found"}
    if policy.get("in_namespaces"):
        # Its parent there is the namespace's init (pid 1), which ipykernel would take for
        # an orphaning; bubblewrap ends the kernel with the app instead.
        os.environ.pop("JPY_PARENT_PID", None)
    tmp = policy.get("tmp")
    if tmp:
        os.makedirs(tmp, exist_ok=True)
        os.environ["TMPDIR"] = os.environ["TEMP"] = os.environ["TMP"] = tmp
    add_package_folders(policy.get("site_dirs", []), policy.get("executable"))
    report["output_pieces"] = split_large_writes()
    # The report leaves by a pipe the app holds, before any code of the kernel's runs.
    if report_fd >= 0:
        os.write(report_fd, (json.dumps(report) + "\n").encode())
        os.close(report_fd)
    warm_up(policy.get("warm_up", []))
    sys.argv = ["ipykernel_launcher", *argv[3:]]
    runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv)
