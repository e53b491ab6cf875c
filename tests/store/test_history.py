"""The history in SQLite: committed as things complete, intact after a SIGKILL; outputs
stored whole; histories of older versions still read."""

import base64
import json
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
                running = probe.query("SELECT count(*) AS n FROM actions"
                                      " WHERE status = 'running' AND code LIKE '%sleep%'")[0]["n"]
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


# -- outputs kept whole, and histories of older versions ------------------------------------

_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
                        "rkJggg==")
# The tables as versions before outputs were kept whole wrote them (no 'data' column yet in
# the oldest: its images were files in the workspace, the next kept them in 'data').
_OLD_SCHEMA = """
CREATE TABLE conversations (id TEXT PRIMARY KEY, title TEXT NOT NULL, workspace TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE messages (id INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, role TEXT NOT NULL,
    kind TEXT NOT NULL, content TEXT NOT NULL, created REAL NOT NULL, meta TEXT NOT NULL DEFAULT '{}');
CREATE TABLE actions (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, message_id INTEGER, code TEXT NOT NULL,
    status TEXT NOT NULL, observation TEXT, detail TEXT, started REAL, finished REAL, seconds REAL);
CREATE TABLE outputs (id INTEGER PRIMARY KEY, action_id TEXT NOT NULL, kind TEXT NOT NULL, mime TEXT NOT NULL,
    text TEXT, path TEXT, meta TEXT NOT NULL DEFAULT '{}');
CREATE TABLE files (id INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, action_id TEXT, origin TEXT NOT NULL,
    path TEXT NOT NULL, size INTEGER NOT NULL, created REAL NOT NULL);
"""


def write_old_history(db: Path, workspace: Path) -> str:
    """A history as an older version left it: every kind of output row, one image a file in the
    workspace (the oldest way), one in 'data' (the next); returns the conversation's id."""
    import json
    import sqlite3

    (workspace / ".codeact").mkdir(parents=True)
    (workspace / ".codeact" / "old.png").write_bytes(_PNG)
    con = sqlite3.connect(db)
    con.executescript(_OLD_SCHEMA)
    con.execute("INSERT INTO conversations VALUES ('old', 'Old one', ?, 1, 1)", (str(workspace),))
    con.execute("INSERT INTO messages VALUES (1, 'old', 'user', 'user', 'plot it', 1, '{}')")
    con.execute("INSERT INTO messages VALUES (2, 'old', 'assistant', 'assistant',"
                " 'Here.\n<execute>\nplot()\n</execute>', 1, '{}')")
    con.execute("INSERT INTO actions VALUES ('a1', 'old', 2, 'plot()', 'error', '', '', 1, 2, 1.0)")
    rows = [("stdout", "text/plain", "printed\n", None, {}),
            ("image", "image/png", "<Figure>", ".codeact/old.png", {"plain": "<Figure>", "bytes": len(_PNG)}),
            ("html", "text/html", "<table><tr><td>cell</td></tr></table><script>x()</script>", None,
             {"plain": "   a\n0  cell"}),
            ("text", "text/plain", "42", None, {}),
            ("error", "text/plain", "Traceback\nValueError: old", None,
             {"ename": "ValueError", "evalue": "old", "traceback": ["Traceback", "ValueError: old"]})]
    for kind, mime, text, path, meta in rows:
        con.execute("INSERT INTO outputs (action_id, kind, mime, text, path, meta) VALUES ('a1', ?, ?, ?, ?, ?)",
                    (kind, mime, text, path, json.dumps(meta)))
    con.commit()
    con.close()
    store = HistoryStore(db)  # adds the columns of later versions; the next image goes in 'data'
    store.execute("INSERT INTO outputs (action_id, kind, mime, text, meta, data) VALUES ('a1', 'image', "
                  "'image/png', '<Figure 2>', '{\"plain\": \"<Figure 2>\"}', ?)", (_PNG,))
    store.close()
    return "old"


def test_a_history_written_the_old_way_loads_and_exports(tmp_path):
    import nbformat

    from codeact_desktop.agent.timeline import timeline
    from codeact_desktop.export import export_conversation

    conv_id = write_old_history(tmp_path / "old.sqlite3", tmp_path / "ws")
    store = HistoryStore(tmp_path / "old.sqlite3")
    conv = store.open_conversation(conv_id)
    (action,) = [e for e in timeline(conv) if e.type == "action"]
    assert [o.kind for o in action.outputs] == ["stdout", "image", "html", "text", "error", "image"]
    assert action.outputs[1].image == _PNG == action.outputs[5].image
    notebook = nbformat.read(str(export_conversation(conv, tmp_path / "old.ipynb")), as_version=4)
    nbformat.validate(notebook)
    (cell,) = [c for c in notebook.cells if c.cell_type == "code"]
    assert [o.output_type for o in cell.outputs] == ["stream", "display_data", "execute_result", "execute_result",
                                                     "error", "display_data"]
    assert cell.outputs[1].data["image/png"] == base64.b64encode(_PNG).decode()
    assert "cell" in cell.outputs[2].data["text/html"] and "script" not in cell.outputs[2].data["text/html"]
    assert cell.outputs[4].ename == "ValueError" and cell.outputs[4].traceback[-1] == "ValueError: old"
    page = export_conversation(conv, tmp_path / "old.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "cell" in page and "ValueError: old" in page
    store.close()


def test_an_output_is_stored_whole_and_its_image_once(tmp_path):
    from codeact_desktop.kernel.outputs import item_from_message, item_from_stored

    store = HistoryStore(tmp_path / "h.sqlite3")
    conv = store.create_conversation(tmp_path / "ws")
    action = conv.add_action(conv.add_message("assistant", "assistant", "x"), "x")
    bundle = {"image/png": base64.b64encode(_PNG).decode(), "image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg'/>",
              "text/latex": "$x$", "application/json": {"a": 1}, "text/plain": "<Figure>"}
    item = item_from_message({"header": {"msg_type": "display_data"}, "content": {"data": bundle, "metadata": {}}})
    conv.add_output(action, item)
    (row,) = conv.outputs(action)
    assert row["kind"] == "image" and row["mime"] == "image/png" and row["data"] is None  # bytes once, in the output
    assert conv.output_image(row) == _PNG
    meta = json.loads(row["meta"])
    assert set(meta["output"]["data"]) == set(bundle) and meta["output"]["output_type"] == "display_data"
    assert item_from_stored(row["kind"], row["text"], conv.output_image(row), meta) == item
    store.close()
