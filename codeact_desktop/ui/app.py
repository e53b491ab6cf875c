"""Starts the window: ``codeact-desktop`` with no subcommand."""

from __future__ import annotations

import sys

from ..agent.loop import AgentSettings
from ..engine import open_backend
from ..paths import AppPaths
from ..store.history import HistoryStore


def main(model: str | None = None, base_url: str | None = None, model_name: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("CodeAct Desktop")
    paths = AppPaths.default()
    store = HistoryStore(paths.history_db)
    loader = None
    if model or base_url:
        loader = lambda: open_backend(model_path=model, base_url=base_url, model_name=model_name)  # noqa: E731
    window = MainWindow(store, paths, loader, AgentSettings())
    window.show()
    return app.exec()
