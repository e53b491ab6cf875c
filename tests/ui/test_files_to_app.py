"""Files given to the app rather than dropped on a conversation: on its command line, by a
second launch (handed to the running app over its instance socket), by macOS's
QFileOpenEvent. And the About box."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import QApplication, QPlainTextEdit

from codeact_desktop.llm.scripted import ScriptedBackend
from codeact_desktop.paths import AppPaths
from codeact_desktop.settings import Settings
from codeact_desktop.store.history import HistoryStore
from codeact_desktop.ui.about import about_text, show_about
from codeact_desktop.ui.main_window import MainWindow
from codeact_desktop.ui.hand_over import hand_over
from codeact_desktop.ui.single_instance import FileOpenFilter, InstanceServer

from ._helpers import send, wait_idle

ROOT = Path(__file__).resolve().parents[2]


def test_open_files_starts_a_new_conversation_with_them_attached(qtbot, window, tmp_path):
    win, _ = window(["ok"])
    send(qtbot, win, "hello")
    wait_idle(qtbot, win)
    first = win.current.conversation.id
    csv = tmp_path / "sales.csv"
    csv.write_text("a,b\n1,2\n")
    win.open_files([csv, tmp_path / "gone.csv"])
    assert win.current.conversation.id != first
    qtbot.waitUntil(lambda: not win.tray.copying and bool(win.tray.files()), timeout=10_000)
    assert [a.name for a in win.tray.files()] == ["sales.csv"]
    assert (Path(win.current.conversation.workspace) / "sales.csv").read_text() == "a,b\n1,2\n"
    assert "Not found: gone.csv" in win.statusBar().currentMessage()


def test_files_given_before_a_model_is_ready_are_attached_once_it_is(qtbot, app_paths, tmp_path):
    win = MainWindow(HistoryStore(tmp_path / "h.sqlite3"), app_paths, None, Settings(action_timeout_s=20))
    qtbot.addWidget(win)
    win.show()
    csv = tmp_path / "early.csv"
    csv.write_text("x\n1\n")
    win.open_files([csv])
    assert win.current is None and "once a model is loaded" in win.statusBar().currentMessage()
    win.models.load(lambda: ScriptedBackend(["ok"]), {})
    qtbot.waitUntil(lambda: win.backend is not None and win.current is not None and bool(win.tray.files()), timeout=30_000)
    assert [a.name for a in win.tray.files()] == ["early.csv"]
    win.close()


def test_a_file_open_event_reaches_the_window(qtbot, tmp_path):
    """What macOS sends when a file is dropped on the Dock icon or opened with the app."""
    app = QApplication.instance()
    dock = FileOpenFilter()
    app.installEventFilter(dock)
    got = []
    dock.files_opened.connect(got.append)
    try:
        QApplication.sendEvent(app, QFileOpenEvent(str(tmp_path / "report.pdf")))
    finally:
        app.removeEventFilter(dock)
    assert got == [[tmp_path / "report.pdf"]]


def _launch(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "CODEACT_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.Popen([sys.executable, "-m", "codeact_desktop", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_second_launch_hands_its_files_to_the_running_app(qtbot, tmp_path, request):
    """The real command line of a second launch, against the running app's real server."""
    paths = AppPaths(data=tmp_path / "home" / "data", cache=tmp_path / "home" / "cache")
    server = InstanceServer(paths)
    request.addfinalizer(server.close)
    assert server.listening
    got = []
    server.files_opened.connect(got.append)
    csv = tmp_path / "table.csv"
    csv.write_text("a\n1\n")
    started = time.monotonic()
    second = _launch(tmp_path / "home", str(csv))
    qtbot.waitUntil(lambda: second.poll() is not None, timeout=60_000)
    out = second.stdout.read()
    assert second.returncode == 0, out
    assert "already running" in out
    assert got == [[csv.resolve()]]
    assert time.monotonic() - started < 30
    # the socket's name is in the app's data folder, and the socket is the user's alone
    name = json.loads((paths.data / "instance.json").read_text())["socket"]
    if os.name != "nt":
        assert os.stat(name).st_mode & 0o077 == 0
    qtbot.wait(100)  # the closed connection is deleted while its server is alive


def test_a_stale_instance_file_does_not_stop_the_next_start(tmp_path):
    paths = AppPaths(data=tmp_path / "data", cache=tmp_path / "cache")
    paths.data.mkdir(parents=True)
    (paths.data / "instance.json").write_text(json.dumps({"socket": str(tmp_path / "gone.sock")}))
    started = time.monotonic()
    assert hand_over(paths, []) is False
    assert time.monotonic() - started < 3
    (paths.data / "instance.json").write_text("not json")
    assert hand_over(paths, []) is False
    if os.name != "nt":  # a socket left by an app that was killed: its file is there, no one listens
        import socket

        left = tmp_path / "left.sock"
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(left))
        (paths.data / "instance.json").write_text(json.dumps({"socket": str(left)}))
        assert hand_over(paths, []) is False
    assert time.monotonic() - started < 3


def test_kernel_code_cannot_find_or_reach_the_instance_socket(qtbot, make_kernel, app_paths, tmp_path, request):
    """The socket would let code make the app attach the user's files to a conversation."""
    server = InstanceServer(app_paths)
    request.addfinalizer(server.close)
    assert server.listening
    name = json.loads((app_paths.data / "instance.json").read_text())["socket"]
    got = []
    server.files_opened.connect(got.append)
    kernel = make_kernel()
    code = (
        "import socket, json, os\n"
        f"try:\n    print('read', open({str(app_paths.data / 'instance.json')!r}).read())\n"
        "except OSError as e:\n    print('no read', type(e).__name__)\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        f"try:\n    s.connect({name!r})\n    s.sendall(json.dumps({{'open': ['/etc/passwd']}}).encode() + b'\\n')\n"
        "    print('connected', s.recv(10))\n"
        "except OSError as e:\n    print('no connect', type(e).__name__)\n")
    done = kernel.execute(code, timeout=30)
    out = "".join(i.text for i in done.items if i.kind == "stdout")
    qtbot.wait(300)
    assert "no read" in out and "no connect" in out, out
    assert got == []


def test_the_about_box_names_the_version_the_runtime_and_the_licences(qtbot, window):
    win, _ = window(["ok"])
    assert win.about_action.text() == "About CodeAct Desktop"
    text = about_text(win.paths)
    assert text.startswith("CodeAct Desktop 0.1.0") and "llama-cpp-python" in text and "Qt for Python" in text
    assert "not a bundle" in text  # a checkout says what it is
    dialog = show_about(win, win.paths)
    listing = dialog.findChild(QPlainTextEdit)
    lines = listing.toPlainText().splitlines()
    assert any(line.startswith("numpy ") for line in lines) and any(line.startswith("PySide6") for line in lines)
    assert any("MIT" in line or "BSD" in line for line in lines)
    dialog.close()


def test_the_instance_socket_bounds_what_another_process_can_make_it_hold(qtbot, tmp_path, request):
    """From a third independent run: 1,000 connections of 1 MB without a newline held 1 GB
    in the app; "[" nested 500,000 deep raised out of the slot; 200,000 paths held the UI
    thread. A process of the user's own, so a bound, not a wall."""
    import socket as sockets

    paths = AppPaths(data=tmp_path / "data", cache=tmp_path / "cache")
    server = InstanceServer(paths)
    request.addfinalizer(server.close)
    name = json.loads((paths.data / "instance.json").read_text())["socket"]
    got = []
    server.files_opened.connect(got.append)
    held = []
    for _ in range(30):  # connections that send and never end their message
        s = sockets.socket(sockets.AF_UNIX)
        s.connect(name)
        s.sendall(b"x" * 1000)
        held.append(s)
    qtbot.wait(300)
    assert len(server._received) <= 8
    for s in held:
        s.close()
    qtbot.waitUntil(lambda: not server._received, timeout=5_000)

    def send(data: bytes) -> None:  # from a thread: the app reads on this one, in Qt's loop
        with sockets.socket(sockets.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(name)
            try:
                s.sendall(data)
                s.recv(10)
            except OSError:
                pass  # the app hung up on it: as it should

    deep = threading.Thread(target=send, args=(b"[" * 500_000 + b"\n",))
    deep.start()
    qtbot.waitUntil(lambda: not deep.is_alive(), timeout=15_000)
    many = threading.Thread(target=send, args=(json.dumps({"open": ["/"] * 200_000}).encode() + b"\n",))
    many.start()
    qtbot.waitUntil(lambda: bool(got) and not many.is_alive(), timeout=15_000)
    assert len(got) == 1 and len(got[0]) == 1000
