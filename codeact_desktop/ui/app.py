"""Starts the window: ``codeact-desktop`` with no subcommand."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from .. import app_log
from ..engine import open_backend, recover_after_stop, start_early
from ..paths import AppPaths
from ..settings import Settings
from ..startup_clock import milestone
from ..store.history import HistoryStore


def main(model: str | None = None, base_url: str | None = None, model_name: str | None = None,
         files: list[Path] | None = None) -> int:
    from .hand_over import hand_over

    files = list(files or [])
    paths = AppPaths.default()
    app_log.setup(paths)  # first, so a failure from here on is in the file
    if not (model or base_url) and hand_over(paths, files):
        print("CodeAct Desktop is already running: it took the files." if files
              else "CodeAct Desktop is already running.")
        return 0
    store = HistoryStore(paths.history_db)
    recovered = recover_after_stop(store)  # turns cut off when the app was last killed
    settings, problem = Settings.load(paths.settings_file)
    # The command line wins for this run; otherwise the model the user chose last time.
    if not (model or base_url):
        if settings.model_path and Path(settings.model_path).exists():
            model = settings.model_path
        elif settings.base_url:
            base_url, model_name = settings.base_url, settings.model_name or None
    loader = None
    if model or base_url:
        # A server knows its own context; the llama.cpp options are for a local file.
        options = settings.backend_options() if model else {}
        loader = lambda: open_backend(model_path=model, base_url=base_url, model_name=model_name,  # noqa: E731
                                      **options)
    # pygments.lexers and .formatters put a new module in sys.modules as their import ends; the
    # model's load thread imports them too (openai -> httpx -> rich), and an import at the same
    # moment can get the half-made one ("cannot import name 'PythonLexer'"). So, before any thread:
    import pygments.formatters  # noqa: F401
    import pygments.lexers  # noqa: F401

    # Before Qt's imports and the window's: the model and the first kernel load meanwhile.
    early = start_early(paths, store, loader, open_conversation=not files)

    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from ..resources import resource_path

    # X11's WM_CLASS instance comes from argv[0]: the same name however the app was started
    # (a script, python -m, the bundle), so the desktop entry's StartupWMClass matches.
    app = QApplication.instance() or QApplication(["codeact-desktop"])
    app.setApplicationName("CodeAct Desktop")
    app.setDesktopFileName("codeact-desktop")  # Wayland matches the window to its menu entry and icon
    icon = QIcon()  # several sizes: X11 leaves out an icon as large as 256 px from _NET_WM_ICON
    for size in (48, 128, 256):
        icon.addFile(str(resource_path("icons", f"codeact-desktop-{size}.png")))
    app.setWindowIcon(icon)
    from .main_window import MainWindow
    from .single_instance import FileOpenFilter, InstanceServer

    window = MainWindow(store, paths, early.load_backend if loader else None, settings,
                        early_kernels={early.conversation_id: early.kernel} if early.kernel else None)
    later_launches = InstanceServer(paths, window)
    later_launches.files_opened.connect(window.open_files)
    if sys.platform == "darwin":  # only macOS sends files as events; the filter sees every event of the app
        dock = FileOpenFilter(window)
        app.installEventFilter(dock)
        dock.files_opened.connect(window.open_files)
    if files:
        QTimer.singleShot(0, lambda: window.open_files(files))
    if problem or recovered:
        window.statusBar().showMessage(problem or f"Recovered {recovered} conversation(s) that the app left "
                                       "mid-answer when it stopped.", 10_000)
    window.show()
    QTimer.singleShot(0, lambda: milestone("window shown"))  # after the first paint's events
    code = app.exec()
    if window.background.pool.activeThreadCount():
        # A job stuck in a system call (a network disk gone) would hold the exit for ever:
        # Qt's pool waits for its jobs. The history is already on disk; the process ends.
        logging.getLogger(__name__).warning("exiting with background work stuck: %s", window.background.running)
        logging.shutdown()
        os._exit(code)
    return code
