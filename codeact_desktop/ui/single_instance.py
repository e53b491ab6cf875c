"""One window per user: a second launch hands its files to the running app
(``hand_over``) and exits.

The running app listens on a local socket (QLocalServer: a Unix socket, a named pipe on
Windows) whose name carries a random part written to a file in the app's data folder.
Code in a kernel cannot read that folder (only its own workspace and home are granted),
so it cannot find the socket and make the app attach the user's files to a conversation.
The socket itself is the user's alone (``UserAccessOption``).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import warnings
from pathlib import Path

import platformdirs
from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from ..paths import APP_NAME, AppPaths
from .hand_over import name_file

_MAX_MESSAGE = 1 << 20  # paths only: a megabyte is thousands of them
_MAX_CONNECTIONS = 8  # launches handing over at once; 1,000 open connections held 1 GB
_MAX_FILES = 1000  # per launch (200,000 paths held the UI thread half a second)


def _new_name() -> str:
    token = secrets.token_hex(8)
    if sys.platform == "win32":
        return f"{APP_NAME}-{token}"
    with warnings.catch_warnings():  # no XDG_RUNTIME_DIR: platformdirs falls back to a private /tmp folder
        warnings.simplefilter("ignore")
        folder = Path(platformdirs.user_runtime_dir(APP_NAME, appauthor=False, ensure_exists=True))
    os.chmod(folder, 0o700)
    return str(folder / f"instance-{token}.sock")


class InstanceServer(QObject):
    """Listens for later launches; ``files_opened`` carries their files (maybe none: the
    window is then raised)."""

    files_opened = Signal(list)

    def __init__(self, paths: AppPaths, parent=None):
        super().__init__(parent)
        self._server = QLocalServer(self)
        self._received: dict[QLocalSocket, bytearray] = {}  # what each open connection sent so far
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        name = _new_name()
        QLocalServer.removeServer(name)
        if not self._server.listen(name):
            return  # no hand-over this run; the app still works
        paths.data.mkdir(parents=True, exist_ok=True)
        tmp = name_file(paths).with_suffix(".tmp")
        tmp.write_text(json.dumps({"socket": self._server.fullServerName() or name}))
        os.replace(tmp, name_file(paths))
        self._server.newConnection.connect(self._accept)

    @property
    def listening(self) -> bool:
        return self._server.isListening()

    def _accept(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            if len(self._received) >= _MAX_CONNECTIONS:
                socket.abort()
                socket.deleteLater()
                continue
            self._received[socket] = bytearray()
            socket.readyRead.connect(self._read)
            socket.disconnected.connect(self._closed)

    def _read(self) -> None:
        socket = self.sender()
        buffer = self._received.get(socket)
        if buffer is None:
            return
        buffer += socket.readAll().data()
        if len(buffer) > _MAX_MESSAGE:
            socket.abort()
            return
        if b"\n" not in buffer:
            return
        try:
            files = [Path(p) for p in json.loads(bytes(buffer).split(b"\n", 1)[0])["open"][:_MAX_FILES]
                     if isinstance(p, str) and os.path.isabs(p)]
        except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: "[" nested 500,000 deep
            socket.abort()
            return
        self._received.pop(socket, None)
        socket.write(b"ok\n")
        socket.flush()
        socket.disconnectFromServer()
        self.files_opened.emit(files)

    def _closed(self) -> None:
        socket = self.sender()
        self._received.pop(socket, None)
        socket.deleteLater()

    def close(self) -> None:
        self._server.close()


class FileOpenFilter(QObject):
    """macOS hands files to an app (dropped on its Dock icon, "Open With") as
    ``QFileOpenEvent``s to the application object, not on its command line."""

    files_opened = Signal(list)

    def eventFilter(self, watched, event):  # noqa: N802 (Qt naming)
        if event.type() == QEvent.Type.FileOpen:
            path = event.file()
            if path:
                self.files_opened.emit([Path(path)])
                return True
        return super().eventFilter(watched, event)
