"""A relay between the app's ZeroMQ sockets and a kernel's, which bounds each message.

libzmq's bounds on the app's sockets do not bound what waits in the app: RCVHWM counts
whole messages and MAXMSGSIZE bounds one frame, but a message may have any number of
frames, and libzmq holds all of them until the last has come. Code in the kernel sent one
message of 150 frames, each the same 30 MB buffer (nothing to the kernel), and the app grew
by 1.7 GB; on the shell channel, 600 frames of 3 MB grew it by 830 MB.

So the app's sockets connect to a relay (one thread for the app), and the relay to the
kernel's. From the kernel it reads ZeroMQ's wire format (ZMTP 3, rfc.zeromq.org/spec/23)
as it passes and cuts the connection when a message grows past its channel's bound; the
app's socket connects again by itself (a message over MAXMSGSIZE would have ended it for
good). What the app sends is passed on as it is. The relay holds at most a few hundred KB
a connection: when the app's socket stops reading (its RCVHWM), the relay stops reading
the kernel, and the rest waits in the kernel's own memory.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import selectors
import socket
import struct
import threading
from pathlib import Path

_log = logging.getLogger(__name__)

_GREETING_BYTES = 64  # ZMTP 3: signature (10), version (2), mechanism (20), as-server, filler
_MORE, _LONG, _COMMAND = 1, 2, 4  # a frame's flags
MAX_COMMAND_BYTES = 1 << 16  # READY, PING, SUBSCRIBE: a few bytes each
# What libzmq keeps for a frame besides its body (a msg_t): an endless message of empty
# frames, 2 bytes each on the wire, would otherwise cost the app 32 times what it is counted.
FRAME_COST = 64
# A Jupyter message is its routing prefix, a delimiter, a signature, four parts and its
# buffers: a few dozen frames. More is not the app's protocol (and costs the relay a parse each).
MAX_FRAMES = 1024
# Commands (READY, PING) come one or two between messages; libzmq reads and drops the rest,
# so an endless stream of them would keep the relay parsing with nothing to push back.
MAX_COMMANDS_IN_A_ROW = 64
_CHUNK = 1 << 16
_HELD = 1 << 18  # bytes the relay holds for one direction of one connection, at most


class MessageBound:
    """Follows the frames the kernel sends on one connection; ``feed`` says why the
    connection must be cut, or None."""

    def __init__(self, limit: int):
        self.limit = limit
        self.greeting = bytearray()
        self.header = bytearray()  # the flags and size of the frame that starts
        self.body_left = 0  # of the frame under way
        self.message = 0  # bytes of the message under way
        self.frames = 0  # ... and its frames
        self.commands = 0  # since the last message frame

    def feed(self, data: bytes) -> str | None:
        at = 0
        if len(self.greeting) < _GREETING_BYTES:
            at = _GREETING_BYTES - len(self.greeting)
            self.greeting += data[:at]
            why = self._greeting_refused()
            if why:
                return why
        while at < len(data):
            if self.body_left:
                step = min(self.body_left, len(data) - at)
                self.body_left -= step
                at += step
                continue
            self.header.append(data[at])
            at += 1
            flags = self.header[0]
            if flags & ~(_MORE | _LONG | _COMMAND):
                return f"a frame with unknown flags {flags:#x}"
            size_end = 9 if flags & _LONG else 2
            if len(self.header) < size_end:
                continue
            size = int.from_bytes(self.header[1:size_end], "big")
            self.header.clear()
            if flags & _COMMAND:
                self.commands += 1
                if size > MAX_COMMAND_BYTES:
                    return f"a command of {size} bytes"
                if self.commands > MAX_COMMANDS_IN_A_ROW:
                    return f"over {MAX_COMMANDS_IN_A_ROW} commands in a row"
            else:
                self.commands = 0
                self.message += size + FRAME_COST
                self.frames += 1
                if self.message > self.limit:
                    return f"a message of over {self.limit >> 20} MB"
                if self.frames > MAX_FRAMES:
                    return f"a message of over {MAX_FRAMES} frames"
                if not flags & _MORE:
                    self.message = self.frames = 0
            self.body_left = size
        return None

    def _greeting_refused(self) -> str | None:
        g = self.greeting
        # libzmq's own test for ZMTP 3 (an older peer would be framed differently)
        if len(g) >= 11 and not (g[0] == 0xFF and g[9] & 1 and g[10] >= 3):
            return "not ZMTP 3"
        if len(g) == _GREETING_BYTES and bytes(g[12:32]).rstrip(b"\0") != b"NULL":
            return "a security mechanism the app does not use"
        return None


class Front:
    """Where the app's socket for one kernel channel connects: a listening socket, and the
    connections relayed from it to ``target``."""

    def __init__(self, relay: "ChannelRelay", target: str, limit: int, folder: Path | None):
        self.relay = relay
        self.limit = limit
        self.cuts = 0  # connections cut (MessageBound.feed said why: size, frames, commands or framing)
        self.connections: list[_Connection] = []
        if target.startswith("ipc://"):
            self.family, self.target = socket.AF_UNIX, target[len("ipc://"):]
            self.path = str(folder / Path(self.target).name)
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(self.path)
            self.url = f"ipc://{self.path}"
        else:
            host, port = target[len("tcp://"):].rsplit(":", 1)
            self.family, self.target, self.path = socket.AF_INET, (host, int(port)), None
            self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.listener.bind(("127.0.0.1", 0))
            self.url = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        self.listener.listen(8)
        self.listener.setblocking(False)

    def on_ready(self, sock: socket.socket, events: int) -> None:
        try:
            app, _ = self.listener.accept()
        except BlockingIOError:
            return
        if not _from_this_process(app):
            # Where the kernel can name the front (no namespaces), it could fill the app's
            # descriptors with connections of its own.
            app.close()
            return
        kernel = socket.socket(self.family, socket.SOCK_STREAM)
        kernel.setblocking(False)  # a kernel that stops accepting must not hold every conversation's relay
        if kernel.connect_ex(self.target) not in (0, errno.EINPROGRESS):
            # The kernel is gone, not up yet or not accepting: the app's socket tries again.
            kernel.close()
            app.close()
            return
        self.connections.append(_Connection(self, app, kernel))  # a connect in progress fails on first use

    def close(self) -> None:
        for connection in list(self.connections):
            connection.close()
        self.relay.watch(self.listener, 0, self)
        self.listener.close()
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def _from_this_process(connection: socket.socket) -> bool:
    """On Linux, a Unix socket's peer is known: only the app's own sockets are relayed."""
    if connection.family != socket.AF_UNIX or not hasattr(socket, "SO_PEERCRED"):
        return True
    pid, _, _ = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return pid == os.getpid()


class _Connection:
    """One connection of the app's socket, relayed to the kernel's."""

    def __init__(self, front: Front, app: socket.socket, kernel: socket.socket):
        self.front = front
        self.app, self.kernel = app, kernel
        self.to_app, self.to_kernel = bytearray(), bytearray()
        self.bound = MessageBound(front.limit)
        for sock in (app, kernel):
            sock.setblocking(False)
        self._watch()

    def on_ready(self, sock: socket.socket, events: int) -> None:
        try:
            if events & selectors.EVENT_READ:
                data = sock.recv(_CHUNK)
                if not data:
                    return self.close()
                if sock is self.kernel:
                    why = self.bound.feed(data)
                    if why:
                        self.front.cuts += 1
                        _log.info("cut the kernel's connection to the app: %s", why)
                        return self.close()
                    self.to_app += data
                else:
                    self.to_kernel += data
            if events & selectors.EVENT_WRITE:
                pending = self.to_app if sock is self.app else self.to_kernel
                del pending[:sock.send(pending)]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return self.close()
        self._watch()

    def _watch(self) -> None:
        relay = self.front.relay
        relay.watch(self.app, (selectors.EVENT_READ if len(self.to_kernel) < _HELD else 0)
                    | (selectors.EVENT_WRITE if self.to_app else 0), self)
        relay.watch(self.kernel, (selectors.EVENT_READ if len(self.to_app) < _HELD else 0)
                    | (selectors.EVENT_WRITE if self.to_kernel else 0), self)

    def close(self) -> None:
        for sock in (self.app, self.kernel):
            self.front.relay.watch(sock, 0, self)
            sock.close()
        if self in self.front.connections:
            self.front.connections.remove(self)


class ChannelRelay:
    """The app's relay: one thread; fronts are made and closed from any thread."""

    def __init__(self):
        self._selector = selectors.DefaultSelector()
        self._watched: dict[socket.socket, int] = {}
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def front(self, target: str, limit: int, folder: Path | None) -> Front:
        """A front for the kernel's socket at ``target`` (a ZeroMQ ipc:// or tcp:// address);
        an ipc front listens in ``folder``, which the kernel must not see."""
        front = Front(self, target, limit, folder)  # listening already: its address works now
        self._call(lambda: self.watch(front.listener, selectors.EVENT_READ, front))
        return front

    def close(self, front: Front) -> None:
        self._call(front.close)

    def watch(self, sock: socket.socket, events: int, handler) -> None:
        """On the relay's thread: what to wait for on ``sock`` (0: nothing)."""
        before = self._watched.get(sock, 0)
        if events == before:
            return
        if not events:
            self._selector.unregister(sock)
            del self._watched[sock]
        elif before:
            self._selector.modify(sock, events, handler)
            self._watched[sock] = events
        else:
            self._selector.register(sock, events, handler)
            self._watched[sock] = events

    def _call(self, work) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="kernel-channel-relay", daemon=True)
                self._thread.start()
        self._calls.put(work)
        self._wake_write.send(b"\0")

    def _run(self) -> None:
        while True:
            for key, events in self._selector.select():
                try:
                    if key.data is None:
                        self._wake_read.recv(4096)
                        while not self._calls.empty():
                            self._calls.get()()
                    else:
                        key.data.on_ready(key.fileobj, events)
                except Exception:  # noqa: BLE001 - the relay serves every conversation: never ends
                    _log.exception("the kernel channel relay skipped an event")


RELAY = ChannelRelay()
