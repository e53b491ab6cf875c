"""The app's ZeroMQ sockets to a kernel, bounded: what the kernel sends waits in the app's
own memory until the app reads it, and the kernel's code may send anything on any of them.

ZeroMQ queues up to 1,000 messages a socket (RCVHWM) of any size below MAXMSGSIZE. The app
reads IOPub all the time (a run, or the idle drain) but read the replies on the shell
channel only at start: code that sent 60 MB messages to the app's shell socket left 8 GB
in the app in 12 s. Reply sockets now take small messages, a few at a time; past that
ZeroMQ stops reading the connection and the kernel's side drops them. The app opens no
stdin, control or heartbeat channel of its client: it needs none.

Those bounds count messages, and a frame's size, not a message's: each socket connects
through the app's relay (``channel_relay.py``), which cuts a connection whose message passes
its channel's bound, so what waits in the app is at most the queue times the bound. A
connection cut, or broken by the code in another way, is mended by ZeroMQ or by a new client
(``ConversationKernel.reconnect``); the app's sends time out instead of waiting forever.
"""

from __future__ import annotations

import queue
import time
from pathlib import Path

import zmq
from jupyter_client import BlockingKernelClient, KernelManager
from traitlets import default

from .channel_relay import RELAY, Front
from .execution import drop_waiting

# The largest output message the app takes (a larger one is cut, with its connection):
# large writes reach the app in 1 MB pieces (restricted_start.split_large_writes), and an
# image this large is past what the window draws.
MAX_MESSAGE_BYTES = 32 << 20
# ... and how many wait for the app at once: 512 MB at most.
MAX_OUTPUTS_QUEUED = 16
# Replies (kernel_info, execute, shutdown) are small: a help page sent as a payload is tens
# of KB.
MAX_REPLY_BYTES = 4 << 20
# ... and few wait at once: a run reads its own execute_reply after dropping the ones before.
MAX_REPLIES_QUEUED = 8
# A send to a connection the kernel broke would wait forever (execute_request, shutdown).
SEND_TIMEOUT_MS = 5000


class BoundedContext(zmq.Context):
    """A ZeroMQ context whose sockets are bounded as they are made (the bounds must be set
    before the socket connects to apply to its connection)."""

    def socket(self, socket_type: int, **kwargs):
        sock = super().socket(socket_type, **kwargs)
        if socket_type == zmq.SUB:  # IOPub: read all the time, by a run or the idle drain
            sock.maxmsgsize = MAX_MESSAGE_BYTES
            sock.rcvhwm = MAX_OUTPUTS_QUEUED
        else:  # the client's shell, the manager's control (DEALER)
            sock.maxmsgsize = MAX_REPLY_BYTES
            sock.rcvhwm = MAX_REPLIES_QUEUED
            sock.sndtimeo = SEND_TIMEOUT_MS
        return sock


class BoundedKernelClient(BlockingKernelClient):
    """jupyter_client's blocking client on a bounded context of its own (destroyed with it),
    connected through its manager's fronts."""

    def _context_default(self) -> zmq.Context:
        self._created_context = True
        return BoundedContext()

    def wait_for_ready(self, timeout: float | None = None) -> None:
        """jupyter_client's, with an end: after the kernel_info reply it read IOPub until
        0.2 s of quiet, which code that publishes every 0.1 s never gives (a reconnect
        hung for ever). Here it drops what waits, undecoded, for 0.2 s at most."""
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            self.kernel_info()
            try:
                reply = self.shell_channel.get_msg(timeout=1)
            except queue.Empty:
                reply = None
            # A reply, and IOPub connected (the kernel publishes its busy status for it).
            if isinstance(reply, dict) and reply.get("msg_type") == "kernel_info_reply" \
                    and self.iopub_channel.socket.poll(200):
                self._handle_kernel_info_reply(reply)
                break
            if not self.is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")
        drop_waiting(self.iopub_channel.socket, 0.2)

    def _make_url(self, channel: str) -> str:
        if isinstance(self.parent, BoundedKernelManager):
            return self.parent.front(channel).url
        return super()._make_url(channel)


class BoundedKernelManager(KernelManager):
    """jupyter_client's kernel manager: its own control socket is bounded too, and the
    clients it makes are."""

    @default("context")
    def _bounded_context(self) -> zmq.Context:
        self._created_context = True
        return BoundedContext()

    @default("client_factory")
    def _bounded_client(self) -> type:
        return BoundedKernelClient

    def __init__(self, relay_folder: Path | None = None, **kwargs):
        super().__init__(**kwargs)
        self.relay_folder = relay_folder  # where ipc fronts listen: the app's, never the kernel's
        self._fronts: dict[str, Front] = {}

    def front(self, channel: str) -> Front:
        """The relay's front for one of the kernel's channels, made at its first use."""
        if channel not in self._fronts:
            limit = MAX_MESSAGE_BYTES if channel == "iopub" else MAX_REPLY_BYTES
            self._fronts[channel] = RELAY.front(super()._make_url(channel), limit, self.relay_folder)
        return self._fronts[channel]

    def _make_url(self, channel: str) -> str:
        return self.front(channel).url

    @property
    def connections_cut(self) -> int:
        """Connections the relay cut on every channel: a message over its bound, too many
        frames or commands, or framing other than ZMTP 3."""
        return sum(front.cuts for front in self._fronts.values())

    async def _async_cleanup_resources(self, restart: bool = False) -> None:  # shutdown_kernel's
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            for front in self._fronts.values():
                RELAY.close(front)
            self._fronts = {}
