"""One ``execute`` call on a running kernel: sends the code, collects what comes back on
IOPub within bounds, and watches the deadline, the Stop button and the kernel's death.

The client half of the kernel, as jupyter_client's ``client.py`` is to its ``manager.py``:
it knows the kernel only through the small public surface in ``RunningKernel`` (the
lifecycle lives in ``conversation_kernel.py``).
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import zmq
from jupyter_client.session import DELIM

from ..action_status import ActionStatus
from ..resources import messages
from ..image_size import MAX_INLINE_PIXELS_PER_RUN, MAX_PIXELS_PER_RUN
from ..visible_text import well_formed
from ..untrusted_markup import LAYOUT_COST_PER_RUN, MAX_LAYOUT_COST
from .outputs import OutputItem, StreamBuffer, image_pixels, item_from_message, rich_costs, without_layout

_log = logging.getLogger(__name__)

INTERRUPT_GRACE_S = 5.0
# A loop that displays ten thousand images would fill the history and the window; the
# first ones tell the story, the rest are counted.
MAX_DISPLAYS_PER_RUN = 100
# What one run may leave in the app's memory and history in all (text and image bytes):
# a stream is kept as head and tail, but code that switches between stdout and stderr, or
# displays huge texts, would otherwise start a new item each time (1.5 GB seen).
MAX_KEPT_PER_RUN = 64 << 20
# Outputs of all kinds one run may have. Each is a widget in the window: code that switched
# between stdout and stderr 15,000 times made 21,354 of them (78 s and 1.2 GB to open the
# conversation). Past the cap, stream text joins the stream under way, in order, and other
# outputs (errors, displays) are counted.
MAX_ITEMS_PER_RUN = 200
# Stream text one run hands to those who show it as it comes (on_stream): the CLI prints all
# of it, the window's card draws 400,000 characters. Past it, a note once for each stream:
# what is handed on waits in the window's queue for its next tick.
LIVE_CHARS_PER_RUN = 16_000_000
# What the app decodes of a message (execution.answering_parts, Execution._receive): its
# header, its parent's and its metadata are small (a few hundred bytes); content a run cannot
# keep is decoded only if small or a piece of the size the kernel sends text in (its tail is
# kept), and none past the run's decoding budget; content opening more JSON objects and
# arrays than this, or large content with many values, is skipped.
MAX_ENVELOPE_BYTES = 1 << 20
MAX_REPLY_CONTENT_BYTES = 1 << 20  # an execute_reply's: its status, count and payload (a help page)
MAX_PIECE_BYTES = 8 << 20  # restricted_start.OUTPUT_PIECE_CHARS, up to 6 bytes a character
MAX_JSON_CONTAINERS = 1_000_000
MAX_JSON_VALUES_OF_LARGE = 100_000  # in content over MAX_PIECE_BYTES (an image: a few)
# ... and all of one run's contents that the app decodes, past which only small ones are.
MAX_DECODED_PER_RUN = 2 * MAX_KEPT_PER_RUN
_TEXT_TWIN = re.compile(rb'"text/plain"\s*:\s*')
_DISPLAY_KINDS = ("image", "html", "text")
# The kernel publishes outputs faster than a busy app reads them, ZeroMQ drops the excess on
# the kernel's side (its queue holds 1,000), and the run's closing "idle" may be among them:
# a run whose execute_reply came is over once no message of its own has come for this long
# (nbclient waits likewise, 4 s).
QUIET_AFTER_REPLY_S = 2.0
# ipykernel sends the execute_reply before the closing "idle": one this late is not coming.
REPLY_AFTER_IDLE_S = 0.5


@dataclass
class ExecutionResult:
    """What one run of code gave: how it ended, its outputs, how long it took and, where
    it did not end by itself, why (the death's reason, the interrupt that did not take)."""

    status: ActionStatus
    items: list[OutputItem] = field(default_factory=list)
    seconds: float = 0.0
    detail: str = ""

    def __post_init__(self) -> None:
        self.status = ActionStatus(self.status)

    @property
    def kernel_state_lost(self) -> bool:
        return self.status.kernel_state_lost


class RunningKernel(Protocol):
    """What a run needs of its kernel (``ConversationKernel`` provides it)."""

    @property
    def client(self): ...  # jupyter_client's BlockingKernelClient, channels started

    @property
    def is_alive(self) -> bool: ...

    def interrupt(self) -> None: ...

    def restart(self) -> None: ...

    def reconnect(self) -> None: ...

    @property
    def connections_cut(self) -> int: ...  # by the relay (channel_relay.MessageBound says why)

    def death_reason(self) -> str: ...


def well_formed_message(msg) -> dict | None:
    """The message if its envelope has the shape the code below relies on, else None."""
    if not isinstance(msg, dict) or not all(isinstance(msg.get(k), dict) for k in ("header", "parent_header",
                                                                                 "content")):
        return None
    return msg if isinstance(msg["header"].get("msg_type"), str) else None


def is_idle_for(msg: dict, msg_id: str) -> bool:
    return (
        msg.get("parent_header", {}).get("msg_id") == msg_id
        and msg["header"]["msg_type"] == "status"
        and msg["content"].get("execution_state") == "idle"
    )


def drop_waiting(socket, seconds: float) -> int:
    """Reads and drops the messages waiting on a ZeroMQ socket, undecoded, for at most
    ``seconds``; how many."""
    dropped, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline and socket.poll(0):
        socket.recv_multipart(copy=False)
        dropped += 1
    return dropped


def answering_parts(socket, msg_id: str) -> list | None:
    """The parts of the message waiting on ``socket`` (received, not decoded or copied) if it
    answers ``msg_id``; None for another's, or one whose header, parent or metadata is over
    bounds."""
    frames = socket.recv_multipart(copy=False)
    # jupyter_client's feed_identities copies every frame to find the delimiter
    start = next((at + 1 for at, frame in enumerate(frames) if len(frame) == len(DELIM) and frame.bytes == DELIM),
                 None)
    parts = frames[start:] if start is not None else []
    if len(parts) < 5 or any(len(part) > MAX_ENVELOPE_BYTES for part in parts[1:4]):
        return None
    return parts if msg_id.encode() in parts[2].bytes else None  # in the parent's header


def _replied_to(client, msg_id: str, wait: float = 0.0) -> bool:
    """Whether the kernel's execute_reply to ``msg_id`` has come (within ``wait`` seconds);
    reads (and drops) the replies waiting on the shell channel. Their content is never
    decoded: 4 MB replies of short strings, sent without end, cost 15 s of the app's
    processor in a 21 s action."""
    socket = client.shell_channel.socket
    deadline = time.monotonic() + wait
    for _ in range(16):  # the kernel may send without end: the run's deadline comes first
        if not socket.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            return False
        parts = answering_parts(socket, msg_id)
        if parts is None or len(parts[4]) > MAX_REPLY_CONTENT_BYTES:  # an execute_reply says little
            continue
        try:
            msg = client.session.deserialize([part.bytes for part in parts[:5]], content=False)
        except Exception:  # noqa: BLE001 - a mangled reply: skipped
            continue
        if msg and isinstance(msg["parent_header"], dict) and msg["parent_header"].get("msg_id") == msg_id \
                and msg["header"].get("msg_type") == "execute_reply":
            return True
    return False


def run_quietly(client, code: str, timeout: float) -> None:
    """Runs the app's own code (no output kept, nothing in the history) and waits until
    the kernel is idle again or ``timeout`` passes."""
    msg_id = client.execute(code, silent=True, store_history=False)
    deadline = time.monotonic() + timeout
    mangled = 0
    while time.monotonic() < deadline:
        try:
            msg = well_formed_message(client.get_iopub_msg(timeout=0.5))
        except queue.Empty:
            continue
        except Exception:  # noqa: BLE001 - a mangled message: skipped
            msg = None
        if msg is None:
            mangled += 1
        elif is_idle_for(msg, msg_id):
            break
    if mangled:
        _log.debug("skipped %d IOPub messages that were not well formed while setting up", mangled)


def _is_display(item: OutputItem) -> bool:
    flag = getattr(item, "is_display", None)  # outputs.py's own answer, where it has one
    return flag if isinstance(flag, bool) else item.kind in _DISPLAY_KINDS


def _kept_size(item: OutputItem) -> int:
    size = getattr(item, "kept_size", None)
    return size if isinstance(size, int) else len(item.data or b"") + len(item.text) + len(item.plain)


class Execution:
    """The state of one ``execute`` call: collects items, watches deadline and death."""

    def __init__(self, kernel: RunningKernel, code: str, timeout: float, cancel: threading.Event | None,
                 on_item: Callable[[OutputItem], None] | None, on_stream: Callable[[str, str], None] | None):
        self.kernel = kernel
        self.code = code
        self.timeout = timeout
        self.cancel = cancel
        self.on_item = on_item or (lambda item: None)
        self.on_stream = on_stream or (lambda name, text: None)
        self.items: list[OutputItem] = []
        self.stream: StreamBuffer | None = None
        self.displays = 0
        self.displays_dropped = 0
        self.output_dropped = 0  # characters and bytes beyond MAX_KEPT_PER_RUN
        self.live_chars = 0  # handed to on_stream
        self.decoded = 0  # bytes of IOPub content decoded
        self.heard = 0.0  # when the last message of this run came (another's, in a flood, does not count)
        self.live_cut: set[str] = set()  # streams told that the rest is not shown live
        self.image_pixels = 0
        self.rich_cost = 0  # of rich text (HTML, Markdown), within LAYOUT_COST_PER_RUN
        self.inline_pixels = 0  # of images inside HTML, within MAX_INLINE_PIXELS_PER_RUN
        self.images_dropped = 0  # beyond MAX_PIXELS_PER_RUN
        self.items_dropped = 0  # non-stream outputs beyond MAX_ITEMS_PER_RUN
        self.streams_joined = 0  # stream switches beyond MAX_ITEMS_PER_RUN
        self.late_error: OutputItem | None = None  # the last error beyond it, kept at the end
        self.mangled = 0  # IOPub messages that could not be read: skipped, logged once
        self.outputs_lost = False  # the run's closing status never came: some may be missing
        self._kept_items = 0

    def _flush_stream(self) -> None:
        if self.stream is not None:
            item = self.stream.item()
            self.stream = None
            self.items.append(item)
            self._kept_items += len(item.text)
            self.on_item(item)

    def _add(self, item: OutputItem, size: int) -> None:
        self._flush_stream()
        self.items.append(item)
        self._kept_items += size
        self.on_item(item)

    def _handle(self, msg: dict) -> None:
        kind, content = msg["header"]["msg_type"], msg["content"]
        if kind == "stream":
            name = "stderr" if content.get("name") == "stderr" else "stdout"
            text = well_formed(content["text"]) if isinstance(content.get("text"), str) else ""
            if self.stream is not None and self.stream.name != name and self._full:
                self.streams_joined += 1
                name = self.stream.name  # the live view joins it too
            if self.stream is None or self.stream.name != name:
                self._flush_stream()
                if self.kept >= MAX_KEPT_PER_RUN:
                    self.output_dropped += len(text)
                    return
                self.stream = StreamBuffer(name)
            self.stream.add(text)
            self._show_live(name, text)
        elif kind == "clear_output":
            if not self._full:  # past the cap, clearing would start a new item each time
                self._flush_stream()
        else:
            item = item_from_message(msg)
            if item is None:
                return
            if self._full:
                self.items_dropped += 1
                if item.kind == "error":
                    self.late_error = item  # the last one is what the model must see to fix its code
                return
            if _is_display(item):
                self.displays += 1
                if self.displays > MAX_DISPLAYS_PER_RUN:
                    self.displays_dropped += 1
                    return
            cost, inline = rich_costs(item)
            if (cost > MAX_LAYOUT_COST or self.rich_cost + cost > LAYOUT_COST_PER_RUN
                    or self.inline_pixels + inline > MAX_INLINE_PIXELS_PER_RUN):
                item, cost, inline = without_layout(item), 0, 0  # its text twin: drawn at once
                if item is None:
                    return
            pixels = image_pixels(item)
            if self.image_pixels + pixels > MAX_PIXELS_PER_RUN:
                self.images_dropped += 1
                return
            size = _kept_size(item)
            if self.kept + size > MAX_KEPT_PER_RUN:
                self.output_dropped += size
                return
            # Counted only once kept: a dropped output leaves the budgets to the next ones
            self.rich_cost += cost
            self.inline_pixels += inline
            self.image_pixels += pixels
            self._add(item, size)

    def _show_live(self, name: str, text: str) -> None:
        if self.live_chars < LIVE_CHARS_PER_RUN:
            text = text[:LIVE_CHARS_PER_RUN - self.live_chars]
            self.live_chars += len(text)
            self.on_stream(name, text)
        elif name not in self.live_cut:
            self.live_cut.add(name)
            self.on_stream(name, messages()["live_output_cut"])

    @property
    def _full(self) -> bool:
        return len(self.items) >= MAX_ITEMS_PER_RUN

    @property
    def kept(self) -> int:
        """Characters and bytes this run holds: finished items and the stream under way."""
        current = self.stream.head_len + len(self.stream.tail) if self.stream is not None else 0
        return self._kept_items + current

    def run(self) -> ExecutionResult:
        kernel = self.kernel
        kc = kernel.client
        started = time.monotonic()
        cuts = kernel.connections_cut
        drop_waiting(kc.shell_channel.socket, 0.05)  # replies to the app's own setup code
        try:
            msg_id = kc.execute(self.code, store_history=True, allow_stdin=False)
        except zmq.Again:  # the kernel's code broke the connection: new sockets, the same kernel
            _log.info("the request could not be sent: new sockets to the kernel")
            kernel.reconnect()
            kc = kernel.client
            msg_id = kc.execute(self.code, store_history=True, allow_stdin=False)
        deadline = started + self.timeout
        stopping: ActionStatus | None = None  # TIMEOUT or CANCELLED once we have interrupted
        grace_until = 0.0
        replied, self.heard, shell_read = False, started, started
        while True:
            now = time.monotonic()
            if not replied and now - shell_read >= 0.1:  # also while others' messages flood IOPub
                replied, shell_read = _replied_to(kc, msg_id), now
            if replied and now - self.heard >= QUIET_AFTER_REPLY_S:
                # Dropped in an overflow, or the code broke IOPub's connection (which only
                # new sockets mend): which one, ZeroMQ does not say.
                _log.info("the run's closing status was lost: ended on its reply")
                self.outputs_lost = True
                kernel.reconnect()
                return self._finished(stopping, started, cuts)
            if stopping is None:
                if self.cancel is not None and self.cancel.is_set():
                    stopping = ActionStatus.CANCELLED
                elif now >= deadline:
                    stopping = ActionStatus.TIMEOUT
                if stopping:
                    kernel.interrupt()
                    grace_until = now + INTERRUPT_GRACE_S
            elif now >= grace_until:
                # The interrupt did not take (C code, signal masked): start afresh.
                self._flush_stream()
                kernel.restart()
                status = ActionStatus.TIMEOUT_RESTARTED if stopping == ActionStatus.TIMEOUT else stopping
                return self._result(status, started, "the interrupt did not stop it")
            try:
                msg = self._receive(kc, msg_id)
            except queue.Empty:
                if not kernel.is_alive:
                    self._flush_stream()
                    detail = kernel.death_reason()
                    kernel.restart()
                    return self._result(ActionStatus.DIED, started, detail)
                continue
            except Exception:  # noqa: BLE001 - a message the kernel mangled (it may send anything): skipped
                self.mangled += 1
                continue
            if msg is None or msg["parent_header"].get("msg_id") != msg_id:
                continue
            if is_idle_for(msg, msg_id):
                if not replied and not _replied_to(kc, msg_id, wait=REPLY_AFTER_IDLE_S):
                    # The reply comes before "idle": its connection is broken (a message over
                    # the bounds), and the next request would be lost in it.
                    _log.info("no reply to a finished run: new sockets to the kernel")
                    kernel.reconnect()
                return self._finished(stopping, started, cuts)
            self._handle(msg)

    def _receive(self, kc, msg_id: str) -> dict | None:
        """The next IOPub message, decoded; None for one skipped undecoded: not this run's or
        with parts over their bounds (dropped), or past what the run can still keep (counted
        as output dropped). JSON is decoded only then: 30 MB of ``[{},{},…]``, sent as this
        run's output, is ten million objects (a GB and seconds of the app's processor).
        Raises queue.Empty after 0.1 s of nothing."""
        socket = kc.iopub_channel.socket
        if not socket.poll(100):
            raise queue.Empty
        parts = answering_parts(socket, msg_id)
        if parts is None:
            return None
        self.heard = time.monotonic()
        content = parts[4].bytes
        small = len(content) <= 64 << 10
        if not small and (len(content) > max(MAX_KEPT_PER_RUN - self.kept, MAX_PIECE_BYTES)
                          or self.decoded + len(content) > MAX_DECODED_PER_RUN):
            self.output_dropped += len(content)
            return None
        # Each JSON object, array or value is a Python object once decoded: a piece of text,
        # an image, a table has few outside their strings.
        values = content.count(b",") + content.count(b":") if len(content) > MAX_PIECE_BYTES else 0
        if content.count(b"{") + content.count(b"[") > MAX_JSON_CONTAINERS or values > MAX_JSON_VALUES_OF_LARGE:
            return self._text_twin_only(kc, parts, content)
        self.decoded += len(content)
        msg = well_formed_message(kc.session.deserialize([part.bytes for part in parts[:4]] + [content]))
        if msg is None:
            self.mangled += 1
        return msg

    def _text_twin_only(self, kc, parts: list, content: bytes) -> dict | None:
        """A display whose content is too dear to decode, as its text twin alone (a huge
        JSON output still shows what it is): the one string after ``"text/plain":``."""
        found = _TEXT_TWIN.search(content)
        try:
            twin, _ = json.JSONDecoder().raw_decode(content[found.end():found.end() + MAX_PIECE_BYTES].decode(
                "utf-8", "replace")) if found else (None, 0)
        except ValueError:
            twin = None
        if not isinstance(twin, str):
            self.mangled += 1
            return None
        msg = kc.session.deserialize([part.bytes for part in parts[:4]] + [content], content=False)
        msg["content"] = {"data": {"text/plain": twin}, "metadata": {}}
        return well_formed_message(msg)

    def _finished(self, stopping: ActionStatus | None, started: float, cuts: int) -> ExecutionResult:
        if self.kernel.connections_cut != cuts:  # what the cut message carried, and what came with it
            self.outputs_lost = True
        late = self.late_error
        if late is not None and self.kept + _kept_size(late) <= MAX_KEPT_PER_RUN:
            self.items_dropped -= 1
            self._add(late, _kept_size(late))
        self._flush_stream()
        if stopping:
            # The KeyboardInterrupt traceback says nothing the status does not.
            self.items = [
                i for i in self.items
                if not (i.kind == "error" and i.ename == "KeyboardInterrupt")
            ]
            return self._result(stopping, started)
        failed = any(i.kind == "error" for i in self.items)
        return self._result(ActionStatus.ERROR if failed else ActionStatus.OK, started)

    def _result(self, status: ActionStatus, started: float, detail: str = "") -> ExecutionResult:
        if self.mangled:
            _log.warning("skipped %d IOPub messages that were not well formed", self.mangled)
        notes = [messages()["outputs_lost"]] if self.outputs_lost else []
        if self.displays_dropped:
            notes.append(messages()["displays_dropped"].format(dropped=self.displays_dropped,
                                                               kept=MAX_DISPLAYS_PER_RUN))
        if self.images_dropped:
            notes.append(messages()["images_dropped"].format(dropped=self.images_dropped,
                                                             most=MAX_PIXELS_PER_RUN // 1_000_000))
        if self.items_dropped or self.streams_joined:
            notes.append(messages()["items_capped"].format(kept=MAX_ITEMS_PER_RUN, dropped=self.items_dropped,
                                                           joined=self.streams_joined))
        if self.output_dropped:
            notes.append(messages()["output_dropped"].format(dropped=self.output_dropped, kept=MAX_KEPT_PER_RUN >> 20))
        if notes:
            self._flush_stream()
            self.items.append(item := OutputItem(kind="stderr", text="\n".join(notes) + "\n"))
            self.on_item(item)
        return ExecutionResult(
            status=status, items=self.items, seconds=time.monotonic() - started, detail=detail
        )
