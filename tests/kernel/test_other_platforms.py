"""The parts of the restriction that only Windows and macOS run, checked here as far as
Linux can (no Windows or Mac machine is available to the tests): the job object's
structure layout and calls, against a recording kernel32; the process-tree watchdog that
Windows uses instead of process groups, for real on this machine's processes; and the
text of the macOS sandbox profile."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import time

import psutil
import pytest

from codeact_desktop.kernel import restricted_start as launcher
from codeact_desktop.kernel.sandbox import SandboxReport
from codeact_desktop.kernel.watchdog import kill_tree, tree_members


@pytest.mark.skipif(ctypes.sizeof(ctypes.c_void_p) != 8, reason="the 64-bit layout")
def test_job_limits_have_windows_x64_layout():
    # JOBOBJECT_EXTENDED_LIMIT_INFORMATION is 144 bytes on x64; its basic part is 64.
    assert ctypes.sizeof(launcher._JobBasicLimits) == 64
    assert ctypes.sizeof(launcher._JobExtendedLimits) == 144
    assert launcher._JobBasicLimits.limit_flags.offset == 16
    assert launcher._JobBasicLimits.active_process_limit.offset == 40
    assert launcher._JobExtendedLimits.job_memory_limit.offset == 120


class RecordingKernel32:
    def __init__(self, fail: str = ""):
        self.calls, self.fail = [], fail

    def CreateJobObjectW(self, attributes, name):  # noqa: N802
        self.calls.append("CreateJobObjectW")
        return 0 if self.fail == "create" else 0x1234

    def SetInformationJobObject(self, job, kind, info, size):  # noqa: N802
        limits = ctypes.cast(info, ctypes.POINTER(launcher._JobExtendedLimits)).contents
        self.calls.append(("SetInformationJobObject", job, kind, size, limits.basic.limit_flags,
                           limits.basic.active_process_limit, limits.job_memory_limit))
        return 0 if self.fail == "set" else 1

    def GetCurrentProcess(self):  # noqa: N802
        return -1

    def AssignProcessToJobObject(self, job, process):  # noqa: N802
        self.calls.append(("AssignProcessToJobObject", job, process))
        return 1


def test_job_object_sets_memory_processes_and_kill_on_close(monkeypatch):
    monkeypatch.setattr(launcher, "_JOB", None)
    kernel32 = RecordingKernel32()
    report = launcher.apply_job_object(6 << 30, 256, kernel32=kernel32)
    assert report == {"applied": True, "memory": 6 << 30, "processes": 256}
    flags = 0x8 | 0x200 | 0x400 | 0x2000  # active processes, job memory, die on crash, kill on close
    assert kernel32.calls == ["CreateJobObjectW",
                              ("SetInformationJobObject", 0x1234, 9, ctypes.sizeof(launcher._JobExtendedLimits),
                               flags, 256, 6 << 30),
                              ("AssignProcessToJobObject", 0x1234, -1)]
    assert launcher._JOB == 0x1234  # kept open as long as the kernel runs
    assert SandboxReport({"job_object": report}).limits == "a job object: memory 6 GB, at most 256 processes"


@pytest.mark.parametrize("fail", ["create", "set"])
def test_a_job_object_that_fails_says_why(fail):
    report = launcher.apply_job_object(1 << 30, 8, kernel32=RecordingKernel32(fail))
    assert not report["applied"] and "failed" in report["why"]


def test_process_tree_is_watched_and_killed_whole():
    code = ("import subprocess, sys, time; "
            "[subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']) for _ in range(3)]; "
            "time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        while len(tree_members(parent.pid)) < 4:
            assert time.monotonic() < deadline, tree_members(parent.pid)
            time.sleep(0.05)
        members = [pid for pid, rss in tree_members(parent.pid)]
        assert members[0] == parent.pid and all(rss > 0 for _, rss in tree_members(parent.pid))
        kill_tree(parent.pid)
        parent.wait(10)
        time.sleep(0.2)
        assert [pid for pid in members[1:] if psutil.pid_exists(pid) and
                psutil.Process(pid).status() != psutil.STATUS_ZOMBIE] == []
    finally:
        parent.kill()


def test_macos_profile_denies_by_default_and_quotes_paths(tmp_path):
    from codeact_desktop.kernel.sandbox import macos_profile

    odd = tmp_path / 'work "space" \\ é'
    odd.mkdir()
    sockets = tmp_path / "sock"
    profile = macos_profile({"read_exec": ["/usr"], "read": ["/etc"], "write": [str(odd), str(sockets)],
                             "network": False, "sockets": str(sockets)})
    assert profile.splitlines()[:2] == ["(version 1)", "(deny default)"]
    # Unix sockets: its own channel only, not the desktop's or other kernels'
    assert f'(allow network-bind network-outbound (subpath "{sockets.resolve()}"))' in profile
    assert "(local unix)" not in profile
    assert profile.count("(") == profile.count(")")
    assert '(subpath "' + str(odd.resolve()).replace("\\", "\\\\").replace('"', '\\"') + '")' in profile
    assert "(allow network*)" not in profile and "(remote ip" not in profile
    # No service that starts programs or reads the desktop (LaunchServices, the pasteboard)
    assert "(allow mach-lookup)" not in profile and "launchservicesd" not in profile and "pasteboard" not in profile
    online = macos_profile({"read_exec": [], "read": [], "write": [], "network": True, "sockets": str(sockets)})
    assert '(allow network-outbound (remote ip "*:*"))' in online
    # the network on opens IP, not every Unix socket
    assert "(allow network*)" not in online and "(remote unix" not in online and "(local unix" not in online
    assert online.count("(") == online.count(")")


@pytest.mark.skipif(sys.platform != "linux", reason="the /proc count is Linux's")
def test_the_users_processes_are_counted_as_psutil_counts_them(monkeypatch):
    """Linux counts the owners of /proc's folders; other systems ask psutil. The process
    limit is the user's count plus the kernel's share, so both must agree."""
    from codeact_desktop.kernel import sandbox

    from_proc = sandbox._user_process_count()
    monkeypatch.setattr(sandbox.sys, "platform", "darwin")
    from_psutil = sandbox._user_process_count()
    assert from_proc > 1 and abs(from_proc - from_psutil) <= 3  # processes come and go meanwhile
