"""The history in SQLite: committed as things complete, intact after a SIGKILL."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from codeact_desktop.store.history import HistoryStore


def test_wal_mode_and_roundtrip(tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite3")
    assert store.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
    conv = store.create_conversation(tmp_path / "ws", title="t")
    conv.add_message("system", "system", "S")
    conv.add_message("user", "user", "hi é")
    conv.add_message("system", "notice", "not for the model")
    msgs, kinds = conv.model_messages()
    assert msgs == [{"role": "system", "content": "S"}, {"role": "user", "content": "hi é"}]
    assert kinds == ["system", "user"]
    assert store.list_conversations()[0]["title"] == "t"
    store.close()


def test_history_survives_kill_mid_action(tmp_path):
    db = tmp_path / "history.sqlite3"
    target = Path(__file__).resolve().parent.parent / "agent" / "_kill_target.py"
    proc = subprocess.Popen([sys.executable, str(target), str(db), str(tmp_path / "ws")],
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if db.exists():
                probe = HistoryStore(db)
                running = probe.query("SELECT count(*) AS n FROM actions WHERE status = 'running' AND code LIKE '%sleep%'")[0]["n"]
                probe.close()
                if running:
                    break
        else:
            raise AssertionError(f"the second action never started: {proc.stdout.read1(4000)!r}")
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)  # the app and its kernel, without warning
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    store = HistoryStore(db)
    assert store.integrity_ok()
    conv = store.open_conversation(store.list_conversations()[0]["id"])
    msgs, kinds = conv.model_messages()
    assert kinds == ["system", "user", "assistant", "observation", "assistant"]
    assert msgs[3]["content"] == "Execution Output:\nfirst\n"
    first, second = conv.actions()
    assert first["status"] == "ok" and conv.outputs(first["id"])[0]["text"] == "first\n"
    assert second["status"] == "running"  # what was in flight is visible as such
    store.close()


def test_recovery_marks_only_actions_whose_process_is_gone(tmp_path):
    from codeact_desktop.store.recovery import recover_interrupted

    store = HistoryStore(tmp_path / "history.sqlite3")
    dead, alive = (store.create_conversation(tmp_path / "ws") for _ in range(2))
    for conv in (dead, alive):
        conv.add_message("user", "user", "go")
        msg = conv.add_message("assistant", "assistant", "<execute>print(1)</execute>")
        conv.start_action(conv.add_action(msg, "print(1)"), "print(1)")
    store.execute("UPDATE actions SET owner = 999999999 WHERE conversation_id = ?", (dead.id,))
    assert recover_interrupted(store) == 1
    assert [a["status"] for a in dead.actions()] == ["interrupted"]
    assert [m["kind"] for m in dead.messages()][-2:] == ["observation", "notice"]
    assert "did not finish" in dead.model_messages()[0][-1]["content"]
    assert [a["status"] for a in alive.actions()] == ["running"]  # this process still owns it
    assert recover_interrupted(store) == 0
