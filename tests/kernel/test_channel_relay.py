"""The relay's reading of ZeroMQ's wire format (ZMTP 3), byte by byte and in chunks: what
it lets through and where it cuts. The relay between real sockets is in every kernel test
and in tests/security/test_attacks_kernel_channels.py."""

from __future__ import annotations

import pytest

from codeact_desktop.kernel.channel_relay import (FRAME_COST, MAX_COMMAND_BYTES, MAX_COMMANDS_IN_A_ROW, MAX_FRAMES,
                                                    MessageBound)

GREETING = b"\xff" + bytes(7) + b"\x01\x7f" + b"\x03\x01" + b"NULL".ljust(20, b"\0") + b"\0" + bytes(31)


def frame(body: bytes, more: bool = False, command: bool = False) -> bytes:
    flags = (1 if more else 0) | (4 if command else 0)
    if len(body) > 255:
        return bytes([flags | 2]) + len(body).to_bytes(8, "big") + body
    return bytes([flags, len(body)]) + body


def fed(stream: bytes, limit: int, step: int) -> str | None:
    bound = MessageBound(limit)
    for at in range(0, len(stream), step):
        why = bound.feed(stream[at:at + step])
        if why:
            return why
    return None


READY = frame(b"\x05READY" + b"\x0bSocket-Type\x00\x00\x00\x03PUB", command=True)


@pytest.mark.parametrize("step", [1, 7, 1 << 16])
def test_messages_within_the_bound_pass_however_they_arrive(step):
    message = frame(b"topic", more=True) + frame(b"x" * 600, more=True) + frame(b"y" * 200)
    assert fed(GREETING + READY + message * 20 + frame(b"", command=True), 1000, step) is None


@pytest.mark.parametrize("step", [1, 7, 1 << 16])
def test_a_message_whose_frames_together_pass_the_bound_is_cut(step):
    many = frame(b"x" * 300, more=True) * 4 + frame(b"end")
    assert "message of over" in fed(GREETING + READY + many, 1000, step)


def test_frames_count_what_libzmq_keeps_for_each():
    """Empty frames are 2 bytes on the wire and a 64-byte msg_t each in the app; and a
    message of endless empty frames is parsed a frame at a time."""
    endless = frame(b"", more=True) * (1000 // FRAME_COST + 1)
    assert "message of over" in fed(GREETING + endless, 1000, 1 << 16)
    assert f"over {MAX_FRAMES} frames" in fed(GREETING + frame(b"", more=True) * (MAX_FRAMES + 1), 1 << 30, 1 << 16)


@pytest.mark.parametrize("stream, why", [
    (b"\x05" + bytes(63), "not ZMTP 3"),  # ZMTP 1.0's framing
    (GREETING[:10] + b"\x02" + GREETING[11:], "not ZMTP 3"),
    (GREETING[:12] + b"CURVE".ljust(20, b"\0") + GREETING[32:], "security mechanism"),
    (GREETING + b"\x08\x01x", "unknown flags"),
    (GREETING + frame(b"x" * (MAX_COMMAND_BYTES + 1), command=True), "a command of"),
    # libzmq drops unknown commands unread: nothing would push back on an endless stream
    (GREETING + frame(b"", command=True) * (MAX_COMMANDS_IN_A_ROW + 1), "commands in a row"),
    (GREETING + b"\x02" + (1 << 62).to_bytes(8, "big"), "message of over"),
])
def test_what_is_not_the_app_s_protocol_is_cut(stream, why):
    assert why in fed(stream, 1 << 20, 3)


def test_the_relay_passes_both_ways_and_only_for_this_process(tmp_path):
    """A front relays the app's own connections to the kernel's socket (here an echo
    server) and cuts on a message over the bound; another process's connection is closed
    at once (where the kernel can name the front, it could hold the app's descriptors)."""
    import socket
    import subprocess
    import sys
    import threading

    from codeact_desktop.kernel.channel_relay import RELAY

    (tmp_path / "k").mkdir()
    (tmp_path / "front").mkdir()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "k" / "k-1"))
    server.listen()

    def echo():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=lambda c=conn: [c.sendall(d) for d in iter(lambda: c.recv(1 << 16), b"")],
                             daemon=True).start()

    threading.Thread(target=echo, daemon=True).start()
    front = RELAY.front(f"ipc://{tmp_path / 'k' / 'k-1'}", 1000, tmp_path / "front")
    try:
        with socket.socket(socket.AF_UNIX) as app:
            app.connect(front.url[len("ipc://"):])
            sent = GREETING + READY + frame(b"a" * 500, more=True) + frame(b"b" * 300)
            app.sendall(sent)
            got = b""
            app.settimeout(10)
            while len(got) < len(sent) and (more := app.recv(1 << 16)):
                got += more
            assert got == sent
            app.sendall(frame(b"c" * 600, more=True) + frame(b"d" * 600))  # 1,200 bytes: over
            assert app.recv(1 << 16) == b""  # cut
            assert front.cuts == 1
        other = subprocess.run([sys.executable, "-c", "import socket, time\ns = socket.socket(socket.AF_UNIX)\n"
                                f"s.connect({front.url[len('ipc://'):]!r})\ns.settimeout(10)\ntime.sleep(0.5)\n"
                                f"try:\n    s.sendall({GREETING!r})\n    print(len(s.recv(100)))\n"
                                "except OSError as e:\n    print(type(e).__name__)"],
                               capture_output=True, text=True, timeout=60)
        assert other.stdout.strip() in ("0", "BrokenPipeError", "ConnectionResetError"), other
    finally:
        RELAY.close(front)
        server.close()
