"""The watchdog's arithmetic for processor time left running after an action: what a
process gains from children it waited for is capped per look, so a whole action's work,
reaped once the action ended, does not read as spinning (on a laptop of many cores the cap
was a look's length per core: 8 s of 10 from one reap)."""

from codeact_desktop.kernel.watchdog import IDLE_CPU_SHARE, IDLE_CPU_WINDOW_S, processor_used


def test_a_child_reaped_after_the_action_counts_one_looks_worth():
    assert processor_used({1: (5.0, 0.0)}, {1: (5.0, 60.0)}, 1.0) == 1.0
    assert 1.0 < IDLE_CPU_SHARE * IDLE_CPU_WINDOW_S  # one reap alone never stops the kernel


def test_own_time_counts_whole_and_a_process_born_between_looks_all_of_its_own():
    assert processor_used({1: (5.0, 0.0)}, {1: (5.5, 0.0), 2: (0.8, 0.0)}, 1.0) == 1.3
    assert processor_used({1: (5.0, 0.0), 3: (9.0, 0.0)}, {1: (5.0, 0.0)}, 1.0) == 0.0  # one that ended: nothing


def test_a_slow_census_does_not_slow_the_other_rules(monkeypatch):
    """125 processes holding 440 epolls each made one look at their open files take up to
    1.9 s (a second independent run, stop 33); on the watchdog's own thread that held the
    memory and process rules, which look every 0.1 s. The census has a thread of its own."""
    import subprocess
    import sys
    import time

    from codeact_desktop.kernel import watchdog

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    looks = []
    real_tree = watchdog.process_tree
    monkeypatch.setattr(watchdog, "take_census", lambda pids: time.sleep(1.5) or watchdog.Census(
        watchdog.OpenFiles(), (0, 0), 0, 0))
    monkeypatch.setattr(watchdog, "process_tree", lambda pid: looks.append(time.monotonic()) or real_tree(pid))
    dog = watchdog.KernelWatchdog(lambda: sleeper.pid, 1 << 62).start()
    try:
        time.sleep(3.5)
    finally:
        dog.stop()
        sleeper.kill()
        sleeper.wait()
    gaps = [b - a for a, b in zip(looks, looks[1:])]
    assert len(looks) >= 20 and max(gaps) < 0.5, (len(looks), max(gaps))


def test_stopping_while_a_look_is_under_way_ends_the_watchdog_quietly(monkeypatch):
    """stop() shuts the census's thread down; a look then asking it for a census raised
    "cannot schedule new futures after shutdown" and killed the watchdog's thread."""
    import subprocess
    import sys
    import threading
    import time

    from codeact_desktop.kernel import watchdog

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    failures = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    dog = watchdog.KernelWatchdog(lambda: sleeper.pid, 1 << 62)
    dog._census_reading.stop()  # as stop() leaves it, with the loop still going
    dog._pss_reading.stop()
    dog.start()
    try:
        time.sleep(1.5)
        assert dog._thread.is_alive() and failures == []
    finally:
        dog.stop()
        sleeper.kill()
        sleeper.wait()


def test_the_tree_is_read_from_its_own_entries_and_misses_none(monkeypatch):
    """Reading every process's stat file cost 14.6 us a process: on a desktop of 300 to 500
    processes, 5 to 7 ms ten times a second for each open kernel. Linux lists each thread's
    children; a child started from another thread is listed under that thread."""
    import os
    import subprocess
    import sys
    import time

    import pytest

    from codeact_desktop.kernel import watchdog

    if not watchdog._CHILDREN_FILES:
        pytest.skip("this kernel does not list children (CONFIG_PROC_CHILDREN)")
    code = ("import subprocess, sys, threading, time\n"
            "sleep = [sys.executable, '-c', 'import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, \"-c\", \"import time; time.sleep(60)\"]); time.sleep(60)']\n"
            "subprocess.Popen(sleep)\n"
            "threading.Thread(target=lambda: (subprocess.Popen(sleep), time.sleep(60)), daemon=True).start()\n"
            "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        while len(watchdog._tree_by_scan(parent.pid)) < 5:  # the parent, two children, two grandchildren
            assert time.monotonic() < deadline, watchdog._tree_by_scan(parent.pid)
            time.sleep(0.05)
        listed = []
        real_listdir = os.listdir
        monkeypatch.setattr(os, "listdir", lambda path=".": listed.append(str(path)) or real_listdir(path))
        tree = watchdog.process_tree(parent.pid)
        monkeypatch.undo()
        assert sorted(p for p, _, _ in tree) == sorted(p for p, _, _ in watchdog._tree_by_scan(parent.pid))
        assert len(tree) == 5 and all(rss > 0 and threads >= 1 for _, rss, threads in tree)
        assert "/proc" not in listed and all(path.endswith("/task") for path in listed)
    finally:
        watchdog.kill_process_tree(parent.pid)
        parent.wait(10)
