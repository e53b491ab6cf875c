"""Conversations in the window: rename, delete, the kernel-state notice on reopening,
regenerate and edit-and-resend, export, settings, and the output tools."""

import json
from pathlib import Path

import nbformat
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QPlainTextEdit

from codeact_desktop.llm.scripted import ScriptedBackend
from codeact_desktop.resources import messages
from codeact_desktop.settings import Settings
from codeact_desktop.store.history import HistoryStore
from codeact_desktop.ui.chat_view import Bubble
from codeact_desktop.ui.main_window import MainWindow
from codeact_desktop.ui.output_views import ImageDialog, OutputBlock, TextDialog
from codeact_desktop.ui.settings_dialog import SettingsDialog

from ._helpers import PLOT_AND_TABLE, send, wait_idle


def titles(win):
    return [win.conversation_list.item(i).text() for i in range(win.conversation_list.count())]


def test_rename_and_delete_with_confirmation(qtbot, window, monkeypatch):
    win, _ = window(["<execute>open('made.txt', 'w').write('x')</execute>", "ok"])
    send(qtbot, win, "first chat")
    wait_idle(qtbot, win)
    monkeypatch.setattr(win, "ask_text", lambda title, label, text: "Renamed chat")
    qtbot.keyClick(win, Qt.Key_F2)
    assert titles(win) == ["Renamed chat"]
    workspace = Path(win.current.conversation.workspace)
    assert (workspace / "made.txt").exists()
    kernel_home = win.paths.kernel_home_for(workspace)
    assert kernel_home.is_dir()
    answers = iter([False, True])
    monkeypatch.setattr(win, "confirm", lambda title, text, **_: next(answers))
    win.delete_conversation()  # said no: nothing happens
    assert titles(win) == ["Renamed chat"]
    old_kernel = win.current.kernel
    win.conversation_list.setFocus()
    qtbot.keyClick(win.conversation_list, Qt.Key_Delete)
    assert titles(win) == ["New conversation"] and win.backend is not None and win.current is not None
    qtbot.waitUntil(lambda: not workspace.exists() and not kernel_home.exists() and not old_kernel.is_alive,
                    timeout=30_000)
    assert win.store.query("SELECT count(*) AS n FROM actions")[0]["n"] == 0
    assert win.store.integrity_ok()


def test_reopening_says_the_kernel_state_was_lost(qtbot, window, app_paths, tmp_path):
    win, _ = window(["<execute>x = 41</execute>", "Set."])
    send(qtbot, win, "set x")
    wait_idle(qtbot, win)
    win.close()
    again = MainWindow(HistoryStore(tmp_path / "history.sqlite3"), app_paths,
                       lambda: ScriptedBackend(["<execute>print(x + 1)</execute>", "x is gone."]), Settings())
    qtbot.addWidget(again)
    again.show()
    qtbot.waitUntil(lambda: again.backend is not None and again.current is not None, timeout=30_000)
    notices = [n.text() for n in again.chat.findChildren(QLabel, "notice")]
    assert messages()["kernel_state_lost"] in notices
    send(qtbot, again, "print x + 1")
    wait_idle(qtbot, again)
    (card,) = [c for c in again.chat.cards.values() if "x + 1" in c.code]
    assert card.status == "error"  # NameError: the model sees it and can recover
    again.close()


def test_regenerate_and_edit_last_message(qtbot, window):
    win, backend = window(["First answer.", "Second answer.", "Answer to the edit."])
    send(qtbot, win, "question")
    wait_idle(qtbot, win)
    assert win.regenerate_button.isVisible() and win.edit_button.isVisible()
    qtbot.mouseClick(win.regenerate_button, Qt.LeftButton)
    wait_idle(qtbot, win)
    assistant = [b.markdown for b in win.chat.findChildren(Bubble) if b.role == "assistant" and b.isVisible()]
    assert assistant == ["Second answer."]
    qtbot.mouseClick(win.edit_button, Qt.LeftButton)
    assert win.input.toPlainText() == "question" and win.edit_hint.isVisible()
    win.input.selectAll()
    send(qtbot, win, "better question")
    wait_idle(qtbot, win)
    shown = [(b.role, b.markdown) for b in win.chat.findChildren(Bubble) if b.isVisible()]
    assert shown == [("user", "better question"), ("assistant", "Answer to the edit.")]
    users = [m["content"] for m in win.current.conversation.messages() if m["kind"] == "user"]
    assert users == ["better question"] and [m["content"] for m in backend.calls[2]][1:] == ["better question"]


def test_export_notebook_from_the_window(qtbot, window, tmp_path, monkeypatch):
    win, _ = window([PLOT_AND_TABLE, "Done."])
    send(qtbot, win, "plot squares")
    wait_idle(qtbot, win)
    target = tmp_path / "exported.ipynb"
    monkeypatch.setattr(win, "ask_save_path", lambda *a: str(target))
    qtbot.keyClick(win, Qt.Key_E, Qt.ControlModifier)
    qtbot.waitUntil(lambda: "Exported to" in win.statusBar().currentMessage(), timeout=10_000)
    labels = win.model_label.parentWidget()
    assert not labels.isVisible()  # the message is not drawn over the model and kernel labels
    win.statusBar().clearMessage()
    assert labels.isVisible()
    nb = nbformat.read(str(target), as_version=4)
    nbformat.validate(nb)
    outputs = [o.output_type for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs == ["display_data", "stream", "execute_result"]


def test_settings_dialog_applies_and_persists(qtbot, window, app_paths):
    win, backend = window(["<execute>print('needs approval')</execute>", "ok"])
    dialog = SettingsDialog(win.settings, win)
    dialog.approval.setChecked(True)
    dialog.max_actions.setValue(2)
    dialog.theme.setCurrentIndex(2)
    win.apply_settings(dialog.result_settings())
    saved = json.loads(app_paths.settings_file.read_text())
    assert saved["require_approval"] is True and saved["max_actions"] == 2 and saved["theme"] == "dark"
    assert win.agent_settings.max_actions == 2 and win.current.require_approval
    assert QApplication.palette().window().color().lightness() < 128  # dark, whatever the platform
    send(qtbot, win, "go")
    qtbot.waitUntil(lambda: any(c.status == "waiting" for c in win.chat.cards.values()), timeout=10_000)
    win.stop()
    wait_idle(qtbot, win)
    win.apply_settings(Settings(action_timeout_s=20))
    assert QApplication.palette().window().color().lightness() > 128


def test_long_output_shows_all_copy_and_full_size_image(qtbot, window):
    win, _ = window(["<execute>\nimport matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()\n"
                     "for i in range(100): print('line', i)\n</execute>", "ok"])
    send(qtbot, win, "print a lot")
    wait_idle(qtbot, win)
    card = next(iter(win.chat.cards.values()))
    stream = card.streams["stdout"]
    block = [b for b in card.findChildren(OutputBlock) if b.view is stream][0]
    collapsed = stream.height()
    assert block.show_all_button.isVisible() and block.show_all_button.text() == "Show all 100 lines"
    qtbot.mouseClick(block.show_all_button, Qt.LeftButton)
    assert stream.height() > 3 * collapsed and not block.show_all_button.isVisible()
    qtbot.mouseClick(block.copy_button, Qt.LeftButton)
    assert QApplication.clipboard().text().startswith("line 0\nline 1\n")
    image = [b for b in card.findChildren(OutputBlock) if b.view is not stream][0].view
    qtbot.mouseClick(image, Qt.LeftButton)
    dialog = win.findChild(ImageDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.close()


def test_huge_output_opens_in_a_viewer(qtbot, window):
    win, _ = window(["<execute>print('y' * 300_000)</execute>", "ok"])
    send(qtbot, win, "print 300k")
    wait_idle(qtbot, win)
    card = next(iter(win.chat.cards.values()))
    block = [b for b in card.findChildren(OutputBlock) if b.view is card.streams["stdout"]][0]
    assert block.show_all_button.text() == "Open all"
    qtbot.mouseClick(block.show_all_button, Qt.LeftButton)
    viewer = win.findChild(TextDialog)
    assert viewer is not None and len(viewer.findChild(QPlainTextEdit).toPlainText()) >= 300_000
    viewer.close()


def test_settings_fit_the_screen_with_a_large_font(qtbot, window):
    """With a 1.6x font the groups were 868 px tall on an 800 px screen, and OK and Cancel
    were off its bottom (a new user's review). The groups scroll; the buttons stay."""
    from PySide6.QtWidgets import QApplication

    win, _ = window(["Hi."])
    app = QApplication.instance()
    normal = app.font()
    large = app.font()
    large.setPointSizeF(normal.pointSizeF() * 1.6)
    app.setFont(large)
    try:
        dialog = SettingsDialog(win.settings, win)
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.wait(100)
        screen = dialog.screen().availableGeometry().height()
        assert dialog.height() <= screen, (dialog.height(), screen)
        ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
        assert ok.isVisible() and ok.mapTo(dialog, ok.rect().bottomLeft()).y() <= dialog.height()
        assert dialog.scroll.verticalScrollBar().maximum() > 0  # the rest is a scroll away
        dialog.close()
    finally:
        app.setFont(normal)


def test_questions_that_lose_something_name_what_their_button_does(qtbot, window):
    """Delete and Restart asked Yes/No (a new user's review): the buttons say Delete, Restart
    and Cancel, and Cancel stays the default."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QMessageBox

    win, _ = window(["Hi."])
    seen = []

    def answer():
        box = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible())
        seen.append((box.button(QMessageBox.Yes).text(), box.defaultButton().text()))
        box.reject()

    for ask in (win.delete_conversation, win.restart_kernel):
        QTimer.singleShot(200, answer)
        ask()
    assert seen == [("Delete", "Cancel"), ("Restart", "Cancel")], seen
    assert win.current is not None  # nothing deleted
