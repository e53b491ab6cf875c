"""The first run: the welcome screen with no model, the download dialog against a local
server that speaks the Hub's protocol (progress moves, cancel, resume, then the real
model loads; quitting mid-download stops it), a file that is not a model, and connecting
to a real OpenAI-compatible server. Each choice is remembered."""

from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from codeact_desktop.models.catalogue import find_entry
from codeact_desktop.models.download import partial_download, target_path
from codeact_desktop.paths import AppPaths
from codeact_desktop.settings import Settings
from codeact_desktop.store.history import HistoryStore
from codeact_desktop.ui import model_setup
from codeact_desktop.ui.main_window import MainWindow

from ..conftest import free_port
from ..models.fake_hub import serving

REPO, FILE = "test-org/welcome-gguf", "tiny é.gguf"


@dataclass(frozen=True)
class FreshPaths(AppPaths):
    """A new user's settings, models and workspaces; the shared kernel venv (made once per run)."""
    own: Path = Path()
    settings_file = property(lambda self: self.own / "settings.json")
    models = property(lambda self: self.own / "models")
    verified_models = property(lambda self: self.own / "models" / "verified.json")
    workspaces = property(lambda self: self.own / "workspaces")


@pytest.fixture
def first_run(qtbot, app_paths, tmp_path, monkeypatch):
    """A window as a new user sees it: no model, nothing remembered."""
    paths = FreshPaths(data=app_paths.data, cache=app_paths.cache, own=tmp_path / "new user")
    windows = []

    def make(entries=None):
        if entries is not None:
            monkeypatch.setattr(model_setup, "load_catalogue", lambda: entries)
        win = MainWindow(HistoryStore(tmp_path / "history.sqlite3"), paths, None,
                         Settings(n_ctx=2048, action_timeout_s=20))
        qtbot.addWidget(win)
        win.show()
        windows.append(win)
        return win

    yield make
    for win in windows:
        win.close()


@pytest.fixture
def hub(gguf_path, monkeypatch, tmp_path):
    with serving(monkeypatch, tmp_path, REPO, FILE, gguf_path.read_bytes()) as server:
        yield server


def test_welcome_screen_shows_the_default_model_and_this_computer(qtbot, first_run):
    win = first_run()
    welcome = win.models.welcome
    assert win.pages.currentWidget() is welcome and win.current is None
    default = find_entry()
    assert welcome.entry == default and "(recommended)" in welcome.model_choice.currentText()
    qtbot.waitUntil(lambda: welcome.hardware is not None, timeout=10_000)
    facts = welcome.facts.text()
    assert "Download: 7.2 GB" in facts and "Free disk:" in facts
    assert "Memory needed: about 8.4 GB; this computer has" in facts and "GPU:" in facts
    assert welcome.download_button.text() == "Download (7.2 GB)"
    assert not welcome.back_button.isVisible()


def test_download_dialog_progress_cancel_resume_then_the_model_loads(qtbot, first_run, hub, tmp_path):
    entry = replace(find_entry(), id="welcome-test", name="Tiny test model", repo=REPO, file=FILE,
                    size_bytes=len(hub.data))
    win = first_run([entry])
    models_dir = win.models.paths.models
    hub.delay_per_chunk = 0.04  # ~10 s for the whole file: time to watch it and to cancel
    qtbot.mouseClick(win.models.welcome.download_button, Qt.LeftButton)
    dialog = win.models.download_dialog
    qtbot.waitUntil(lambda: dialog.bar.value() > 0, timeout=20_000)
    first = dialog.bar.value()
    qtbot.waitUntil(lambda: dialog.bar.value() > first + 50, timeout=20_000)  # it moves
    assert "MB of 241.4 MB" in dialog.detail.text() and "/s" in dialog.detail.text() and "left" in dialog.detail.text()
    qtbot.mouseClick(dialog.cancel_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=20_000)
    kept = partial_download(entry, models_dir)
    assert kept > 0 and "cancelled" in dialog.message.text() and dialog.retry_button.text() == "Resume"
    assert not target_path(entry, models_dir).exists()  # nothing loadable yet
    assert "kept; the download continues from there" in dialog.detail.text()
    win.models.welcome.refresh()
    assert win.models.welcome.download_button.text().startswith("Resume download (")

    hub.delay_per_chunk = 0.0
    qtbot.mouseClick(dialog.retry_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: win.backend is not None and win.current is not None, timeout=120_000)  # downloaded, verified, loaded
    resumed_from = int(hub.gets()[-1]["range"][6:].split("-")[0])
    assert resumed_from >= kept
    assert win.pages.currentIndex() == 0 and win.backend.info.kind == "llama.cpp"
    assert win.settings.model_path == str(target_path(entry, models_dir))
    assert Settings.load(win.paths.settings_file)[0].model_path == win.settings.model_path  # remembered


def test_quit_mid_download_stops_the_transfer(qtbot, first_run, hub):
    entry = replace(find_entry(), id="quit-test", name="Tiny test model", repo=REPO, file=FILE,
                    size_bytes=len(hub.data))
    win = first_run([entry])
    models_dir = win.models.paths.models
    hub.delay_per_chunk = 0.04  # ~10 s for the whole file: time to quit halfway
    qtbot.mouseClick(win.models.welcome.download_button, Qt.LeftButton)
    dialog = win.models.download_dialog
    qtbot.waitUntil(lambda: partial_download(entry, models_dir) > 0, timeout=20_000)
    win.close()
    assert dialog.cancel_event.is_set()
    kept = partial_download(entry, models_dir)
    qtbot.wait(500)
    assert partial_download(entry, models_dir) == kept > 0  # stopped, not still writing as the app exits
    assert not target_path(entry, models_dir).exists()


def test_download_failure_is_shown_and_can_be_tried_again(qtbot, first_run, hub):
    entry = replace(find_entry(), id="missing", repo=REPO, file="absent.gguf", size_bytes=1000)
    win = first_run([entry])
    qtbot.mouseClick(win.models.welcome.download_button, Qt.LeftButton)
    dialog = win.models.download_dialog
    qtbot.waitUntil(lambda: not dialog.running and dialog.message.isVisibleTo(dialog), timeout=20_000)
    assert "was not found" in dialog.message.text() and dialog.retry_button.text() == "Try again"
    assert win.current is None


def test_a_file_that_is_not_a_model_is_explained_on_the_welcome_screen(qtbot, first_run, tmp_path):
    win = first_run()
    empty = tmp_path / "modèle vide.gguf"
    empty.write_bytes(b"")
    win.models.offer_file(empty)
    welcome = win.models.welcome
    qtbot.waitUntil(lambda: welcome.problem.isVisibleTo(welcome), timeout=10_000)
    assert "is empty (0 bytes)" in welcome.problem.text() and win.backend is None


@pytest.mark.model
def test_connect_to_a_server_from_the_welcome_screen(qtbot, first_run, server_url):
    win = first_run()
    welcome = win.models.welcome
    welcome.server_url.setText(f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    qtbot.mouseClick(welcome.connect_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: welcome.problem.isVisibleTo(welcome), timeout=15_000)
    assert "Cannot reach the server" in welcome.problem.text() and win.current is None
    welcome.server_url.setText(server_url)
    qtbot.mouseClick(welcome.connect_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: win.backend is not None and win.current is not None, timeout=30_000)
    assert "gemma-test" in win.model_label.full_text and not welcome.problem.isVisibleTo(welcome)
    saved, _ = Settings.load(win.paths.settings_file)
    assert saved.base_url == server_url and saved.model_path == ""
    win.show_models()  # File → Models… comes back with a way back
    assert win.pages.currentWidget() is welcome and welcome.back_button.isVisibleTo(welcome)
    qtbot.mouseClick(welcome.back_button, Qt.LeftButton)
    assert win.pages.currentIndex() == 0
