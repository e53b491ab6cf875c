"""What a conversation shows when it is opened again (switched to, or after a restart):
a stopped answer still says so, the context counter counts it, and the model's notices
of a start are not said again at its bottom while nothing about the model changed."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from codeact_desktop.llm.scripted import ScriptedBackend
from codeact_desktop.settings import Settings
from codeact_desktop.store.history import HistoryStore
from codeact_desktop.ui.chat_view import Bubble
from codeact_desktop.ui.main_window import MainWindow

from ._helpers import LONG_REPLY, send, stop_mid_reply, wait_idle

CPU = "No GPU found: running on the CPU, so answers come slowly."
TEMPLATE = "No chat template in the file: using llama.cpp's built-in chatml."


def shown(win) -> list[tuple[str, str]]:
    """The chat top to bottom: messages as (role, text), notices as ("notice", text)."""
    return [(w.role, w.markdown) if isinstance(w, Bubble) else ("notice", w.text())
            for w in win.chat.searchable() if isinstance(w, (Bubble, QLabel))]


def restart(qtbot, app_paths, tmp_path, backend=None) -> MainWindow:
    """A new window over the same history, as after quitting and starting the app again."""
    backend = backend or ScriptedBackend([])
    win = MainWindow(HistoryStore(tmp_path / "history.sqlite3"), app_paths, lambda: backend, Settings())
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.backend is not None and win.current is not None, timeout=30_000)
    qtbot.wait(100)  # a widget added to the shown chat is shown by a queued call
    return win


def context_of(win, backend) -> str:
    """What the counter should say for the open conversation: the model's own count."""
    messages, _ = win.current.conversation.model_messages()
    return f"context {backend.count_tokens(messages)} / {backend.info.n_ctx}"


def test_a_stopped_answer_still_says_stopped_after_a_restart(qtbot, window, app_paths, tmp_path):
    win, _ = window([LONG_REPLY], piece_delay=0.003)
    stop_mid_reply(qtbot, win)
    live = shown(win)
    assert live[-1] == ("notice", "Stopped.") and live[-2][0] == "assistant"
    win.close()
    again = restart(qtbot, app_paths, tmp_path)
    assert shown(again) == live  # the cut-short answer, and that it was stopped
    again.close()


def test_the_context_counter_is_updated_after_a_stop(qtbot, window):
    win, backend = window(["word " * 3000], piece_delay=0.003)
    send(qtbot, win, "talk a lot")
    qtbot.waitUntil(lambda: win.stop_button.isEnabled(), timeout=5000)
    qtbot.wait(300)
    win.stop()  # no reply's figures come: the counter counts what was kept
    wait_idle(qtbot, win, timeout=5000)
    qtbot.waitUntil(lambda: win.context_label.text() == context_of(win, backend), timeout=5000)
    assert "word word" in win.current.conversation.model_messages()[0][-1]["content"]


def test_the_context_counter_counts_a_conversation_switched_to_or_reopened(qtbot, window, app_paths, tmp_path):
    win, backend = window(["A short answer."])
    send(qtbot, win, "answer briefly")
    wait_idle(qtbot, win)
    first = win.current.conversation.id
    first_used = context_of(win, backend)
    win.new_conversation()
    qtbot.waitUntil(lambda: win.context_label.text() == context_of(win, backend), timeout=5000)
    assert win.context_label.text() != first_used  # the system prompt alone
    row = next(i for i in range(win.conversation_list.count())
               if win.conversation_list.item(i).data(Qt.UserRole) == first)
    rect = win.conversation_list.visualItemRect(win.conversation_list.item(row))
    qtbot.mouseClick(win.conversation_list.viewport(), Qt.LeftButton, pos=rect.center())
    assert win.current.conversation.id == first
    qtbot.waitUntil(lambda: win.context_label.text() == first_used, timeout=5000)
    win.close()
    again_backend = ScriptedBackend([])
    again = restart(qtbot, app_paths, tmp_path, again_backend)
    qtbot.waitUntil(lambda: again.context_label.text() == context_of(again, again_backend), timeout=5000)
    assert " / " in again.context_label.text()
    again.close()


def test_the_models_notices_are_said_again_only_when_something_changed(qtbot, app_paths, tmp_path):
    backend = ScriptedBackend(["Hello."])
    backend.info.notes = [CPU, TEMPLATE]
    win = restart(qtbot, app_paths, tmp_path, backend)
    assert "\n".join(text for kind, text in shown(win)) == f"{CPU}\n{TEMPLATE}"
    send(qtbot, win, "hi")
    wait_idle(qtbot, win)
    first_start = shown(win)
    assert first_start[-2:] == [("user", "hi"), ("assistant", "Hello.")]
    win.close()

    same = ScriptedBackend([])
    same.info.notes = [CPU, TEMPLATE]
    win = restart(qtbot, app_paths, tmp_path, same)
    assert shown(win) == first_start  # where they were said, not again at the bottom as if new
    win.close()

    other = ScriptedBackend([])
    other.info.model, other.info.notes = "other.gguf", [CPU]
    win = restart(qtbot, app_paths, tmp_path, other)
    assert shown(win)[len(first_start):] == [("notice", f"{CPU}\nNow using other.gguf.")]  # a changed model is said
    win.close()

    worse = ScriptedBackend([])
    gpu_failed = "GPU offload failed, running on the CPU: out of memory"
    worse.info.model, worse.info.notes = "other.gguf", [CPU, gpu_failed]
    win = restart(qtbot, app_paths, tmp_path, worse)
    assert shown(win)[len(first_start) + 1:] == [("notice", f"{CPU}\n{gpu_failed}")]  # so is a new condition
    win.close()
