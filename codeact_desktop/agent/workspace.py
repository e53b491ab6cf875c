"""Which files an action produced: a before/after look at the workspace.

Links the code made are not followed and not listed: a produced "file" that points at
``~/.ssh`` must never be opened, saved or exported by the app on the user's behalf. The
look is bounded, so code that writes a million files slows nothing after it down.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..store.history import OUTPUTS_DIR
from ..visible_text import visible_name, well_formed

MAX_ENTRIES = 20_000  # about 0.1 s to look at here; beyond it, what changed is not listed
# Folders deep a produced file is listed: the Files panel checks each row folder by folder
# (no link followed), and 500 files 1,900 folders down made one refresh take 7 s.
MAX_LISTED_DEPTH = 32

_BY_DESCRIPTOR = os.scandir in os.supports_fd and hasattr(os, "O_NOFOLLOW") and hasattr(os, "O_DIRECTORY")
Files = dict[str, tuple[int, int]]  # relative path -> (size, mtime_ns)


@dataclass
class Snapshot:
    """The workspace's files at one moment (size and modification time), for telling what an action wrote."""

    files: Files = field(default_factory=dict)
    complete: bool = True  # False: the workspace holds more than MAX_ENTRIES entries


def snapshot(workspace: Path, max_entries: int = MAX_ENTRIES, with_ctime: bool = False) -> Snapshot:
    """``with_ctime``: each file's status-change time too (size, mtime_ns, ctime_ns)."""
    if _BY_DESCRIPTOR:
        return _snapshot_by_descriptor(workspace, max_entries, with_ctime)
    # Windows: by name, with the race that is one reason it counts as not isolated.
    found: Files = {}
    seen = 0
    todo = [("", str(workspace))]
    while todo:
        prefix, folder = todo.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue
        with entries:
            for entry in entries:
                seen += 1
                if seen > max_entries:
                    return Snapshot(found, complete=False)
                if well_formed(entry.name) != entry.name:
                    continue  # not valid UTF-8: it could not be stored or shown as its name
                name = prefix + entry.name
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    if name != OUTPUTS_DIR:
                        todo.append((name + "/", entry.path))
                elif stat.S_ISREG(info.st_mode):
                    found[name] = ((info.st_size, info.st_mtime_ns, info.st_ctime_ns) if with_ctime
                                   else (info.st_size, info.st_mtime_ns))
    return Snapshot(found)


def _snapshot_by_descriptor(workspace: Path, max_entries: int, with_ctime: bool) -> Snapshot:
    """Each folder listed through a descriptor checked to be the folder its parent listed:
    listing by name, a folder swapped for a link to ``~`` between its parent's listing and
    its own was listed, ``~``'s files reported (tests/security/test_attacks_workspace_watch.py)."""
    found: Files = {}
    seen = 0
    try:
        todo = [("", str(workspace), os.stat(workspace))]
    except OSError:
        return Snapshot(found)
    while todo:
        prefix, path, expected = todo.pop()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            mine = os.fstat(fd)
            if (mine.st_dev, mine.st_ino) != (expected.st_dev, expected.st_ino):
                continue  # not the folder that was listed there: a link on the way, or swapped
            with os.scandir(fd) as entries:
                for entry in entries:
                    seen += 1
                    if seen > max_entries:
                        return Snapshot(found, complete=False)
                    if well_formed(entry.name) != entry.name or (not prefix and entry.name == OUTPUTS_DIR):
                        continue
                    try:
                        info = entry.stat(follow_symlinks=False)  # by the descriptor: no link followed
                    except OSError:
                        continue
                    name = prefix + entry.name
                    if stat.S_ISDIR(info.st_mode):
                        todo.append((name + "/", f"{path}/{entry.name}", info))
                    elif stat.S_ISREG(info.st_mode):
                        found[name] = ((info.st_size, info.st_mtime_ns, info.st_ctime_ns) if with_ctime
                                       else (info.st_size, info.st_mtime_ns))
        except OSError:
            continue
        finally:
            os.close(fd)
    return Snapshot(found)



def changed_files(before: Snapshot, after: Snapshot) -> list[tuple[str, int]]:
    """New or modified files, with their sizes, newest names last."""
    old, new = before.files, after.files
    return [(p, new[p][0]) for p in sorted(new) if old.get(p) != new[p]]


# Kinds a desktop's "open" may run rather than show: launchers, scripts, installers,
# shortcuts, disk images that mount, browser add-ons, documents with macros, and (as
# folders) the bundles macOS launches. Code made them, so the app does not hand them to
# the OS to open.
RUNNABLE_SUFFIXES = frozenset("""
.desktop .sh .bash .zsh .fish .csh .ksh .command .tool .terminal .app .pkg .mpkg .dmg .scpt .applescript
.workflow .action .webloc .inetloc .exe .com .bat .cmd .msi .msp .msix .appx .ps1 .psm1 .psd1 .vbs .vbe
.js .jse .wsf .wsh .hta .scr .pif .lnk .url .reg .cpl .msc .inf .jar .jnlp .appimage .run .bin .elf .so
.py .pyw .pyc .pyz .pl .rb .php .lua .library-ms .settingcontent-ms .xbs .sys .drv .dll
.application .appref-ms .chm .iso .img .vhd .vhdx .deb .rpm .snap .flatpak .flatpakref .flatpakrepo .xpi
.crx .docm .dotm .xlsm .xltm .xlam .pptm .potm .ppam .ppsm .sldm .bundle .framework .prefpane .saver
.kext .plugin .qlgenerator .mdimporter .service
""".split())
# What a desktop tells by content, whatever the name: a suffix-less PE is run by wine,
# a suffix-less shell script by the shell.
_RUNNABLE_STARTS = (b"MZ", b"\x7fELF", b"#!", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
                    b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"!<arch>", b"\xed\xab\xee\xdb", b"flatpak\x00")
# Found anywhere in the first bytes, as shared-mime-info searches: desktop entries may open
# with comments, and a Flatpak reference installs an app.
_RUNNABLE_INSIDE = (b"[desktop entry]", b"[flatpak ref]", b"[flatpak repo]")
# Pages open in the web browser, which has the network the kernel lacks: what the code read
# could leave with the page's first request. Opened only once the user says so.
PAGE_SUFFIXES = frozenset(".html .htm .xhtml .xht .shtml .svg .svgz .mht .mhtml .xml".split())
_PAGE_MARKS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<svg", b"<script", b"<iframe",
               b"<img", b"<meta", b"<link", b"<style", b"<a href", b"<table", b"<form", b"<object", b"<embed",
               b"<?xml", b"mime-version:")


def why_not_open(workspace: Path, relative: str) -> str:
    """Why the app will not ask the OS to open this workspace entry ("" when it will)."""
    from .. import no_follow

    kind = no_follow.kind(workspace, relative)
    name = visible_name(Path(relative).name)  # the code chose it: one visible line
    if kind == "missing":
        return f"{name} is no longer in the conversation's folder."
    if kind in ("link", "other"):
        return f"{name} is a link or a special file the code made; the app does not follow it."
    runnable = Path(relative).suffix.lower() in RUNNABLE_SUFFIXES
    if kind == "file":
        mode = os.lstat(Path(workspace) / relative).st_mode
        runnable = runnable or bool(mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)) \
            or _starts_runnable(workspace, relative)
    if runnable:
        return (f"{name} could start a program when opened, and the code wrote it, so it is not opened "
                "from here. Use Show in folder to look at it.")
    return ""


def _starts_runnable(workspace: Path, relative: str) -> bool:
    head = file_head(workspace, relative)
    # What cannot be read plainly is not handed on.
    return head is None or head.startswith(_RUNNABLE_STARTS) or any(m in head.lower() for m in _RUNNABLE_INSIDE)


def file_head(workspace: Path, relative: str, size: int = 4096, as_written: bool = False) -> bytes | None:
    """The file's first bytes, from its first non-blank one (``as_written``: from its first
    byte, as the desktop's type database reads them: some types sit at a fixed offset);
    None when it cannot be read plainly."""
    from .. import no_follow

    try:
        head = no_follow.read_head(workspace, relative, size)
    except OSError:
        return None
    return head if as_written else without_leading_blanks(head)


def without_leading_blanks(head: bytes | None) -> bytes | None:
    """A file's head from its first byte that is not blank (nor a UTF-8 byte order mark)."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n") if head is not None else None


def looks_like_page(workspace: Path, relative: str) -> bool:
    """Whether a file is a web page or an SVG, by its name or anywhere in its first 4 KB:
    the desktop sniffs `notes` holding a line of text and then `<html>` as a page."""
    head = (file_head(workspace, relative) or b"").lower()
    return Path(relative).suffix.lower() in PAGE_SUFFIXES or any(m in head for m in _PAGE_MARKS)


def page_question(relative: str) -> str:
    """What to ask before a page the code wrote opens in the browser."""
    return (f"{visible_name(Path(relative).name)} may open in your web browser, which can reach the internet. "
            "The code wrote this page, so it could send what the code read to another computer when it "
            "opens. Open it only if you trust it.")
