"""A start does not wait for the model before the rest: the last conversation opens and
its kernel starts while the model loads (engine.start_early begins both before the window
is built); the message can be typed meanwhile and goes once the model is ready."""

import os
import subprocess
import sys
import threading

import pytest

from codeact_desktop import engine
from codeact_desktop.engine import start_early
from codeact_desktop.llm.scripted import ScriptedBackend
from codeact_desktop.settings import Settings
from codeact_desktop.store.history import HistoryStore
from codeact_desktop.ui import main_window
from codeact_desktop.ui.main_window import WARM_UP_MS, MainWindow

from ._helpers import send, wait_idle


def _slow_model(replies):
    """A model whose load finishes when the test says so."""
    loaded = threading.Event()
    backend = ScriptedBackend(replies)

    def load():
        assert loaded.wait(60), "the test never let the model load"
        return backend

    return load, loaded


def test_the_last_conversation_opens_with_a_running_kernel_before_the_model_has_loaded(qtbot, app_paths, tmp_path):
    store = HistoryStore(tmp_path / "history.sqlite3")
    older = store.create_conversation(app_paths.workspaces)
    older.add_message("user", "user", "an older question")
    last = store.create_conversation(app_paths.workspaces)
    last.add_message("user", "user", "the last question")
    load, loaded = _slow_model(["<execute>print(6 * 7)</execute>", "42."])
    win = MainWindow(store, app_paths, load, Settings(action_timeout_s=30))
    qtbot.addWidget(win)
    win.show()
    try:
        assert win.current is not None and win.current.conversation.id == last.id
        qtbot.waitUntil(lambda: win.current.kernel.is_alive, timeout=60_000)  # the model still loading
        assert win.backend is None and win.models.loading
        assert not win.send_button.isEnabled() and "still loading" in win.send_button.toolTip()
        send(qtbot, win, "what is six times seven?")  # Enter while loading: kept, not sent
        assert win.input.toPlainText() == "what is six times seven?"
        assert win.current.conversation.last_user_message()["content"] == "the last question"

        kernel = win.current.kernel
        loaded.set()
        qtbot.waitUntil(lambda: win.backend is not None and win.send_button.isEnabled(), timeout=30_000)
        assert win.current.kernel is kernel  # the same kernel: not started again once the model came
        win.send_current()
        wait_idle(qtbot, win)
        assert "42" in win.current.conversation.actions()[-1]["observation"]
    finally:
        loaded.set()
        win.close()


def test_start_early_starts_the_kernel_the_window_then_uses(qtbot, app_paths, tmp_path):
    """Before the window exists: the kernel of the conversation at the top of the list (or
    of a new one when there is none), and the model's load; the window takes both."""
    store = HistoryStore(tmp_path / "history.sqlite3")
    load, loaded = _slow_model(["Hello."])
    early = start_early(app_paths, store, load)
    assert [row["id"] for row in store.list_conversations()] == [early.conversation_id]  # made, as none existed
    win = MainWindow(store, app_paths, early.load_backend, Settings(),
                     early_kernels={early.conversation_id: early.kernel})
    qtbot.addWidget(win)
    win.show()
    try:
        assert win.current.conversation.id == early.conversation_id and win.current.kernel is early.kernel
        loaded.set()
        qtbot.waitUntil(lambda: win.backend is not None, timeout=30_000)
        qtbot.wait(200)
        assert len(store.list_conversations()) == 1  # no second, empty conversation once the model came
        qtbot.waitUntil(lambda: early.kernel.is_alive, timeout=60_000)
    finally:
        loaded.set()
        win.close()
    qtbot.waitUntil(lambda: not early.kernel.is_alive, timeout=30_000)  # closed with the window


def test_a_later_start_launches_the_kernels_process_before_the_models_load_begins(app_paths, kernel_venv, tmp_path,
                                                                                  monkeypatch):
    """The early kernel's launch is Python (jupyter_client) that wants the GIL: beside the
    model's load and the window's build it waited 0.15 to 0.2 s for it. On a later start
    start_early returns with the kernel's process running, and the load begins after."""
    kernels, pids_at_load = [], []
    real_start_kernel = engine.start_kernel
    monkeypatch.setattr(engine, "start_kernel", lambda *a, **kw: kernels.append(real_start_kernel(*a, **kw))
                        or kernels[-1])

    def load():
        pids_at_load.append(kernels[0].pid)
        return ScriptedBackend(["Hi."])

    early = start_early(app_paths, HistoryStore(tmp_path / "history.sqlite3"), load)
    try:
        assert early.kernel.pid is not None  # launched before start_early returned
        early.load_backend()
        assert pids_at_load == [early.kernel.pid]
    finally:
        early.kernel.shutdown()


def test_the_highlighter_warms_up_once_the_conversation_is_usable(qtbot, app_paths, tmp_path, monkeypatch):
    """pygments compiles its rules on first use, holding the GIL: not while the model loads
    and the kernel starts, which want it too."""
    warmed = []
    monkeypatch.setattr(main_window, "highlighted_html", warmed.append)
    load, loaded = _slow_model(["Hi."])
    win = MainWindow(HistoryStore(tmp_path / "history.sqlite3"), app_paths, load, Settings())
    qtbot.addWidget(win)
    win.show()
    try:
        qtbot.waitUntil(lambda: win.current is not None and win.current.kernel.is_alive, timeout=60_000)
        qtbot.wait(WARM_UP_MS + 500)
        assert warmed == []  # the model is still loading
        loaded.set()
        qtbot.waitUntil(lambda: warmed == ["x = 1"], timeout=30_000)
    finally:
        loaded.set()
        win.close()


def test_a_start_with_a_model_builds_the_models_page_only_when_it_is_shown(qtbot, app_paths, tmp_path):
    """Its catalogue, downloads and imports took 0.07 s of the UI thread at every start."""
    load, loaded = _slow_model(["Hi."])
    win = MainWindow(HistoryStore(tmp_path / "history.sqlite3"), app_paths, load, Settings())
    qtbot.addWidget(win)
    win.show()
    try:
        loaded.set()
        qtbot.waitUntil(lambda: win.backend is not None, timeout=30_000)
        assert win.models._welcome is None
        win.show_models()
        assert win.pages.currentWidget() is win.models.welcome and win.models.welcome.back_button.isVisible()
        qtbot.waitUntil(lambda: win.models.hardware is not None, timeout=30_000)  # found in the background
        win.models.welcome.back_requested.emit()
        assert win.pages.currentIndex() == 0
    finally:
        loaded.set()
        win.close()


def test_files_given_at_start_skip_the_early_conversation(app_paths, tmp_path):
    """Files open a new conversation: no kernel is started early for another one."""
    store = HistoryStore(tmp_path / "history.sqlite3")
    store.create_conversation(app_paths.workspaces)
    early = start_early(app_paths, store, lambda: ScriptedBackend(["Hi."]), open_conversation=False)
    assert early.kernel is None and early.conversation_id is None
    assert isinstance(early.load_backend(), ScriptedBackend)


def test_pygments_is_imported_before_the_early_threads_start(tmp_path):
    """The model's load thread imports pygments (openai -> httpx -> rich) while the window's
    code card imports it on the UI thread; pygments.lexers swaps its module in sys.modules at
    the end of its import, so the two at once once failed the start with "cannot import name
    'PythonLexer'". The app imports it before start_early begins any thread."""
    probe = (
        "import sys\n"
        "import codeact_desktop.ui.app as app\n"
        "def start_early(*args, **kwargs):\n"
        "    print('lexers' if 'pygments.lexers' in sys.modules else 'none',\n"
        "          'formatters' if 'pygments.formatters' in sys.modules else 'none')\n"
        "    raise SystemExit(0)\n"
        "app.start_early = start_early\n"
        "app.main(base_url='http://127.0.0.1:9/v1')\n"
    )
    env = {**os.environ, "CODEACT_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["lexers", "formatters"]


@pytest.mark.parametrize("args", ["", "base_url='http://127.0.0.1:9/v1'"], ids=["double-click", "server"])
def test_the_kernel_and_the_model_start_before_qt_is_imported(tmp_path, args):
    """Qt's imports and the application object take 0.1 s of the main thread; the kernel's
    process starts before them, and the model's load begins (a double-click looks for a
    running app first, without Qt on macOS and Linux)."""
    probe = (
        "import sys\n"
        "import codeact_desktop.ui.app as app\n"
        "def start_early(*args, **kwargs):\n"
        "    print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))))\n"
        "    raise SystemExit(0)\n"
        "app.start_early = start_early\n"
        f"app.main({args})\n"
    )
    env = {**os.environ, "CODEACT_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_quitting_ends_the_process_even_with_a_job_stuck_in_the_background(tmp_path):
    # A Save as stuck in open() (a FIFO the code made; a network disk gone) held the process
    # after the window closed: Qt's thread pool waits for its jobs at exit, for ever.
    fifo = tmp_path / "stuck"
    os.mkfifo(fifo)
    probe = (
        "import os\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from codeact_desktop.ui import app, main_window\n"
        "main_window.CLOSE_WAIT_MS = 500\n"
        "shown = main_window.MainWindow.show\n"
        "def show(self):\n"
        "    shown(self)\n"
        f"    self.background.run('save file', lambda: os.open({str(fifo)!r}, os.O_RDONLY))\n"
        "    QTimer.singleShot(1000, self.close)\n"
        "    QTimer.singleShot(1100, QApplication.instance().quit)\n"
        "main_window.MainWindow.show = show\n"
        "print('main returned', app.main(), flush=True)\n"
    )
    env = {**os.environ, "CODEACT_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"}
    try:
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("the process was still there 30 s after its window closed") from None
    assert done.returncode == 0, done.stderr[-2000:]
    assert "main returned" not in done.stdout  # it ended at once, not through Python's own exit
