"""The real window, offscreen, with the real kernel and a scripted model."""

import pytest

from codeact_desktop.llm.scripted import ScriptedBackend
from codeact_desktop.settings import Settings
from codeact_desktop.store.history import HistoryStore
from codeact_desktop.ui.main_window import MainWindow

@pytest.fixture
def window(qtbot, app_paths, tmp_path):
    created = []

    def make(replies, settings=None, **backend_kwargs):
        store = HistoryStore(tmp_path / "history.sqlite3")
        backend = ScriptedBackend(replies, **backend_kwargs)
        win = MainWindow(store, app_paths, lambda: backend, settings or Settings(action_timeout_s=20))
        qtbot.addWidget(win)
        win.show()
        win.activateWindow()  # as the user's click would; shortcuts need the active window
        qtbot.waitUntil(lambda: win.backend is not None and win.current is not None and win.isActiveWindow(), timeout=30_000)
        created.append(win)
        return win, backend

    yield make
    for win in created:
        win.close()
