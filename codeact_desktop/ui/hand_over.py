"""The second launch's side of ``single_instance``: it hands its files to the app already
running and exits. Without Qt (a Unix socket, or on Windows the named pipe, both the
app's QLocalServer), so a launch does it before Qt's imports, and the first conversation's
kernel and model start that much sooner."""

from __future__ import annotations

import json
import socket
import sys
import threading
from pathlib import Path

from ..paths import AppPaths

_NAME_FILE = "instance.json"
WAIT_S = 1.5
_ANSWER = 16  # bytes: the app answers "ok\n" and hangs up


def name_file(paths: AppPaths) -> Path:
    """Where the running app writes its socket's name (the data folder: no kernel reads it)."""
    return paths.data / _NAME_FILE


def hand_over(paths: AppPaths, files: list[Path]) -> bool:
    """True when an app already running took ``files`` (and this launch should exit)."""
    try:
        name = json.loads(name_file(paths).read_text())["socket"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not isinstance(name, str):
        return False
    message = json.dumps({"open": [str(p.resolve()) for p in files]}).encode() + b"\n"
    answer = _by_pipe(name, message) if sys.platform == "win32" else _by_socket(name, message)
    return answer.startswith(b"ok")


def _by_socket(name: str, message: bytes) -> bytes:
    answer = b""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(WAIT_S)
            s.connect(name)  # a name left by an app that was killed: refused, this launch takes over
            s.sendall(message)
            while len(answer) < _ANSWER and b"\n" not in answer:
                piece = s.recv(_ANSWER - len(answer))
                if not piece:
                    break
                answer += piece
    except (OSError, ValueError):  # ValueError: a name with a NUL byte
        pass
    return answer


def _by_pipe(name: str, message: bytes) -> bytes:
    """A named pipe opens as a file, but its reads have no timeout: a running app that
    does not answer within WAIT_S leaves the thread waiting, and this launch takes over."""
    answer: list[bytes] = []

    def talk() -> None:
        try:
            with open(name, "r+b", buffering=0) as pipe:
                pipe.write(message)
                answer.append(pipe.read(_ANSWER))
        except (OSError, ValueError):
            pass

    talker = threading.Thread(target=talk, name="hand-over", daemon=True)
    talker.start()
    talker.join(WAIT_S)
    return answer[0] if answer else b""
