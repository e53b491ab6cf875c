"""The HTTP backend against real OpenAI-compatible servers: llama.cpp's own, serving
the test GGUF on 127.0.0.1, and a raw one that streams exactly the lines a test gives
(malformed chunks)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from codeact_desktop.llm.base import BackendError, GenerationParams
from codeact_desktop.llm.openai_http import DEFAULT_N_CTX, OpenAIBackend

from ..conftest import free_port
from ..scripted_openai import send_json

model = pytest.mark.model


class RawStreamServer:
    """A real HTTP server speaking just enough of OpenAI's API: each POST streams the next
    list of ``data:`` payloads given to ``streams`` (as they are, JSON or not), then a
    well-formed reply ``good``."""

    def __init__(self, good: str = "All good."):
        self.streams: list[list[str]] = []
        self.good = good
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                send_json(self, {"data": [{"id": "raw", "context_length": 8192}]})

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                payloads = server.streams.pop(0) if server.streams else server.good_stream()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for payload in payloads:
                    self.wfile.write(f"data: {payload}\n\n".encode())
                    self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def good_stream(self) -> list[str]:
        pieces = [json.dumps({"choices": [{"delta": {"content": self.good[i:i + 4]}, "finish_reason": None}]})
                  for i in range(0, len(self.good), 4)]
        return [*pieces, json.dumps({"choices": [{"delta": {}, "finish_reason": "stop"}]}), "[DONE]"]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def piece(content) -> str:
    return json.dumps({"choices": [{"delta": {"content": content}, "finish_reason": None}]})


# Each streams a good piece first, then the fault; the words the error must use.
MALFORMED = {
    "not JSON": ([piece("Hello "), '{"choices": [{"delta": {"content": "SECRET-REPLY'], "not JSON"),
    "no choices": ([piece("Hello "), json.dumps({"id": "chunk-1", "object": "SECRET-REPLY"})], "without choices"),
    "content a number": ([piece("Hello "), piece(42)], "is a int, not a string"),
    "delta a string": ([piece("Hello "), json.dumps({"choices": [{"delta": "SECRET-REPLY"}]})],
                       "delta that is not an object"),
    "a JSON list": ([piece("Hello "), json.dumps(["SECRET-REPLY"])], "a JSON list"),
}


@pytest.fixture
def raw_server():
    server = RawStreamServer()
    yield server
    server.close()


@pytest.mark.parametrize("fault", MALFORMED)
def test_a_malformed_chunk_is_a_plain_backend_error_and_the_next_reply_works(raw_server, fault):
    stream, words = MALFORMED[fault]
    raw_server.streams.append(stream)
    backend = OpenAIBackend(raw_server.url)
    pieces = []
    with pytest.raises(BackendError) as raised:
        backend.generate([{"role": "user", "content": "hi"}], GenerationParams(), pieces.append)
    message = str(raised.value)
    assert words in message and "sent a reply this app cannot read" in message
    assert "SECRET-REPLY" not in message and "Traceback" not in message  # says what was wrong, quotes nothing
    assert pieces == ["Hello "]  # what came before the fault was streamed
    result = backend.generate([{"role": "user", "content": "hi"}], GenerationParams(), lambda p: None)
    assert result.text == "All good." and result.finish_reason == "stop"
    backend.close()


def test_an_error_reported_mid_stream_is_the_servers_words(raw_server):
    raw_server.streams.append([piece("Hel"), json.dumps({"error": {"message": "out of memory on the GPU"}})])
    backend = OpenAIBackend(raw_server.url)
    with pytest.raises(BackendError, match="the server reported an error: “out of memory on the GPU”"):
        backend.generate([{"role": "user", "content": "hi"}], GenerationParams(), lambda p: None)
    backend.close()


def test_a_usage_chunk_without_choices_is_fine(raw_server):
    usage = json.dumps({"usage": {"prompt_tokens": 7, "completion_tokens": 2}})
    raw_server.streams.append([piece("Hi"), piece(" there"), usage, "[DONE]"])
    backend = OpenAIBackend(raw_server.url)
    result = backend.generate([{"role": "user", "content": "hi"}], GenerationParams(), lambda p: None)
    assert result.text == "Hi there" and result.prompt_tokens == 7 and result.completion_tokens == 2
    backend.close()


@model
def test_lists_the_model_and_streams(server_url):
    backend = OpenAIBackend(server_url)
    assert backend.info.model == "gemma-test" and backend.info.device == "remote"
    pieces = []
    result = backend.generate([{"role": "user", "content": "Say hello."}], GenerationParams(max_tokens=24),
                              pieces.append)
    assert len(pieces) > 2 and "".join(pieces) == result.text
    assert result.finish_reason in ("stop", "length") and result.completion_tokens > 0
    backend.close()


@model
def test_stop_sequence_is_honoured_and_stripped(server_url):
    backend = OpenAIBackend(server_url, "gemma-test")
    messages = [{"role": "user", "content": "Repeat exactly: alpha beta gamma delta"}]
    params = GenerationParams(max_tokens=32, stop=("gamma",))
    result = backend.generate(messages, params, lambda p: None)
    assert "gamma" not in result.text and "delta" not in result.text
    backend.close()


@model
def test_cancel_closes_the_stream(server_url):
    backend = OpenAIBackend(server_url)
    cancel = threading.Event()
    pieces = []

    def on_piece(piece):
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()

    result = backend.generate([{"role": "user", "content": "Write a long story."}],
                              GenerationParams(max_tokens=300, stop=()), on_piece, cancel)
    assert result.finish_reason == "cancelled" and len(pieces) <= 4
    backend.close()


def test_unreachable_server_is_a_clear_message_at_once():
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="Cannot reach the server"):
        OpenAIBackend(f"http://127.0.0.1:{free_port()}/v1")
    assert time.monotonic() - t0 < 6


def _gzip_bomb() -> bytes:
    import gzip
    import zlib

    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing, fed in pieces: no GB in memory here
    inner = b"".join(squeeze.compress(bytes(1 << 20)) for _ in range(1024)) + squeeze.flush()
    return gzip.compress(inner, 9)


BOMB = _gzip_bomb()


class HostileServer:
    """A real HTTP server that misbehaves as ``mode`` says: endless bodies, silence, a
    reply that never ends (stop 30's attack run on the HTTP backend)."""

    def __init__(self):
        self.mode = ""
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _endless(self, status: int, unit: bytes, ends_lines: bool = False):
                self.send_response(status)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    while not server.stop.is_set():
                        self.wfile.write(unit)
                except OSError:
                    pass  # the client hung up: as it should

            def _gzip_bomb(self):
                """1.8 KB on the wire, 1 GB once decoded: gzip of gzip of zeros."""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Encoding", "gzip, gzip")
                self.send_header("Content-Length", str(len(BOMB)))
                self.end_headers()
                self.wfile.write(BOMB)

            def do_GET(self):  # noqa: N802
                if server.mode == "gzip bomb":
                    self._gzip_bomb()
                elif server.mode == "models endless":
                    self._endless(200, b'{"data": [' + b'{"id": "m"},' * 5000)
                elif server.mode == "models odd":
                    send_json(self, {"data": [["list"], "name", {"id": {"a": 1}}, {"id": "ok", "context_length": 10**30},
                                              {"id": "lots", "context_length": "lots"}]})
                else:
                    send_json(self, {"data": [{"id": "hostile", "context_length": 8192}]})

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                if server.mode == "endless line":
                    self._endless(200, b'data: {"choices": [{"delta": {"content": "' + b"x" * 65536)
                elif server.mode == "endless error":
                    self._endless(500, b"Bad Gateway\n\nThe sandbox could not start: turn the network on. " * 100)
                elif server.mode == "silent":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    self.wfile.flush()
                    server.stop.wait(60)
                elif server.mode == "never ends":
                    self._endless(200, f"data: {piece('y' * 10_000)}\n\n".encode())
                elif server.mode == "gzip bomb":
                    self._gzip_bomb()
                elif server.mode == "newlines":  # 8 MB of empty lines, then a short reply
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    self.wfile.write(b"\n" * (8 << 20))
                    self.wfile.write(f"data: {piece('ok')}\n\ndata: [DONE]\n\n".encode())

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def hostile_server():
    server = HostileServer()
    yield server
    server.close()


def _peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_hostile_server_costs_bounded_memory_and_time(hostile_server):
    backend = OpenAIBackend(hostile_server.url)
    before = _peak_rss_mb()
    hostile_server.mode = "endless line"  # took 6.1 GB in 10 s
    started = time.monotonic()
    with pytest.raises(BackendError, match="a streamed line longer than 1 MB"):
        backend.generate([{"role": "user", "content": "hi"}], GenerationParams(), lambda p: None)
    hostile_server.mode = "endless error"  # 6.1 GB in 5.5 s; its text read as the app's own lines
    with pytest.raises(BackendError) as raised:
        backend.generate([{"role": "user", "content": "hi"}], GenerationParams(), lambda p: None)
    message = str(raised.value)
    assert message.startswith("The server refused the request (500): “Bad Gateway The sandbox")
    assert "\n" not in message and len(message) < 400
    hostile_server.mode = "never ends"  # 10 KB pieces for ever, past max_tokens
    pieces = []
    result = backend.generate([{"role": "user", "content": "hi"}], GenerationParams(max_tokens=64), pieces.append)
    assert result.finish_reason == "length" and len(result.text) == 64 * 32 == sum(map(len, pieces))
    backend.close()
    hostile_server.mode = "models endless"  # 5.1 GB at every start with a remembered server
    with pytest.raises(BackendError, match="a model list of more than 4 MB"):
        OpenAIBackend(hostile_server.url)
    assert time.monotonic() - started < 30
    assert _peak_rss_mb() - before < 300, (before, _peak_rss_mb())


def test_stop_ends_a_reply_while_the_server_says_nothing(hostile_server):
    hostile_server.mode = "silent"  # as a server reading a long prompt: headers, then minutes of nothing
    backend = OpenAIBackend(hostile_server.url)
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    started = time.monotonic()
    result = backend.generate([{"role": "user", "content": "hi"}], GenerationParams(), lambda p: None, cancel)
    assert result.finish_reason == "cancelled" and time.monotonic() - started < 3  # was the 300 s read timeout
    hostile_server.mode = ""
    backend.close()


def test_a_model_list_of_odd_entries_keeps_the_ones_that_name_a_model(hostile_server):
    hostile_server.mode = "models odd"  # raised AttributeError, TypeError, ValueError; took 10**30 as a context
    backend = OpenAIBackend(hostile_server.url)
    assert backend.model == "ok" and backend.info.n_ctx == DEFAULT_N_CTX
    backend.close()
    backend = OpenAIBackend(hostile_server.url, model="lots")
    assert backend.info.n_ctx == DEFAULT_N_CTX
    backend.close()


def test_a_line_separator_inside_a_streamed_string_is_text(raw_server):
    # Raw UTF-8, as servers send it: httpx's iter_lines split the JSON line at U+2028 and U+0085.
    raw_server.streams.append([json.dumps({"choices": [{"delta": {"content": "a\u2028b\x85c"}}]}, ensure_ascii=False),
                               "[DONE]"])
    backend = OpenAIBackend(raw_server.url)
    result = backend.generate([{"role": "user", "content": "hi"}], GenerationParams(), lambda p: None)
    assert result.text == "a\u2028b\x85c"
    backend.close()


def test_a_compressed_bomb_and_a_flood_of_empty_lines_cost_nothing(hostile_server):
    """From a second independent run: httpx decoded a whole chunk before any bound looked at
    it (1,826 bytes of double gzip: 2 GB of memory), and 64 MB of newlines spun a core."""
    assert len(BOMB) < 4096
    before = _peak_rss_mb()
    hostile_server.mode = "gzip bomb"
    with pytest.raises(BackendError, match="compressed as gzip, gzip, which was not asked for"):
        OpenAIBackend(hostile_server.url)
    hostile_server.mode = ""
    backend = OpenAIBackend(hostile_server.url)
    hostile_server.mode = "gzip bomb"
    with pytest.raises(BackendError, match="cannot read"):
        backend.generate([{"role": "user", "content": "hi"}], GenerationParams(), lambda p: None)
    assert _peak_rss_mb() - before < 200, (before, _peak_rss_mb())
    hostile_server.mode = "newlines"
    started = time.monotonic()
    result = backend.generate([{"role": "user", "content": "hi"}], GenerationParams(), lambda p: None)
    assert result.text == "ok" and time.monotonic() - started < 10
    backend.close()


def test_a_model_id_longer_than_a_name_is_not_taken_for_one():
    """An independent attack run (stop 33): a server listed a 20,000-character id first; it
    became the model, and the status bar, sized to it, stretched the window to its width
    (2,000,000 characters cost 23 GB of backing store)."""
    from ..scripted_openai import ScriptedOpenAIServer

    server = ScriptedOpenAIServer(["Hi."], model_ids=("W" * 20_000, "scripted"))
    try:
        backend = OpenAIBackend(server.url)
        assert backend.model == "scripted"
        backend.close()
        with pytest.raises(BackendError, match="20,000 characters"):
            OpenAIBackend(server.url, model="W" * 20_000)
    finally:
        server.close()
