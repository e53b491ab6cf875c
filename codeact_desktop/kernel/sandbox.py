"""What a conversation's kernel may touch, and what was actually applied.

``kernel_policy`` writes the policy that ``launcher.py`` applies inside the kernel's
process before ipykernel starts; ``SandboxReport`` reads back what it applied, for
the window, ``doctor`` and the approval rule (no layer applied: every action needs the
user's approval).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .venv import KernelVenv, base_interpreter, base_layer_paths

LAUNCHER = Path(__file__).with_name("launcher.py")  # beside this module, also in a packaged app
GB = 1 << 30
# Read and execute: the OS's programs and libraries. /etc is read-only configuration
# (locales, certificates, fonts); the user's home is not on any list.
_SYSTEM_READ_EXEC = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_READ = ("/etc", "/proc", "/sys", "/dev")
_DEVICES_WRITABLE = ("/dev/null", "/dev/zero", "/dev/full", "/dev/shm", "/dev/ptmx", "/dev/pts")  # pts: `!cmd`
MAX_FILE_BYTES = 2 * GB  # one file the code writes; a runaway write stops here, not at a full disk


@dataclass
class KernelLimits:
    address_space: int
    file_size: int = MAX_FILE_BYTES
    processes: int = 256  # on top of what the user already runs
    memory: int = 0  # resident memory of the kernel and its children, for the watchdog

    @classmethod
    def for_this_machine(cls) -> "KernelLimits":
        import psutil

        total = psutil.virtual_memory().total
        # Half the RAM for the kernel's address space (the model and the desktop need the
        # rest); never below 4 GB, which numpy, pandas and their threads reserve easily.
        return cls(address_space=max(4 * GB, total // 2), memory=int(total * 0.6))


def kernel_policy(venv: KernelVenv, workspace: Path, runtime_dir: Path, writable: list[Path],
                  network: bool, limits: KernelLimits) -> Path:
    """Writes the launcher's policy into the kernel's runtime folder and returns its path."""
    python_read = [Path(sys.base_prefix), base_interpreter().parent.parent, *base_layer_paths()]
    policy = {
        "read_exec": [*_SYSTEM_READ_EXEC, *_unique([*python_read, venv.root])],  # venv: the pip shim
        "read": list(_SYSTEM_READ) + (["/run/systemd/resolve"] if network else []),
        "write": _unique([workspace, venv.root, runtime_dir, *writable]) + list(_DEVICES_WRITABLE),
        "network": network,
        "tmp": str(runtime_dir / "tmp"),
        "report": str(runtime_dir / "sandbox.json"),
        "limits": {"address_space": limits.address_space, "file_size": limits.file_size, "core": 0,
                   "processes": _user_process_count() + limits.processes,
                   "job_processes": limits.processes},  # Windows: counted inside the kernel's job only
    }
    path = runtime_dir / "sandbox-policy.json"
    path.write_text(json.dumps(policy, indent=1), encoding="utf-8")
    return path


def launcher_argv(venv: KernelVenv, policy: Path) -> list[str]:
    argv = [str(venv.python), str(LAUNCHER), str(policy), "-f", "{connection_file}"]
    if sys.platform == "darwin" and shutil.which("sandbox-exec"):
        # env marks the kernel as inside the profile, for the launcher's report
        return ["sandbox-exec", "-p", macos_profile(json.loads(policy.read_text())), "/usr/bin/env",
                "CODEACT_SANDBOX_EXEC=1", *argv]
    return argv


def macos_profile(policy: dict) -> str:
    """sandbox-exec's language: deny by default, then what the policy allows."""
    def subpaths(paths):  # JSON's string escapes are the profile language's too
        return " ".join(f"(subpath {json.dumps(str(Path(p).resolve()), ensure_ascii=False)})" for p in paths)

    rules = ["(version 1)", "(deny default)", "(allow process-fork)", "(allow signal (target same-sandbox))",
             "(allow sysctl-read)", "(allow mach-lookup)", "(allow ipc-posix-shm)",
             "(allow file-read-metadata)",  # stat() on the way to allowed paths; not their contents
             f"(allow process-exec {subpaths(policy['read_exec'])})",
             f"(allow file-read* {subpaths(policy['read_exec'] + policy['read'] + policy['write'])}"
             ' (literal "/") (subpath "/private/etc") (subpath "/System") (subpath "/Library"))',
             f"(allow file-write* {subpaths(policy['write'])})",
             '(allow network* (local unix))']
    if policy["network"]:
        rules.append("(allow network*)")
    return "\n".join(rules)


def _size(n: int) -> str:
    return f"{n / GB:.3g} GB" if n >= GB else f"{n >> 20} MB"


def _unique(paths) -> list[str]:
    return list(dict.fromkeys(str(Path(p).resolve()) for p in paths))


def _user_process_count() -> int:
    import psutil

    uid = os.getuid() if hasattr(os, "getuid") else None
    try:
        return sum(1 for p in psutil.process_iter(["uids"]) if uid is None or (p.info["uids"] and p.info["uids"].real == uid))
    except psutil.Error:
        return 1024


@dataclass
class SandboxReport:
    """What the launcher applied, in words; ``layers`` empty means nothing restricts the code."""

    raw: dict = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> "SandboxReport":
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return cls({})

    @property
    def landlock(self) -> bool:
        return bool(self.raw.get("landlock", {}).get("applied"))

    @property
    def layers(self) -> list[str]:
        found = []
        landlock = self.raw.get("landlock", {})
        if landlock.get("applied"):
            tcp = "" if landlock["tcp"] == "left to the namespace" else f"; TCP {landlock['tcp']}"
            found.append(f"Landlock ABI {landlock['abi']}: files outside the workspace are off limits{tcp}")
        if self.raw.get("network_namespace", {}).get("applied"):
            found.append("private network namespace: no network at all")
        if self.raw.get("sandbox_exec", {}).get("applied"):
            found.append("sandbox-exec profile")
        return found

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
        """Why no layer was applied (empty when one was)."""
        if self.layers:
            return ""
        reasons = [part.get("why", "") for key in ("start_failed", "landlock", "network_namespace", "sandbox_exec")
                   if isinstance(part := self.raw.get(key), dict) and part.get("why")]
        if os.name == "nt":
            reasons.append("on Windows files and the network are not isolated; a job object limits only memory "
                           "and processes")
        return "; ".join(reasons) or "the restriction launcher did not report"
