"""The app's ZeroMQ sockets to a kernel, bounded: what the kernel sends waits in the app's
own memory until the app reads it, and the kernel's code may send anything on any of them.

ZeroMQ queues up to 1,000 messages a socket (RCVHWM) of any size below MAXMSGSIZE. The app
reads IOPub all the time (a run, or the idle drain) but read the replies on the shell
channel only at start: code that sent 60 MB messages to the app's shell socket left 8 GB
in the app in 12 s. Reply sockets now take small messages, a few at a time; past that
ZeroMQ stops reading the connection and the kernel's side drops them. The app opens no
stdin, control or heartbeat channel of its client: it needs none.

A message over MAXMSGSIZE ends its connection for good (libzmq counts it a protocol error
and does not connect again): the app's sends then time out instead of waiting forever,
and the kernel's client is made anew (``ConversationKernel.reconnect``).
"""

from __future__ import annotations

import zmq
from jupyter_client import BlockingKernelClient, KernelManager
from traitlets import default

from .execution import MAX_KEPT_PER_RUN

# The largest output message the app takes (a larger one ends the connection, see above):
# no run keeps more than MAX_KEPT_PER_RUN, and large writes reach the app in pieces
# (restricted_start.split_large_writes).
MAX_MESSAGE_BYTES = MAX_KEPT_PER_RUN + (16 << 20)
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
        else:  # the client's shell, the manager's control (DEALER)
            sock.maxmsgsize = MAX_REPLY_BYTES
            sock.rcvhwm = MAX_REPLIES_QUEUED
            sock.sndtimeo = SEND_TIMEOUT_MS
        return sock


class BoundedKernelClient(BlockingKernelClient):
    """jupyter_client's blocking client on a bounded context of its own (destroyed with it)."""

    def _context_default(self) -> zmq.Context:
        self._created_context = True
        return BoundedContext()


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
