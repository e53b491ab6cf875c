"""Files in the window: a real drop event, chips, the copy into the workspace, the name
in the model's prompt, the workspace panel, and a cancelled large copy."""

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLabel

from codeact_desktop.ui.chat_view import Bubble

from ._helpers import send, wait_idle


def drop(win, paths):
    """What the OS sends for a drop: enter (which makes the window the target), then drop."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    at = QPoint(400, 300)
    enter = QDragEnterEvent(at, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(win, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(at, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(win, event)
    return event.isAccepted()


def test_dropped_csv_is_copied_shown_named_to_the_model_and_listed(qtbot, window, tmp_path):
    win, backend = window([
        "<execute>\nimport pandas as pd\ndf = pd.read_csv('sales é.csv')\ndf.to_csv('doubled.csv')\n"
        "print(df['b'].sum())\n</execute>", "The sum is 6."])
    csv = tmp_path / "sales é.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    assert drop(win, [csv])
    qtbot.waitUntil(lambda: not win.tray.copying and bool(win.tray.files()), timeout=10_000)
    assert [a.name for a in win.tray.files()] == ["sales é.csv"]
    workspace = Path(win.current.conversation.workspace)
    assert (workspace / "sales é.csv").read_text() == "a,b\n1,2\n3,4\n"
    send(qtbot, win, "sum column b")
    wait_idle(qtbot, win)
    prompt = backend.calls[0][1]["content"]
    assert prompt.startswith("sum column b\n\nFiles uploaded to the working directory:\n- ./sales é.csv (")
    assert win.tray.files() == [] and not win.tray.isVisible()
    chips = win.chat.findChildren(QLabel, "chip")
    assert any("sales é.csv" in c.text() for c in chips)
    assert "6" in win.chat.cards[next(iter(win.chat.cards))].streams["stdout"].toPlainText()
    rows = [win.files_panel.list.item(i).text() for i in range(win.files_panel.list.count())]
    assert rows[0].startswith("doubled.csv") and "from action 1" in rows[0]
    assert rows[1].startswith("sales é.csv") and "you added it" in rows[1]
    # only the user's words are shown in the bubble; the file line is for the model
    user = [b for b in win.chat.findChildren(Bubble) if b.role == "user"][0]
    assert user.markdown == "sum column b"


def test_chip_can_be_removed_before_sending(qtbot, window, tmp_path):
    win, backend = window(["ok"])
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("a")
    b.write_text("b")
    drop(win, [a, b])
    qtbot.waitUntil(lambda: len(win.tray.files()) == 2, timeout=10_000)
    remove = [w for w in win.tray.findChildren(type(win.send_button)) if w.accessibleName() == "remove a.txt"][0]
    qtbot.mouseClick(remove, Qt.LeftButton)
    assert [f.name for f in win.tray.files()] == ["b.txt"]
    send(qtbot, win, "read it")
    wait_idle(qtbot, win)
    assert "./b.txt" in backend.calls[0][1]["content"] and "a.txt" not in backend.calls[0][1]["content"]


def test_large_copy_shows_progress_and_cancel_leaves_nothing(qtbot, window, tmp_path):
    win, _ = window(["never"])
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(2 << 30)  # 2 GB, sparse: reads cost no disk
    assert win.tray.add_paths([big], Path(win.current.conversation.workspace))
    assert win.tray.copying and not win.send_button.isEnabled()
    qtbot.waitUntil(lambda: "MB of 2.0 GB" in win.tray.progress_label.text(), timeout=10_000)
    assert "Copying" in win.tray.progress_label.text()
    qtbot.mouseClick(win.tray.cancel_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not win.tray.copying, timeout=10_000)
    assert not (Path(win.current.conversation.workspace) / "big.bin").exists()
    assert win.tray.files() == [] and win.send_button.isEnabled()


def drop_and_answer_no(qtbot, win, monkeypatch, path) -> list[str]:
    """Drops a .gguf and answers No to the question it raises; returns the question's text."""
    asked = []
    monkeypatch.setattr(win, "confirm", lambda title, text, **_: asked.append(text) or False)
    drop(win, [path])
    qtbot.waitUntil(lambda: bool(asked), timeout=10_000)
    return asked


def test_a_dropped_gguf_is_described_first_and_can_be_attached_instead(qtbot, window, tmp_path, gguf_path,
                                                                       monkeypatch):
    win, backend = window(["never"])
    folder = tmp_path / "mes modèles"
    folder.mkdir()
    model = folder / "petit modèle é.gguf"
    model.symlink_to(gguf_path)
    asked = drop_and_answer_no(qtbot, win, monkeypatch, model)
    for shown in ("Use petit modèle é.gguf as the model?", "Architecture: gemma3", "Parameters: 268.1 M",
                  "Quantisation: Q4_K_M", "Trained context: 32,768 tokens", "<|im_end|>: not in the vocabulary",
                  "Choose No to attach it"):
        assert shown in asked[0]
    qtbot.waitUntil(lambda: [a.name for a in win.tray.files()] == [model.name], timeout=30_000)
    assert win.backend is backend


@pytest.mark.parametrize("content, message", [
    (b"GGUF" + os.urandom(64), "is damaged or truncated"),
    (b"", "is empty (0 bytes)"),
    (b"<html>404</html>", "is not a GGUF model file"),
])
def test_a_bad_gguf_is_refused_before_loading_and_the_old_model_stays(qtbot, window, tmp_path, monkeypatch,
                                                                      content, message):
    win, backend = window(["never"])
    bad = tmp_path / "broken model é.gguf"
    bad.write_bytes(content)
    asked = drop_and_answer_no(qtbot, win, monkeypatch, bad)
    assert message in asked[0] and "It was not loaded; attach it to the conversation as a file instead?" in asked[0]
    qtbot.wait(200)
    assert win.tray.files() == [] and not win.models.loading
    assert win.backend is backend and "scripted" in win.model_label.full_text


def test_a_question_quoting_a_dropped_files_name_shows_it_as_text(qtbot, window):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QMessageBox

    win, _ = window(["never"])
    name = "<font color=green>✔ checked, safe</font><a href=https://evil.example>model</a>.gguf"
    seen = []

    def answer():
        box = QApplication.activeModalWidget()
        seen.append((box.textFormat(), box.text()))
        box.button(QMessageBox.No).click()

    QTimer.singleShot(300, answer)
    assert not win.confirm("Use this model?", f"Use {name} as the model?")
    assert seen == [(Qt.PlainText, f"Use {name} as the model?")]


def test_the_files_panel_lists_the_newest_files_when_code_writes_thousands(qtbot, window):
    # Code that wrote 20,000 new names an action made the panel load and check every row
    # ever recorded, twice a turn and at every start: 8.8 s a refresh after 6 actions.
    from codeact_desktop.ui.workspace_panel import SHOWN_FILES

    write = ("<execute>\nimport os, shutil\nshutil.rmtree('d', ignore_errors=True)\nos.makedirs('d')\n"
             "for i in range({n}):\n    open(f'd/{tag}{{i}}.txt', 'w').write('x')\n</execute>")
    win, _ = window([write.format(n=400, tag="a"), "one", write.format(n=400, tag="b"), "two"])
    send(qtbot, win, "write many")
    wait_idle(qtbot, win)
    send(qtbot, win, "again")
    wait_idle(qtbot, win)
    panel = win.files_panel
    panel.refresh()
    rows = [panel.list.item(i) for i in range(panel.list.count())]
    assert len(rows) == SHOWN_FILES + 1 and "800" in panel.title.text()
    assert all(r.data(Qt.UserRole).startswith("d/b") for r in rows[:400])  # the newest first
    assert "300 older files" in rows[-1].text() and rows[-1].flags() == Qt.NoItemFlags
    deleted = [r for r in rows[:-1] if r.data(Qt.UserRole).startswith("d/a")]
    assert deleted and all("deleted" in r.text() for r in deleted)
