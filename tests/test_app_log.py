"""The app's log: one rotating UTF-8 file under the data folder, set up once, with
tracebacks whose frames and types are kept and whose messages (which may quote the
conversation) are not; Python's warnings too; out of the kernel's reach."""

from __future__ import annotations

import logging
import re
import sqlite3
import warnings

from codeact_desktop import app_log
from codeact_desktop.paths import AppPaths

log = logging.getLogger("codeact_desktop.tests")
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) \S+ [\w.]+: ")


def paths_in(tmp_path) -> AppPaths:
    return AppPaths(data=tmp_path / "data", cache=tmp_path / "cache")


def our_handlers() -> list:
    return [h for h in logging.getLogger("codeact_desktop").handlers if isinstance(h, logging.FileHandler)]


def test_setup_is_idempotent_and_writes_the_format(tmp_path):
    paths = paths_in(tmp_path)
    first = app_log.setup(paths)
    assert app_log.setup(paths) == first == paths.logs / "codeact-desktop.log"
    assert app_log.log_folder(paths) == paths.logs and first.parent == paths.logs
    assert len(our_handlers()) == 1
    log.info("loaded %d layers of %s", 12, "café")
    [line] = [t for t in app_log.tail(paths) if "loaded 12" in t]
    assert LINE.match(line) and line.endswith("MainThread codeact_desktop.tests: loaded 12 layers of café")
    assert "café" in first.read_text(encoding="utf-8")


def test_a_second_folder_moves_the_log(tmp_path):
    app_log.setup(paths_in(tmp_path / "a"))
    app_log.setup(paths_in(tmp_path / "b"))
    log.warning("where am I")
    assert len(our_handlers()) == 1
    assert any("where am I" in t for t in app_log.tail(paths_in(tmp_path / "b")))
    assert not any("where am I" in t for t in app_log.tail(paths_in(tmp_path / "a")))


def test_tracebacks_keep_frames_and_types_not_messages(tmp_path):
    paths = paths_in(tmp_path)
    app_log.setup(paths)

    def parse_reply():
        raise ValueError("the reply said SECRET-WORDS")

    try:
        try:
            parse_reply()
        except ValueError as exc:
            raise RuntimeError("while handling SECRET-WORDS") from exc
    except RuntimeError:
        log.exception("a turn failed")
    try:
        open(tmp_path / "SECRET-NAME.csv")
    except OSError:
        log.exception("could not read")
    try:
        raise sqlite3.OperationalError("database or disk is full")
    except sqlite3.Error:
        log.exception("the history failed")
    text = "\n".join(app_log.tail(paths))
    assert "SECRET" not in text
    assert "in parse_reply" in text and "\nValueError\n" in text and "\nRuntimeError\n" in text
    assert "direct cause" in text
    assert "FileNotFoundError: [Errno 2] No such file or directory" in text
    assert "sqlite3.OperationalError: database or disk is full" in text


def test_warnings_go_to_the_log(tmp_path):
    paths = paths_in(tmp_path)
    app_log.setup(paths)
    with warnings.catch_warnings():
        # pytest records warnings itself; hand them back to logging, as in the app
        warnings.simplefilter("always")
        logging.captureWarnings(False)
        logging.captureWarnings(True)
        warnings.warn("a deprecated call", DeprecationWarning, stacklevel=1)
    assert any("py.warnings" in t and "DeprecationWarning: a deprecated call" in t for t in app_log.tail(paths))


def test_it_rotates_at_one_megabyte_with_three_backups(tmp_path):
    paths = paths_in(tmp_path)
    app_log.setup(paths)
    for i in range(6000):  # ~5 MB
        log.info("figure %06d %s", i, "x" * 800)
    files = sorted(p.name for p in paths.logs.iterdir())
    assert files == ["codeact-desktop.log", "codeact-desktop.log.1", "codeact-desktop.log.2", "codeact-desktop.log.3"]
    assert all((paths.logs / f).stat().st_size <= app_log.MAX_BYTES for f in files)
    last = app_log.tail(paths, 3)
    assert len(last) == 3 and last[-1].split("figure ")[1].startswith("005999")
    # the tail reaches into the previous file when the current one is short
    in_current = len((paths.logs / "codeact-desktop.log").read_text(encoding="utf-8").splitlines())
    longer = app_log.tail(paths, in_current + 50)
    assert len(longer) == in_current + 50 and longer[-1] == last[-1]


def test_tail_without_a_log_is_empty(tmp_path):
    assert app_log.tail(paths_in(tmp_path / "none")) == []


def test_an_unwritable_folder_means_no_log_not_a_crash(tmp_path):
    (tmp_path / "data").write_text("a file where the data folder should be")
    assert app_log.setup(paths_in(tmp_path)) is None


def test_the_kernel_cannot_read_the_log(app_paths, make_kernel):
    """The log sits in the data folder, outside what the restricted kernel may read."""
    log_file = app_log.setup(app_paths)
    log.info("a line the kernel must not see")
    kernel = make_kernel()
    done = kernel.execute(f"print(open({str(log_file)!r}).read())", timeout=30)
    assert done.status == "error"
    assert "a line the kernel must not see" not in "".join(i.text for i in done.items)
