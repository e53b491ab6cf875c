"""The window's word on the kernel's restrictions: the status shows the layers, the
per-conversation network switch restarts the kernel with the network, and a kernel
that nothing restricts makes every action wait for approval, with the reason."""

import socket

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel

from codeact_desktop.kernel import conversation_kernel as session_module
from codeact_desktop.ui.code_card import CodeCard

from ._helpers import send, wait_idle

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="POSIX kernels")


def test_status_shows_the_layers_and_the_network_switch_works(qtbot, window, monkeypatch):
    win, _ = window(["never"])
    status = win.sandbox_status
    qtbot.waitUntil(lambda: status.text().startswith("Restricted"), timeout=30_000)
    assert "network off" in status.text() and "Landlock" in status.toolTip()
    win.new_conversation()  # a second conversation's kernel is shown too
    qtbot.waitUntil(lambda: status.text().startswith("Restricted"), timeout=30_000)
    monkeypatch.setattr(win, "confirm", lambda title, text, **_: "internet" in text)
    status.network_action.trigger()
    kernel, conversation = win.current.kernel, win.current.conversation
    qtbot.waitUntil(lambda: kernel.network and not kernel.is_starting and "network on" in status.text(),
                    timeout=60_000)
    assert conversation.network_allowed()  # remembered for this conversation
    assert not kernel.sandbox.raw["network_namespace"]["applied"]


def test_a_restriction_that_breaks_the_start_falls_back_to_asking(qtbot, window, monkeypatch):
    # As a sandbox-exec profile that macOS rejected would: the restricted kernel dies at once.
    monkeypatch.setattr(session_module, "launcher_argv", lambda *args: ["/bin/false"])
    win, backend = window(["<execute>print('ran')</execute>", "done"])
    qtbot.waitUntil(lambda: win.sandbox_status.text() == "Not restricted", timeout=30_000)
    assert "approval" in win.sandbox_status.toolTip()
    send(qtbot, win, "run something")
    qtbot.waitUntil(lambda: any(c.approval_bar.isVisible() for c in win.chat.findChildren(CodeCard)), timeout=10_000)
    card = win.chat.findChildren(CodeCard)[0]
    qtbot.mouseClick(card.run_button, Qt.LeftButton)
    wait_idle(qtbot, win)
    assert "ran" in card.streams["stdout"].toPlainText()
    notices = [n.text() for n in win.chat.findChildren(QLabel, "errorNotice")]
    assert any("not fully restricted" in n and "the restricted start failed" in n for n in notices)


# Code hidden from the person who approves it, each a way that worked on the card before:
# a lone CR (IPython runs what follows as a line of its own; the card cut it off), a U+2028
# (drawn as a new line the card's height did not count), bidi isolates that draw a string's
# end as a comment (Trojan Source), and a call pushed out of sight by 300 spaces.
HIDDEN_CODE = {
    "cr": ('print("counting rows")\rimport os; os.remove("notes.txt")', "\\rimport os"),
    "u2028": ('total = 3\u2028import os\nprint(total)', "\\u2028import os"),
    "bidi": ('access = "user"\nif access != "none\u202e \u2066# not admin\u2069 \u2066":  # check\n'
             '    print("admin")', '"none\\u202e \\u2066# not admin\\u2069 \\u2066"'),
    "spaces": ('print("hello")' + " " * 300 + '; import shutil; shutil.rmtree("data")', "shutil.rmtree"),
    # From a second independent run: a variation selector is legal in a Python name and draws
    # as nothing, so this card drew pixel for pixel as the harmless one and removed the home.
    "selector": ('import os, shutil\npath = os.path.expanduser("~")\npath\ufe00 = "./build"  # only the build folder\n'
                 "shutil.rmtree(path)", 'path\\ufe00 = "./build"'),
    # Homoglyphs: a Cyrillic р and а make a second name that draws as `path`.
    "lookalike": ('import os, shutil\n\u0440\u0430th = os.path.expanduser("~")\npath = "./build"  # only the build folder\n'
                  "shutil.rmtree(\u0440\u0430th)", "shutil.rmtree(\u0440\u0430th)"),
}


def test_code_waiting_for_approval_hides_nothing_from_the_person(qtbot, window, monkeypatch):
    monkeypatch.setattr(session_module, "launcher_argv", lambda *args: ["/bin/false"])  # every action asks
    replies = [r for code, _ in HIDDEN_CODE.values() for r in (f"<execute>\n{code}\n</execute>", "ok")]
    win, backend = window(replies)
    qtbot.waitUntil(lambda: win.sandbox_status.text() == "Not restricted", timeout=30_000)
    for name, (code, shown) in HIDDEN_CODE.items():
        send(qtbot, win, f"run the {name} one")
        qtbot.waitUntil(lambda: any(c.approval_bar.isVisible() for c in win.chat.findChildren(CodeCard)),
                        timeout=10_000)
        card = next(c for c in win.chat.findChildren(CodeCard) if c.approval_bar.isVisible())
        qtbot.waitUntil(lambda c=card: c.code_view.viewport().width() > 200)
        drawn = card.code_view.toPlainText()
        assert shown in drawn, (name, drawn)
        assert not any(c in drawn for c in "\r\u2028\u202e\u2066\u2069\ufe00"), name
        document = card.code_view.document()
        assert document.size().height() <= card.code_view.viewport().height(), name  # no line cut off
        assert document.idealWidth() <= card.code_view.viewport().width() + 1, name  # none out of sight
        assert card.odd_characters.isVisible() == (name != "spaces"), name
        assert ("U+0440 CYRILLIC SMALL LETTER ER" in card.odd_characters.text()) == (name == "lookalike"), name
        marked = any(mark in card.code_view.toHtml() for mark in ("#ffc9c9", "#7a2626"))  # the letters, on screen
        assert marked == (name == "lookalike"), name
        assert card.code == code  # what runs is what the model wrote: the card only shows it plainly
        card.copy_button.click()
        assert QGuiApplication.clipboard().text() == card.shown_code
        qtbot.mouseClick(card.skip_button, Qt.LeftButton)
        wait_idle(qtbot, win)
