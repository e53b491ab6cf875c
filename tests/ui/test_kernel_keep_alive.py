"""Conversations left behind give their kernel's memory back: beyond the few used last
(kernel/keep_alive.py) the kernel stops; going back starts a new one, and the conversation
says its variables were lost, while its files stay."""

from codeact_desktop.kernel.keep_alive import KernelKeepAlive
from codeact_desktop.resources import messages

from ._helpers import send, wait_idle


def test_a_conversation_beyond_the_kept_few_has_its_kernel_stopped_and_says_so_on_return(qtbot, window):
    win, backend = window([
        "<execute>x = 41\nopen('kept.txt', 'w').write('still here')</execute>", "Set.",
        "<execute>y = 2</execute>", "Set.",
        "<execute>print(x + 1)</execute>", "It is gone.",
    ])
    win.keep_alive = KernelKeepAlive(keep=1, idle_s=3600)
    send(qtbot, win, "set x")
    wait_idle(qtbot, win)
    first = win.current
    first_id, first_kernel = first.conversation.id, first.kernel
    win.new_conversation()
    qtbot.waitUntil(lambda: win.current is not first and win.current.kernel.is_alive, timeout=30_000)
    send(qtbot, win, "set y")
    wait_idle(qtbot, win)
    # Only the current conversation is kept: the first one's kernel stops in the background.
    qtbot.waitUntil(lambda: not first_kernel.is_alive, timeout=30_000)
    assert first_id not in win.controllers
    win._open(first_id)
    qtbot.waitUntil(lambda: win.current.kernel.is_alive, timeout=30_000)
    assert win.current is not first and win.current.kernel is not first_kernel
    notices = [m["content"] for m in win.current.conversation.messages() if m["kind"] == "notice"]
    assert messages()["kernel_state_lost"] in notices
    send(qtbot, win, "x + 1?")
    wait_idle(qtbot, win)
    observation = win.current.conversation.actions()[-1]["observation"]
    assert "NameError" in observation  # a new kernel: x went with the old one
    assert (win.current.conversation.workspace / "kept.txt").read_text() == "still here"
