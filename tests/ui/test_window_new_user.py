"""What a new user trips over in the first minutes (issue 16), tried in the real window
offscreen with the real kernel: layout width, the live theme switch, keyboard use, the
approval card's Edit, error cards, scrolling, example prompts, the working indicator."""

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QAction, QColor, QGuiApplication, QWheelEvent
from PySide6.QtWidgets import QApplication, QLabel, QPushButton, QTextBrowser

from codeact_desktop.agent import events as ev
from codeact_desktop.settings import Settings
from codeact_desktop.ui.chat_view import Bubble
from codeact_desktop.ui.code_card import CodeCard, CodeEditor
from codeact_desktop.ui.help_dialogs import show_data_places, show_getting_started, show_restrictions, show_shortcuts
from codeact_desktop.ui.output_views import ErrorView, ImageView

from ._helpers import send, wait_idle

WIDE_PLOT = (
    "A wide plot, from https://example.com/" + "a" * 300 + "\n<execute>\nimport matplotlib.pyplot as plt\nplt.figure(figsize=(16, 3), dpi=100)\n"
    "plt.plot(range(10)); plt.show()\nprint('x' * 400)\n</execute>"
)


def column_fits(win) -> bool:
    chat = win.chat
    return chat.widget().width() <= chat.viewport().width() and not chat.horizontalScrollBar().isVisible()


@pytest.mark.parametrize("width,height", [(1240, 780), (1024, 700), (800, 600)])
def test_a_wide_plot_fits_the_column_at_any_window_width(qtbot, window, width, height):
    win, _ = window([WIDE_PLOT, "Done."])
    win.resize(width, height)
    send(qtbot, win, "plot " + "b" * 300)  # one long word: it wraps, the chat does not widen
    wait_idle(qtbot, win)
    qtbot.wait(200)
    (image,) = win.chat.findChildren(ImageView)
    assert image.pixmap_full.width() > 1200  # 16 inches at 100 dpi, less the margins cut off
    assert column_fits(win), (win.chat.widget().width(), win.chat.viewport().width())
    assert image.shown_width() <= win.chat.viewport().width()
    assert image.height() == image.heightForWidth(image.width())  # scaled, not cropped
    if width < 1100:
        assert not win.files_panel.isVisible()  # folded away for the chat's sake
    win.resize(1300, 800)
    qtbot.waitUntil(lambda: win.files_panel.isVisible() and win.files_panel.width() >= 200, timeout=2000)  # and back


def relative_luminance(color: QColor) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(color.redF()) + 0.7152 * channel(color.greenF()) + 0.0722 * channel(color.blueF())


def contrast(a: QColor, b: QColor) -> float:
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def drawn_contrast(win, widget) -> float:
    """The contrast of a widget as the window draws it (a transparent one over what is
    behind it): its most common colour (the background) against the colour farthest from
    it (the text's core pixels)."""
    image = win.grab(QRect(widget.mapTo(win, QPoint(0, 0)), widget.size())).toImage()
    counts: dict[int, int] = {}
    for y in range(0, image.height(), 1):
        for x in range(0, image.width(), 2):
            rgb = image.pixel(x, y)
            counts[rgb] = counts.get(rgb, 0) + 1
    background = QColor.fromRgb(max(counts, key=counts.get))
    text = max((QColor.fromRgb(rgb) for rgb in counts), key=lambda c: contrast(c, background))
    return contrast(text, background)


def test_switching_to_dark_applies_at_once_to_everything_already_drawn(qtbot, window):
    win, _ = window(["Look:\n<execute>\nprint('out')\nraise KeyError('month')\n</execute>", "**Done**, see above."],
                    settings=Settings(action_timeout_s=20, theme="light"))
    send(qtbot, win, "go")
    wait_idle(qtbot, win)
    win.chat.add_notice("a notice")
    win.chat.add_notice("an error notice", error=True)
    qtbot.wait(50)

    def parts():
        card = win.chat.findChildren(CodeCard)[0]
        error = card.findChildren(ErrorView)[0]
        return {
            "user": [b for b in win.chat.findChildren(Bubble) if b.role == "user"][0],
            "assistant": [b for b in win.chat.findChildren(Bubble) if b.role == "assistant"][-1],
            "notice": win.chat.findChildren(QLabel, "notice")[-1],
            "error notice": win.chat.findChildren(QLabel, "errorNotice")[-1],
            "code": card.code_view.viewport(),
            "stdout": card.streams["stdout"].viewport(),
            "exception": error.exception_label,
            "status": card.status_label,
        }

    light = {name: drawn_contrast(win, w) for name, w in parts().items()}
    settings = Settings(**{**win.settings.__dict__, "theme": "dark"})
    win.apply_settings(settings)
    qtbot.wait(100)
    assert QApplication.palette().window().color().lightness() < 128
    dark = {name: drawn_contrast(win, w) for name, w in parts().items()}
    print({name: (round(light[name], 1), round(dark[name], 1)) for name in light})  # light, dark
    for name in light:
        assert light[name] >= 4.5, (name, light[name])
        assert dark[name] >= 4.5, (name, dark[name])
    # "system" hands the palette back to the platform (light here), so it follows the OS again.
    win.apply_settings(Settings(**{**win.settings.__dict__, "theme": "system"}))
    assert QApplication.palette().window().color().lightness() > 128
    assert QApplication.palette().resolveMask() == 0


def test_tab_leaves_the_message_box_and_reaches_the_approval_buttons(qtbot, window):
    win, backend = window(["Plan.\n<execute>\nprint('hi')\n</execute>", "ok"])
    win.current.set_require_approval(True)
    qtbot.keyClicks(win.input, "a")
    qtbot.keyClick(win.input, Qt.Key_Tab)
    assert win.input.toPlainText() == "a" and not win.input.hasFocus()  # no tab typed, focus moved on
    win.input.setFocus()
    win.input.clear()
    send(qtbot, win, "run something")
    qtbot.waitUntil(lambda: any(c.approval_bar.isVisible() for c in win.chat.findChildren(CodeCard)), timeout=30_000)
    (card,) = win.chat.findChildren(CodeCard)
    # The input is empty after sending, so focus goes to Run; Tab walks the buttons.
    qtbot.waitUntil(lambda: card.run_button.hasFocus(), timeout=2000)
    order = [QApplication.focusWidget()]
    for _ in range(2):
        win.focusNextChild()
        order.append(QApplication.focusWidget())
    assert order == [card.run_button, card.edit_button, card.skip_button]
    # Every focusable control has a name a screen reader can say.
    unnamed = [w for w in win.findChildren(QPushButton) if w.isVisible() and w.focusPolicy() & Qt.TabFocus
               and not w.accessibleName()]
    assert unnamed == []
    qtbot.keyClick(win, Qt.Key_R, Qt.AltModifier)  # the shortcut runs it
    wait_idle(qtbot, win)
    assert card.status == "ok" and card.choice == "run"


def test_edit_puts_focus_in_the_editor_and_the_model_sees_the_edited_code(qtbot, window):
    win, backend = window(["I'll print.\n<execute>\nprint('original')\n</execute>", "Fine."])
    win.current.set_require_approval(True)
    send(qtbot, win, "print something")
    qtbot.waitUntil(lambda: any(c.approval_bar.isVisible() for c in win.chat.findChildren(CodeCard)), timeout=30_000)
    (card,) = win.chat.findChildren(CodeCard)
    qtbot.mouseClick(card.edit_button, Qt.LeftButton)
    editor = card.findChildren(CodeEditor)[0]
    qtbot.waitUntil(editor.hasFocus, timeout=2000)
    editor.selectAll()
    qtbot.keyClicks(editor, "print('edited by hand')")
    qtbot.keyClick(editor, Qt.Key_Return)  # a new line, not a skip
    assert card.status == "waiting"
    qtbot.keyClick(editor, Qt.Key_Return, Qt.ControlModifier)
    wait_idle(qtbot, win)
    assert card.status == "ok" and card.choice == "run (edited)"
    assert card.edited_label.isVisible()
    assert "edited by hand" in card.streams["stdout"].toPlainText()
    seen = backend.calls[-1][-1]["content"]
    assert seen.startswith("Execution Output:") and "print('edited by hand')" in seen


def test_an_error_card_shows_the_exception_and_the_failing_line_first(qtbot, window):
    code = "import pandas as pd\ndf = pd.DataFrame({'a': [1]})\n" + "x = 1\n" * 5 + "df['month']\n"
    win, _ = window([f"Reading.\n<execute>\n{code}</execute>", "Oops."])
    send(qtbot, win, "go")
    wait_idle(qtbot, win)
    (card,) = win.chat.findChildren(CodeCard)
    (error,) = card.findChildren(ErrorView)
    assert card.status == "error" and card.status_label.property("tone") == "error"
    assert error.exception_label.isVisible() and error.exception_label.text().startswith("KeyError")
    assert "month" in error.exception_label.text()
    assert error.line_label.isVisible() and "df['month']" in error.line_label.text()
    assert "line 8" in error.line_label.text()
    assert not error.traceback.isVisible()  # the whole traceback waits behind its button


def test_the_wheel_scrolls_the_chat_unless_the_output_under_it_can_still_scroll(qtbot, window):
    many = "\n".join(f"line {i}" for i in range(200))
    win, _ = window([f"Long.\n<execute>\nprint('''{many}''')\n</execute>", "Done."] * 1)
    win.resize(1000, 500)
    send(qtbot, win, "go")
    wait_idle(qtbot, win)
    for _ in range(3):  # enough below to scroll the chat
        win.chat.add_notice("padding " * 200)
    qtbot.wait(100)
    (card,) = win.chat.findChildren(CodeCard)
    stream = card.streams["stdout"]
    chat_bar = win.chat.verticalScrollBar()
    qtbot.wait(50)
    win.chat._stick_to_bottom = False
    chat_bar.setValue(0)

    def wheel(widget, dy):
        pos = QPointF(widget.width() / 2, widget.height() / 2)
        event = QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(), QPoint(0, dy), Qt.NoButton, Qt.NoModifier,
                            Qt.NoScrollPhase, False)
        QApplication.sendEvent(widget, event)

    own = stream.verticalScrollBar()
    own.setValue(0)
    before = chat_bar.value()
    wheel(stream.viewport(), -120)  # down: the output can still scroll, so it does
    assert own.value() > 0 and chat_bar.value() == before
    own.setValue(own.maximum())
    wheel(stream.viewport(), -120)  # at its end: the chat moves on
    assert chat_bar.value() > before
    # The code view never scrolls itself: the chat does.
    before = chat_bar.value()
    wheel(card.code_view.viewport(), 120)
    assert chat_bar.value() < before
    before = chat_bar.value()  # nor does a message
    wheel([b for b in win.chat.findChildren(Bubble) if b.role == "assistant"][0].viewport(), -120)
    assert chat_bar.value() > before


def test_every_empty_conversation_shows_clickable_example_prompts(qtbot, window):
    win, _ = window(["Hello."])
    win.chat.add_notice("Now using scripted.")  # what a first start shows: a notice, not a message
    examples = [b for b in win.chat.empty_hint.findChildren(QPushButton) if b.objectName() == "examplePrompt"]
    assert len(examples) >= 3 and win.chat.empty_hint.isVisible()
    qtbot.mouseClick(examples[0], Qt.LeftButton)
    assert win.input.toPlainText() == examples[0].text() and win.input.hasFocus()
    send(qtbot, win, "")
    wait_idle(qtbot, win)
    assert not win.chat.empty_hint.isVisible()
    win.new_conversation()
    assert win.chat.empty_hint.isVisible()
    # a second New conversation does not add another empty row
    rows = win.conversation_list.count()
    win.new_conversation()
    assert win.conversation_list.count() == rows


def test_the_working_indicator_says_reading_then_writing(qtbot, window):
    win, _ = window(["Hi"])
    indicator = win.chat.working
    win.chat.handle(ev.ModelWorking("reading", 0, 3000))
    assert indicator.isVisible() and "Reading the conversation" in indicator.text() and "3,000" in indicator.text()
    win.chat.handle(ev.ModelWorking("reading", 1024, 3000))
    assert "1,024 of 3,000 tokens" in indicator.text()
    win.chat.handle(ev.TextPiece("Hel"))
    assert "Writing" in indicator.text()
    win.chat.handle(ev.ReplyDone("Hel", "stop", {}))
    assert not indicator.isVisible()


def test_the_working_indicator_shows_during_a_real_turn(qtbot, window):
    win, _ = window(["x" * 400], piece_delay=0.01)
    seen = []
    win.chat.working.setText = lambda text, f=win.chat.working.setText: (seen.append(text), f(text))
    send(qtbot, win, "go")
    wait_idle(qtbot, win)
    assert any("Reading the conversation" in t for t in seen) and any("Writing" in t for t in seen)
    assert not win.chat.working.isVisible()


def test_copy_says_copied_and_restart_asks_first(qtbot, window):
    win, _ = window(["Here.\n<execute>\nprint(1)\n</execute>", "ok"])
    send(qtbot, win, "go")
    wait_idle(qtbot, win)
    (card,) = win.chat.findChildren(CodeCard)
    qtbot.mouseClick(card.copy_button, Qt.LeftButton)
    assert card.copy_button.text() == "Copied ✓" and QGuiApplication.clipboard().text() == "print(1)"
    qtbot.waitUntil(lambda: card.copy_button.text() == "Copy code", timeout=3000)
    asked = []
    win.confirm = lambda title, text, **_: asked.append(title) or False
    kernel = win.current.kernel
    pid = kernel.pid if hasattr(kernel, "pid") else None
    win.restart_kernel()
    assert asked and "Restart" in asked[0]
    assert (kernel.pid if hasattr(kernel, "pid") else None) == pid


def test_find_zoom_and_help(qtbot, window):
    win, _ = window(["The answer is **forty-two**.", "again forty-two"])
    send(qtbot, win, "what is it")
    wait_idle(qtbot, win)
    qtbot.keyClick(win, Qt.Key_F, Qt.ControlModifier)
    assert win.find_bar.isVisible() and win.find_bar.field.hasFocus()
    qtbot.keyClicks(win.find_bar.field, "forty")
    assert win.find_bar.count.text() == "1 of 1"
    bubble = [b for b in win.chat.findChildren(Bubble) if b.role == "assistant"][0]
    assert bubble.textCursor().selectedText().lower() == "forty"
    qtbot.keyClick(win.find_bar.field, Qt.Key_Escape)
    assert not win.find_bar.isVisible()

    size = bubble.font().pointSizeF()
    win.set_zoom(3)
    assert bubble.font().pointSizeF() == pytest.approx(size + 3)
    assert win.settings.chat_zoom == 3
    win.set_zoom(0)
    assert bubble.font().pointSizeF() == pytest.approx(size)

    menus = {a.text().replace("&", ""): a.menu() for a in win.menuBar().actions()}
    help_items = {a.text() for a in menus["Help"].actions() if a.text()}
    assert {"Getting started", "Keyboard shortcuts", "Where your data is", "What code can and cannot do",
            "About CodeAct Desktop"} <= help_items
    pages = {
        "shortcuts": show_shortcuts(win, win.findChildren(QAction)),
        "places": show_data_places(win, win.paths),
        "rules": show_restrictions(win, win.current.kernel.wait_ready() or win.current.kernel.sandbox),
        "start": show_getting_started(win),
    }
    text = {name: d.findChildren(QTextBrowser)[0].toPlainText() for name, d in pages.items()}
    assert "Ctrl+F" in text["shortcuts"] and "Find in conversation" in text["shortcuts"]
    assert str(win.paths.history_db) in text["places"]
    assert "cannot" in text["rules"] and "All restrictions are in force here" in text["rules"]
    assert "Enter" in text["start"]
    for dialog in pages.values():
        dialog.close()


def test_a_failed_download_shows_its_whole_message(qtbot, app_paths):
    from codeact_desktop.models.catalogue import load_catalogue
    from codeact_desktop.models.download import VerifiedFiles
    from codeact_desktop.ui.download_dialog import DownloadDialog

    entry = load_catalogue()[0]
    dialog = DownloadDialog(entry, app_paths.models, VerifiedFiles(app_paths.verified_models))
    qtbot.addWidget(dialog)
    dialog.show()
    text = ("Could not reach huggingface.co to download the model: [Errno -2] Name or service not known. "
            "Check the network connection, or use a GGUF file already on this computer.")
    dialog._on_ended(None, text)
    qtbot.wait(50)
    message = dialog.message
    assert message.isVisible() and message.text() == text
    assert message.height() >= message.heightForWidth(message.width())  # no line cut off
    assert message.geometry().bottom() < dialog.retry_button.geometry().top()


def test_what_a_new_user_tripped_over_next(qtbot, window, tmp_path):
    """From a new user's session: a removed attachment's copy, focus after attaching, the
    line count, find's leftover highlight, the status bar after a switch, Settings' hints."""
    many = "\n".join(f"row {i}" for i in range(200))
    win, _ = window([f"Rows, as you asked.\n<execute>\nprint('''{many}''')\n</execute>", "The rows, uniquely."])
    csv = tmp_path / "sales.csv"
    csv.write_text("a\n1\n")
    workspace = Path(win.current.conversation.workspace)
    win.attach([csv])
    assert win.input.hasFocus()
    qtbot.waitUntil(lambda: bool(win.tray.files()), timeout=10_000)
    assert (workspace / "sales.csv").exists()
    win.tray.remove(win.tray.files()[0])
    assert not (workspace / "sales.csv").exists()  # taken back: the model cannot read it
    win.attach([csv])
    qtbot.waitUntil(lambda: bool(win.tray.files()), timeout=10_000)
    assert [a.name for a in win.tray.files()] == ["sales.csv"]  # not "sales (1).csv"

    send(qtbot, win, "show the rows")
    wait_idle(qtbot, win)
    # Editing the message puts its file back in the tray; taking it out there keeps the
    # file, which the message still names until the edit is sent.
    win.edit_last()
    win.tray.remove(win.tray.files()[0])
    win.cancel_edit()
    assert (workspace / "sales.csv").exists()
    (card,) = win.chat.findChildren(CodeCard)
    block = card.streams["stdout"].parentWidget()
    assert block.show_all_button.text() == "Show all 200 lines"

    win.find_bar.open_bar()
    qtbot.keyClicks(win.find_bar.field, "u")
    first = win.find_bar.matches[0].widget
    assert first.textCursor().selectedText() == "u"  # in "you"
    qtbot.keyClicks(win.find_bar.field, "niq")
    assert win.find_bar.count.text() == "1 of 1" and first.textCursor().selectedText() == ""
    win.find_bar.close_bar()
    selected = [w.textCursor().selectedText() for w in win.chat.findChildren(Bubble)]
    assert selected == [""] * len(selected)  # nothing left highlighted

    assert win.speed_label.text() or win.context_label.text().startswith("context ")
    win.new_conversation()
    assert win.speed_label.text() == "" and win.context_label.text() == "context 8192"

    from codeact_desktop.ui.settings_dialog import SettingsDialog
    dialog = SettingsDialog(win.settings, win)
    dialog.show()
    qtbot.wait(50)
    hints = dialog.findChildren(QLabel, "hint")
    assert hints and all(h.height() >= h.heightForWidth(h.width()) for h in hints if h.isVisible())
    dialog.close()

    # Attached, never sent, window closed: the copy goes with it.
    other = tmp_path / "notes.txt"
    other.write_text("n")
    win.attach([other])
    qtbot.waitUntil(lambda: bool(win.tray.files()), timeout=10_000)
    new_workspace = Path(win.current.conversation.workspace)
    assert (new_workspace / "notes.txt").exists()
    win.close()
    assert not (new_workspace / "notes.txt").exists()
