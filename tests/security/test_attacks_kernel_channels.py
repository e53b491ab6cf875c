"""Stop 34's attacks on the app's own ZeroMQ sockets to the kernel: what the kernel's code
sends there waits in the app's memory until the app reads it.

Each test runs the attack as the model's action in a real restricted kernel through the
real agent and measures the app's own memory (this test process is the app)."""

from __future__ import annotations

import threading
import time

import psutil
import pytest

from codeact_desktop.kernel import kernel_sockets


class PeakMemory:
    """The highest resident memory of this process over the block, above where it began."""

    def __enter__(self):
        self._process = psutil.Process()
        self._start = self._process.memory_info().rss
        self._peak = self._start
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._done.wait(0.05):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.grew = max(self._peak, self._process.memory_info().rss) - self._start


def test_messages_sent_to_the_shell_channel_the_app_does_not_read_stay_bounded(conversations):
    """The app read the replies on the shell channel only at start; ZeroMQ queued 1,000
    messages of up to 80 MB there. 60 MB messages sent to the app's shell socket left 8 GB
    in the app in 12 s (and there they stayed). Small ones now, a few at a time. Here 3 MB
    and then 60 MB messages for 3 s each."""
    a = conversations()
    with PeakMemory() as memory:
        a.act("""
import time
kernel = get_ipython().kernel
app = kernel._parent_ident['shell']  # the app's shell socket, as the last request came
sent = 0
for size in (3 << 20, 60 << 20):
    payload = b'x' * size
    until = time.time() + 3
    while time.time() < until:
        kernel.shell_stream.socket.send_multipart(list(app) + [payload])
        sent += size
        time.sleep(0.02)
""")
        time.sleep(1)
    observation = a.act("print('SENT MB', sent >> 20)")
    assert "SENT MB" in observation, observation
    assert int(observation.split("SENT MB")[1].split()[0]) > 2000, observation
    assert memory.grew < 300 << 20, f"the app grew by {memory.grew >> 20} MB"
    assert kernel_sockets.MAX_REPLIES_QUEUED * kernel_sockets.MAX_REPLY_BYTES < 300 << 20


def test_a_message_over_the_bound_does_not_leave_the_conversation_deaf(conversations):
    """A message over ZeroMQ's MAXMSGSIZE ended its connection for good. One 90 MB message
    on IOPub left every later run without outputs until its timeout (30 s here) and a
    restart; one 5 MB reply on the shell channel made the next run's send wait forever.
    Now the relay cuts such a connection and ZeroMQ makes it again (or the run ends on its
    execute_reply and the client's sockets are made anew); the run says its outputs were
    lost, and the next runs work, with the kernel's variables."""
    a = conversations()
    observation = a.act("""
kernel = get_ipython().kernel
kept = 'still here'
kernel.session.send(kernel.iopub_socket, 'stream', {'name': 'stdout', 'text': 'x' * (90 << 20)},
                    parent=kernel.get_parent())
print('after the big one')
""")
    assert "outputs of this run may be missing" in observation, observation
    started = time.monotonic()
    assert a.act("print(kept)").endswith("still here\n")
    assert time.monotonic() - started < 10

    a.act("""
app = kernel._parent_ident['shell']
kernel.shell_stream.socket.send_multipart(list(app) + [b'x' * (5 << 20)])
""")
    # A request sent in the instant the connection breaks is lost with it: that run ends at
    # its timeout, by a restart (docs/security.md). Here the break has happened.
    time.sleep(1)
    started = time.monotonic()
    assert a.act("print(kept, 2)").endswith("still here 2\n")
    assert time.monotonic() - started < kernel_sockets.SEND_TIMEOUT_MS / 1000 + 10


def test_a_message_of_many_frames_stays_bounded(conversations):
    """ZeroMQ's bounds count whole messages (RCVHWM) and one frame's size (MAXMSGSIZE), and
    it holds every frame of a message until the last has come. One message of 600 frames
    of 3 MB (one buffer sent again and again: nothing to the kernel) to the app's shell
    socket grew the app by 830 MB, and 150 frames of 30 MB on IOPub by 1.7 GB. The relay
    (channel_relay.py) cuts a connection whose message passes its channel's bound."""
    a = conversations()
    with PeakMemory() as memory:
        a.act("""
import zmq
kernel = get_ipython().kernel
kept = 'still here'
piece = zmq.Frame(b'x' * (3 << 20))
kernel.shell_stream.socket.send_multipart(list(kernel._parent_ident['shell']) + [piece] * 600, copy=False)
""")
        observation = a.act("""
msg = kernel.session.msg('stream', {'name': 'stdout', 'text': 'hi'}, parent=kernel.get_parent())
piece = zmq.Frame(b'x' * (30 << 20))
kernel.iopub_thread.socket.send_multipart(kernel.session.serialize(msg, ident=b'stream.stdout') + [piece] * 150,
                                          copy=False)
""")
        time.sleep(1)
    assert memory.grew < 300 << 20, f"the app grew by {memory.grew >> 20} MB"
    assert "outputs of this run may be missing" in observation, observation
    assert a.act("print(kept)").endswith("still here\n")


def test_many_large_outputs_stay_bounded(conversations):
    """One 60 MB message, serialized once and sent 40 times without a copy, cost the
    kernel 60 MB and the app 2 GB: ZeroMQ queued up to 1,000 of them in the app (200 grew
    it by 5.1 GB). Now a message of IOPub is at most 32 MB and 16 wait in the app."""
    a = conversations()
    with PeakMemory() as memory:
        observation = a.act("""
import zmq
kernel = get_ipython().kernel
for size in (20 << 20, 60 << 20):
    msg = kernel.session.msg('stream', {'name': 'stdout', 'text': 'x' * size}, parent=kernel.get_parent())
    frames = [zmq.Frame(f) for f in kernel.session.serialize(msg, ident=b'stream.stdout')]
    for _ in range(40):
        kernel.iopub_thread.socket.send_multipart(frames, copy=False)
""")
        time.sleep(1)
    assert memory.grew < (kernel_sockets.MAX_OUTPUTS_QUEUED + 4) * kernel_sockets.MAX_MESSAGE_BYTES
    assert memory.grew < 1200 << 20, f"the app grew by {memory.grew >> 20} MB"
    assert "outputs of this run may be missing" in observation, observation[-500:]
    assert a.act("print(1 + 1)").endswith("2\n")


REWRITE_ON_THE_WIRE = """
import os, select, socket, stat, threading, time, json
cf = json.load(open(get_ipython().config.IPKernelApp.connection_file))
iopub = f"{cf['ip']}-{cf['iopub_port']}"

def app_connections():  # the kernel's accepted IOPub connections, found in its own descriptors
    found = []
    for name in os.listdir('/proc/self/fd'):
        try:
            s = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        with s:
            if s.family == socket.AF_UNIX and s.getsockname() == iopub \\
                    and not s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                found.append(int(name))
    return found

state = {'sent': 0}
def write():
    time.sleep(1)
    payload = PAYLOAD
    until = time.time() + 10
    while time.time() < until:
        for fd in app_connections():
            try:
                while time.time() < until:
                    select.select([], [fd], [], 0.2)
                    try:
                        state['sent'] += os.write(fd, payload)
                    except BlockingIOError:
                        pass
            except OSError:
                pass  # cut: the next connection
        time.sleep(0.01)
threading.Thread(target=write, daemon=True).start()
"""


@pytest.mark.parametrize("payload", [
    # one message that never ends: empty frames, "more" each
    "b'\\x01\\x00' * (1 << 19)",
    # commands with an empty name, which libzmq drops unread: nothing pushes back
    "b'\\x04\\x01\\x00' * (1 << 18)",
], ids=["endless empty frames", "endless commands"])
def test_what_is_written_on_the_wire_stays_bounded(conversations, payload):
    """The kernel's code wrote ZeroMQ's framing itself on its accepted IOPub connection
    (found in /proc/self/fd), again on each new connection. One message of endless empty
    frames, 2 bytes each on the wire and 64 in libzmq: 15.5 GB in the app in 25 s; with
    bounds on frame bodies only, 1.7 GB; with each frame's cost counted, 18 s of the app's
    processor in 22 s. Endless commands: 10.5 s of the app's processor in 13 s with no
    action running, for as long as the code wished. Now a message is cut at 1,024 frames,
    and a connection at 64 commands in a row."""
    a = conversations()
    app = psutil.Process()
    processor = sum(app.cpu_times()[:2])
    with PeakMemory() as memory:
        a.act(REWRITE_ON_THE_WIRE.replace("PAYLOAD", payload))
        time.sleep(12)
    processor = sum(app.cpu_times()[:2]) - processor
    assert a.kernel.connections_cut > 0
    assert memory.grew < 300 << 20, f"the app grew by {memory.grew >> 20} MB"
    assert processor < 6, f"{processor:.1f} s of the app's processor in 12 s"
    # The kernel's own libzmq may abort, its socket written behind its back: a new kernel.
    assert a.act("print(1 + 1)").endswith("2\n")


def test_a_reconnect_ends_while_the_code_keeps_publishing(conversations):
    """A run that must make new sockets waited for the kernel with jupyter_client's
    wait_for_ready, which then read IOPub until 0.2 s of quiet: code that published every
    0.05 s (here after a forged closing status) held the action past 125 s, its 30 s
    timeout and the Stop button."""
    a = conversations()
    started = time.monotonic()
    a.act("""
import threading, time
kernel = get_ipython().kernel
def trickle():
    while True:
        kernel.session.send(kernel.iopub_socket, 'stream', {'name': 'stdout', 'text': 'x'}, parent={})
        time.sleep(0.05)
threading.Thread(target=trickle, daemon=True).start()
kernel.session.send(kernel.iopub_socket, 'status', {'execution_state': 'idle'}, parent=kernel.get_parent())
kept = 'still here'
time.sleep(1)
""")
    assert time.monotonic() - started < 30
    assert a.act("print(kept)").endswith("still here\n")


def test_outputs_cheap_to_send_and_dear_to_decode_are_not_decoded(conversations):
    """30 MB of ``[{},{},…]`` as a run's own stream content, signed with the session's key
    (the kernel has it), 20 times: the app decoded each as JSON before looking at it, ten
    million objects apiece: +959 MB, 16 s of the app's processor, an action that slept 1 s
    took 15 s. Past what a run can keep, and past a million objects, content is not decoded."""
    a = conversations()
    app = psutil.Process()
    processor = sum(app.cpu_times()[:2])
    started = time.monotonic()
    with PeakMemory() as memory:
        observation = a.act("""
import time
kernel = get_ipython().kernel
s = kernel.session
parent = s.pack(kernel.get_parent())
big = b'[' + b'{},' * ((30 << 20) // 3) + b'{}]'
for _ in range(20):
    frames = [s.pack(s.msg_header('stream')), parent, b'{}', big]  # a new msg_id, a new signature
    kernel.iopub_socket.send_multipart([b'stream', b'<IDS|MSG>', s.sign(frames)] + frames)
time.sleep(1)
print('sent')
""")
    took, processor = time.monotonic() - started, sum(app.cpu_times()[:2]) - processor
    assert "sent" in observation, observation[-300:]
    assert memory.grew < 300 << 20, f"the app grew by {memory.grew >> 20} MB"
    assert processor < 5 and took < 10, f"{processor:.1f} s of the app's processor, the action {took:.1f} s"


def test_values_cheap_to_send_and_dear_to_decode_are_not_decoded(conversations):
    """The same with values, not containers: 30 MB of ``"ab",`` in a stream's content, 10
    times (+1.1 GB, 4.8 s of the app's processor). Large content is decoded only with few
    values outside what a piece of text is, and a run decodes at most 128 MB in all."""
    a = conversations()
    app = psutil.Process()
    processor = sum(app.cpu_times()[:2])
    with PeakMemory() as memory:
        observation = a.act("""
import time
kernel = get_ipython().kernel
s = kernel.session
parent = s.pack(kernel.get_parent())
for item in (b'"ab",', b'0.5,'):
    big = b'{"name":"stdout","text":"x","a":[' + item * ((30 << 20) // len(item)) + b'0]}'
    for _ in range(5):
        frames = [s.pack(s.msg_header('stream')), parent, b'{}', big]
        kernel.iopub_socket.send_multipart([b'stream', b'<IDS|MSG>', s.sign(frames)] + frames)
time.sleep(1)
print('sent')
""")
    processor = sum(app.cpu_times()[:2]) - processor
    assert "sent" in observation, observation[-300:]
    assert memory.grew < 300 << 20, f"the app grew by {memory.grew >> 20} MB"
    assert processor < 4, f"{processor:.1f} s of the app's processor"


def test_replies_dear_to_decode_are_not_decoded(conversations):
    """While its run slept, code kept the app's shell socket full of signed 3.9 MB
    'replies' of 780,000 short strings each; the run decoded up to 16 of them every 0.1 s
    of quiet IOPub, looking for its execute_reply: 15.5 s of the app's processor in a 21 s
    action. A reply's content is never decoded now."""
    a = conversations()
    app = psutil.Process()
    processor = sum(app.cpu_times()[:2])
    started = time.monotonic()
    observation = a.act("""
import threading, time
kernel = get_ipython().kernel
s = kernel.session
app = list(kernel._parent_ident['shell'])
parent = kernel.get_parent()
big = b'{"a":[' + b'"ab",' * ((3900 << 10) // 5) + b'0]}'
def pump():
    until = time.time() + 8
    while time.time() < until:
        frames = [s.pack(s.msg_header('kernel_info_reply')), s.pack(parent['header']), b'{}', big]
        kernel.shell_stream.socket.send_multipart(app + [b'<IDS|MSG>', s.sign(frames)] + frames, copy=False)
threading.Thread(target=pump, daemon=True).start()
time.sleep(8)
print('slept')
""")
    took, processor = time.monotonic() - started, sum(app.cpu_times()[:2]) - processor
    assert "slept" in observation, observation[-300:]
    assert processor < 0.4 * took, f"{processor:.1f} s of the app's processor in {took:.1f} s"
