"""Crash safety: the headless CLI runs a multi-action request against a real HTTP model
server and is killed (SIGKILL, no warning) at random moments: while the model streams,
while code runs, while outputs are written. After each kill the database passes
``PRAGMA integrity_check``, every completed action is intact, the next start marks the
interrupted turn, and a last run finishes normally."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import psutil
import pytest

from codeact_desktop.store.history import HistoryStore
from codeact_desktop.store.recovery import recover_interrupted

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


def _cli(home, url, prompt):
    env = dict(os.environ, CODEACT_HOME=str(home))
    return subprocess.Popen(
        [sys.executable, "-m", "codeact_desktop.cli", "run", prompt, "--yes", "--base-url", url, "--timeout", "30"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


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


def test_killed_at_random_moments_loses_nothing_that_completed(tmp_path):
    server = ScriptedOpenAIServer(REPLIES)
    home, rng = tmp_path / "home", random.Random(20261122)
    db = home / "data" / "history.sqlite3"
    moments = []
    try:
        for i in range(KILLS):
            proc = _cli(home, server.url, f"task {i}")
            moment = rng.uniform(0.5, 7.0)
            time.sleep(moment)
            finished = proc.poll() is not None
            if finished:  # the run was quicker than the kill
                assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
            else:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            moments.append((round(moment, 2), finished))
            # What the next start does first: mark what the kill cut off.
            store = HistoryStore(db)
            recover_interrupted(store)
            store.close()
            _check_history(db)
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
    assert interrupted >= 1 and notices >= 1  # some kills landed while code ran
