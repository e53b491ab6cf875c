"""The window end to end with real llama.cpp: the user drops the GGUF onto a window that
has no model, says yes, and asks; the model's code runs in the real kernel."""

import pytest

from codeact_desktop.settings import Settings
from codeact_desktop.store.history import HistoryStore
from codeact_desktop.ui.chat_view import Bubble
from codeact_desktop.ui.main_window import MainWindow

from ._helpers import send, wait_idle
from .test_window_files import drop

pytestmark = pytest.mark.model


def test_drop_the_gguf_then_ask(qtbot, app_paths, tmp_path, gguf_path, monkeypatch):
    win = MainWindow(HistoryStore(tmp_path / "history.sqlite3"), app_paths, None,
                     Settings(n_ctx=4096, max_actions=1, action_timeout_s=30))
    qtbot.addWidget(win)
    win.show()
    assert "No model yet" in win.model_label.full_text and win.current is None
    monkeypatch.setattr(win, "confirm", lambda title, text, **_: "Use gemma" in text)
    assert drop(win, [gguf_path])
    qtbot.waitUntil(lambda: win.backend is not None and win.current is not None, timeout=120_000)
    assert "llama.cpp" in win.model_label.full_text or "gemma" in win.model_label.full_text.lower()
    assert win.settings.model_path == str(gguf_path)  # remembered for the next start
    # One worked example, as CodeAct's few-shot prompts do, so the 270M model answers in format.
    conversation = win.current.conversation
    conversation.add_message("user", "user", "What is 6 times 7?")
    conversation.add_message("assistant", "assistant", "<execute>\nprint(6*7)\n</execute>")
    conversation.add_message("user", "observation", "Execution Output:\n42\n")
    conversation.add_message("assistant", "assistant", "6 times 7 is 42.")
    win.chat.show_conversation(conversation)
    send(qtbot, win, "What is 12 times 11?")
    wait_idle(qtbot, win, timeout=180_000)
    card = list(win.chat.cards.values())[0]  # a second action, if any, is over the limit of 1
    assert card.status == "ok" and "132" in card.streams["stdout"].toPlainText()
    assert "tokens/s" in win.speed_label.text()
    assert [b.markdown for b in win.chat.findChildren(Bubble) if b.role == "user"][-1] == "What is 12 times 11?"
    win.close()
