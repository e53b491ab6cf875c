"""Who made a file, as the Files panel says: files the user drops after the code has run
are the user's ("you added it"), not the next action's, though the app's copy of them
changes the watched workspace between actions; a dropped file the code then rewrites is
that action's."""

from pathlib import Path

from .test_window_files import drop
from ._helpers import send, wait_idle


def test_files_dropped_after_an_action_are_the_users_until_code_changes_them(qtbot, window, tmp_path):
    win, backend = window([
        "<execute>\nprint('first')\n</execute>", "Done.",
        "<execute>\nopen('c.txt', 'a').write('more\\n')\nprint('second')\n</execute>", "Done again."])
    send(qtbot, win, "run something")
    wait_idle(qtbot, win)
    names = ["a.csv", "b.json", "c.txt", "d.md"]
    for name in names:
        (tmp_path / name).write_text(f"{name}\n")
    assert drop(win, [tmp_path / name for name in names])
    qtbot.waitUntil(lambda: not win.tray.copying and len(win.tray.files()) == 4, timeout=10_000)
    send(qtbot, win, "now these")
    wait_idle(qtbot, win)
    assert len(backend.calls) == 4
    workspace = Path(win.current.conversation.workspace)
    assert (workspace / "c.txt").read_text() == "c.txt\nmore\n"
    rows = {win.files_panel.list.item(i).text().split("\n")[0]: win.files_panel.list.item(i).text()
            for i in range(win.files_panel.list.count())}
    assert sorted(rows) == sorted(names)
    for name in ["a.csv", "b.json", "d.md"]:
        assert "you added it" in rows[name], rows[name]
    assert "from action 2" in rows["c.txt"], rows["c.txt"]  # the code rewrote it: its own now
    records = [(f["path"], f["origin"]) for f in win.current.conversation.files()]
    assert sorted(records) == sorted([(n, "uploaded") for n in names] + [("c.txt", "produced")])


def test_files_dropped_while_an_action_runs_are_not_that_actions(qtbot, window, tmp_path):
    win, backend = window(["<execute>\nimport time\ntime.sleep(3)\nprint('slept')\n</execute>", "Done.", "Got them."])
    qtbot.waitUntil(lambda: win.kernel_label.text() == "kernel: ready", timeout=30_000)
    (tmp_path / "notes.txt").write_text("n\n")
    (tmp_path / "photos").mkdir()
    for name in ["one.png", "two.png"]:
        (tmp_path / "photos" / name).write_bytes(b"\x89PNG" + name.encode())
    send(qtbot, win, "sleep a while")
    qtbot.waitUntil(lambda: win.kernel_label.text() == "kernel: busy", timeout=10_000)
    assert drop(win, [tmp_path / "notes.txt", tmp_path / "photos"])
    qtbot.waitUntil(lambda: not win.tray.copying and len(win.tray.files()) == 2, timeout=10_000)
    assert win.current.busy  # copied while the action still ran
    wait_idle(qtbot, win)
    assert "slept" in backend.calls[1][-1]["content"]
    conversation = win.current.conversation
    assert conversation.files() == []  # nothing produced by the action
    send(qtbot, win, "here are the files")
    wait_idle(qtbot, win)
    assert sorted((f["path"], f["origin"]) for f in conversation.files()) == [
        ("notes.txt", "uploaded"), ("photos", "uploaded")]
