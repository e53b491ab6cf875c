"""Crash safety: the headless CLI runs a multi-action request against a real HTTP model
server and is killed (SIGKILL, no warning): twice while it copies a 256 MB file into
the workspace, once while code runs, then at random moments: while the model streams, while code runs,
while outputs are written. After each kill the database passes ``PRAGMA
integrity_check``, every completed action is intact, no file is half-there under its
real name, the next start marks the interrupted turn, and a last run finishes normally.
The real window (offscreen, driven by tests/app_driver.py) is killed the same ways."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from codeact_desktop.store.history import HistoryStore
from codeact_desktop.engine import recover_after_stop

from .scripted_openai import ScriptedOpenAIServer

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and process groups are POSIX")

REPLIES = [
    "I'll write the data first.\n<execute>\nimport pandas as pd\n"
    "pd.DataFrame({'x': range(5)}).to_csv('data.csv', index=False)\nprint('wrote data.csv')\n",
    "Now a slow step.\n<execute>\nimport time\nfor i in range(6):\n    print('step', i, flush=True)\n    time.sleep(0.25)\n",
    "And a plot.\n<execute>\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3]); plt.show()\nprint('plotted')\n",
    "All done: data.csv is written and the plot is shown.",
]
KILLS = 10
MID_COPY_KILLS = 2  # the first runs attach a large file and are killed while it copies
BIG = 256 << 20


def _cli(home, url, prompt, *files):
    env = dict(os.environ, CODEACT_HOME=str(home))
    attach = [arg for f in files for arg in ("--file", str(f))]
    return subprocess.Popen(
        [sys.executable, "-m", "codeact_desktop.cli", "run", prompt, "--yes", "--base-url", url, "--timeout", "30",
         *attach], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _kill_mid_copy(proc, workspaces: Path) -> float:
    """Waits until the CLI is part-way through copying big.bin, then kills it."""
    started = time.monotonic()
    while True:
        partial = [p for p in workspaces.glob(f"*/.big.bin.partial-{proc.pid}-*") if p.stat().st_size > 0]
        if partial and partial[0].stat().st_size < BIG:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            return time.monotonic() - started
        assert proc.poll() is None and time.monotonic() - started < 60, "the copy was never seen under way"
        time.sleep(0.005)


def _kill_at_random(proc, moment: float) -> tuple[float, bool]:
    """Kills the app ``moment`` seconds after its start, unless it finished first."""
    time.sleep(moment)
    finished = proc.poll() is not None
    if finished:  # the run was quicker than the kill
        assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    return round(moment, 2), finished


def _kill_while_code_runs(proc, db: Path) -> float:
    """Waits until the slow step's action is running, then kills the CLI."""
    started = time.monotonic()
    while True:
        if db.exists():
            store = HistoryStore(db)
            running = store.query("SELECT count(*) AS n FROM actions WHERE status = 'running' AND code LIKE '%step%'")
            store.close()
            if running[0]["n"]:
                time.sleep(0.3)  # mid-way through its output
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
                return time.monotonic() - started
        assert proc.poll() is None and time.monotonic() - started < 60, "the slow step was never seen running"
        time.sleep(0.05)


def _check_workspaces(workspaces: Path):
    for ws in workspaces.iterdir():
        for path in ws.iterdir():
            assert ".partial-" not in path.name, f"a cut-off copy was left: {path}"
            if path.name == "big.bin":
                assert path.stat().st_size == BIG


def _check_history(db):
    store = HistoryStore(db)
    try:
        assert store.integrity_ok()  # PRAGMA integrity_check
        for action in store.query("SELECT * FROM actions"):
            assert action["status"] not in ("proposed", "running"), dict(action)
            if action["status"] == "ok":  # completed work is intact
                assert action["observation"].startswith("Execution Output:\n")
        for conv in store.list_conversations():
            kinds = [m["kind"] for m in store.open_conversation(conv["id"]).messages() if m["kind"] != "notice"]
            for before, after in zip(kinds, kinds[1:]):
                assert not (before == "assistant" and after == "assistant"), kinds
    finally:
        store.close()


def _recover_and_check(db, home):
    # What the next start does first: mark what the kill cut off, remove cut-off copies.
    store = HistoryStore(db)
    recover_after_stop(store)
    store.close()
    _check_history(db)
    _check_workspaces(home / "data" / "workspaces")


def test_killed_at_random_moments_loses_nothing_that_completed(tmp_path):
    server = ScriptedOpenAIServer(REPLIES)
    home, rng = tmp_path / "home", random.Random(20261122)
    db = home / "data" / "history.sqlite3"
    moments = []
    try:
        big = tmp_path / "big.bin"
        with open(big, "wb") as f:
            f.truncate(BIG)
        for i in range(KILLS):
            if i < MID_COPY_KILLS:
                proc = _cli(home, server.url, f"task {i}", big)
                moments.append((round(_kill_mid_copy(proc, home / "data" / "workspaces"), 2), "mid-copy"))
                _recover_and_check(db, home)
                continue
            if i == MID_COPY_KILLS:
                proc = _cli(home, server.url, f"task {i}")
                moments.append((round(_kill_while_code_runs(proc, db), 2), "code running"))
                _recover_and_check(db, home)
                continue
            moments.append(_kill_at_random(_cli(home, server.url, f"task {i}"), rng.uniform(0.5, 7.0)))
            _recover_and_check(db, home)
        last = _cli(home, server.url, "the last task")
        assert last.wait(120) == 0, last.stderr.read().decode()[-2000:]
    finally:
        server.close()
    store = HistoryStore(db)
    conversations = store.list_conversations()
    assert len(conversations) == KILLS + 1
    final = store.open_conversation([c for c in conversations if c["title"] == "the last task"][0]["id"])
    assert [a["status"] for a in final.actions()] == ["ok", "ok", "ok"]
    assert final.messages()[-1]["content"].startswith("All done")
    interrupted = store.query("SELECT count(*) AS n FROM actions WHERE status = 'interrupted'")[0]["n"]
    notices = store.query("SELECT count(*) AS n FROM messages WHERE kind = 'notice'")[0]["n"]
    store.close()
    print(f"kills at {moments}; {interrupted} actions marked interrupted; {notices} notices")
    time.sleep(2)  # ipykernel notices its parent is gone within a second and exits
    orphans = [p for p in psutil.process_iter(["cwd"]) if (p.info["cwd"] or "").startswith(str(home))]
    assert orphans == [], "kernels outlived the killed app"
    assert interrupted >= 1 and notices >= 1  # at least the kill while code ran


def _window(home, url, *driver_args):
    """The real window (offscreen), driven as a user would by tests/app_driver.py."""
    env = dict(os.environ, CODEACT_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    driver = Path(__file__).with_name("app_driver.py")
    return subprocess.Popen([sys.executable, str(driver), str(home / "calls.json"), *driver_args, "--",
                             "--base-url", url], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def test_the_window_killed_mid_copy_mid_code_and_at_random_loses_nothing(tmp_path):
    server = ScriptedOpenAIServer(REPLIES)
    home, rng = tmp_path / "home", random.Random(11_22)
    db = home / "data" / "history.sqlite3"
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(BIG)
    moments = []
    try:
        proc = _window(home, server.url, "--attach", str(big), "--send", "use the file")
        moments.append((round(_kill_mid_copy(proc, home / "data" / "workspaces"), 2), "mid-copy"))
        _recover_and_check(db, home)
        proc = _window(home, server.url, "--send", "go on")
        moments.append((round(_kill_while_code_runs(proc, db), 2), "code running"))
        _recover_and_check(db, home)
        for i in range(3):
            moments.append(_kill_at_random(_window(home, server.url, "--send", f"task {i}"), rng.uniform(1.0, 8.0)))
            _recover_and_check(db, home)
        last = _window(home, server.url, "--send", "the last task")
        assert last.wait(120) == 0, last.stderr.read().decode()[-2000:]
    finally:
        server.close()
    store = HistoryStore(db)
    try:
        conversation = store.open_conversation(store.list_conversations()[0]["id"])
        assert [a["status"] for a in conversation.actions()][-3:] == ["ok", "ok", "ok"]
        messages = [m for m in conversation.messages() if m["kind"] != "notice"]
        assert messages[-1]["content"].startswith("All done")
        assert store.query("SELECT count(*) AS n FROM actions WHERE status = 'interrupted'")[0]["n"] >= 1
    finally:
        store.close()
    print(f"window kills at {moments}")
    time.sleep(2)
    orphans = [p for p in psutil.process_iter(["cwd"]) if (p.info["cwd"] or "").startswith(str(home))]
    assert orphans == [], "kernels outlived the killed window"
