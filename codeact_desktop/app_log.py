"""The app's own log: a rotating file under the data folder that a user can open or send.

It records what happened to the app (failures with their tracebacks, starts, versions),
never what was said: no user message, code, output or model reply goes in. Code logs
types, ids, counts and figures; and because an exception's message may quote any of
those (a parse error quoting a reply, a server echoing the request), tracebacks are
written with their frames and exception types only, and the messages only of the kinds
whose text is the system's own (OS and SQLite errors).

The folder is outside everything the kernel may read (``kernel/sandbox.py``'s policy
grants the kernel venv, the conversation's workspace and its own home, not ``logs``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import traceback
from collections import deque
from logging.handlers import RotatingFileHandler
from pathlib import Path

from .paths import AppPaths

LOGGER_NAME = "codeact_desktop"
LOG_FILE_NAME = "codeact-desktop.log"
MAX_BYTES = 1 << 20
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"

_lock = threading.Lock()
_handler: RotatingFileHandler | None = None


class ContentFreeFormatter(logging.Formatter):
    """Formats tracebacks without the exception messages that could quote conversation
    content: the frames (our code's file, line and function) and the exception types."""

    def formatException(self, exc_info) -> str:  # noqa: N802 - logging's name
        _, exc, _ = exc_info
        return "\n".join(_exception_lines(exc, seen=set()))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return stack_info  # frames only: no values


def _exception_lines(exc: BaseException | None, seen: set[int]) -> list[str]:
    if exc is None or id(exc) in seen:
        return []
    seen.add(id(exc))
    lines: list[str] = []
    if exc.__cause__ is not None:
        lines += _exception_lines(exc.__cause__, seen)
        lines.append("The above exception was the direct cause of:")
    elif exc.__context__ is not None and not exc.__suppress_context__:
        lines += _exception_lines(exc.__context__, seen)
        lines.append("During handling of the above exception, another occurred:")
    lines.append("Traceback (most recent call last):")
    for frame in traceback.extract_tb(exc.__traceback__):
        lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
    lines.append(safe_description(exc))
    return lines


def safe_description(exc: BaseException) -> str:
    """The exception's type, and its message where that is the system's own words."""
    name = f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
    if isinstance(exc, sqlite3.Error):
        return f"{name}: {exc}"  # SQLite's fixed texts ("database or disk is full")
    if isinstance(exc, OSError) and exc.strerror:
        return f"{name}: [Errno {exc.errno}] {exc.strerror}"  # not the file name: it may be the user's
    return name


def log_folder(paths: AppPaths) -> Path:
    return paths.logs


def log_file(paths: AppPaths) -> Path:
    return log_folder(paths) / LOG_FILE_NAME


def setup(paths: AppPaths) -> Path | None:
    """Sends the ``codeact_desktop`` logger (and Python's warnings) to the rotating log
    file. Idempotent: a second call for the same folder changes nothing; a call for another
    folder (a test's) moves the log there. None: the folder cannot be written, and the app
    goes on without a log rather than not start."""
    global _handler
    target = log_file(paths)
    with _lock:
        if _handler is not None and Path(_handler.baseFilename) == target.absolute():
            return target
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handler = RotatingFileHandler(target, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
        except OSError:
            return None
        handler.setFormatter(ContentFreeFormatter(FORMAT))
        logger = logging.getLogger(LOGGER_NAME)
        warnings_logger = logging.getLogger("py.warnings")
        if _handler is not None:
            logger.removeHandler(_handler)
            warnings_logger.removeHandler(_handler)
            _handler.close()
        _handler = handler
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        warnings_logger.addHandler(handler)
        logging.captureWarnings(True)
    return target


def tail(paths: AppPaths, lines: int = 200) -> list[str]:
    """The log's last ``lines`` lines, oldest first (from the previous file too, when the
    current one was just started). Empty when there is no log yet."""
    if lines <= 0:
        return []
    if _handler is not None:
        _handler.flush()
    current = log_file(paths)
    kept: deque[str] = deque(maxlen=lines)
    for file in (current.with_name(current.name + ".1"), current):
        try:
            with open(file, encoding="utf-8", errors="replace") as f:
                for line in f:
                    kept.append(line.rstrip("\n"))
        except OSError:
            continue
    return list(kept)
