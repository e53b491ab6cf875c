"""The second launch's side of ``single_instance``: it hands its files to the app already
running and exits. No Qt on macOS and Linux (a plain Unix socket to the app's
QLocalServer), so a launch does it before Qt's imports, and the first conversation's kernel
and model start that much sooner. Windows' named pipe goes through Qt's own client."""

from __future__ import annotations

import json
import socket
import sys
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
    if sys.platform == "win32":
        return _by_qt(name, message)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(WAIT_S)
            s.connect(name)  # a name left by an app that was killed: refused, this launch takes over
            s.sendall(message)
            answer = b""
            while len(answer) < _ANSWER and b"\n" not in answer:
                piece = s.recv(_ANSWER - len(answer))
                if not piece:
                    break
                answer += piece
    except (OSError, ValueError):  # ValueError: a name with a NUL byte
        return False
    return answer.startswith(b"ok")


def _by_qt(name: str, message: bytes) -> bool:
    from PySide6.QtNetwork import QLocalSocket

    client = QLocalSocket()
    client.connectToServer(name)
    if not client.waitForConnected(int(WAIT_S * 1000)):
        return False
    client.write(message)
    client.flush()
    answered = client.waitForReadyRead(int(WAIT_S * 1000)) and client.readAll().data().startswith(b"ok")
    client.disconnectFromServer()
    return answered
