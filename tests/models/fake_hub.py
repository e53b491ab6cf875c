"""A local server that speaks the part of the Hugging Face Hub's protocol that
``hf_hub_download`` uses (HEAD and ranged GET on /{repo}/resolve/{revision}/{file}),
with faults to inject: a dropped connection, wrong bytes, a slow transfer, a 404."""

from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, repo: str, filename: str, data: bytes):
        self.repo, self.filename, self.data = repo, filename, data
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.drop_after: int | None = None  # close the connection after this many bytes, once
        self.wrong_bytes = False
        self.delay_per_chunk = 0.0
        self.stall_after: int | None = None  # a GET that sends this many bytes, then nothing (a stalled line)
        self.closed = threading.Event()
        self.claimed_sha: str | None = None  # a HEAD that lies about the file's SHA-256
        self.extra_bytes = 0  # a GET that sends this much past the file's announced size
        self.redirect_host: str | None = None  # a HEAD that redirects the file to this host
        self.requests: list[tuple[str, str, dict]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _headers_for(self) -> bool:
                hub.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                path = unquote(self.path.split("?")[0])
                expected = f"/{hub.repo}/resolve/"
                if not path.startswith(expected) or not path.endswith("/" + hub.filename):
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("X-Error-Message", "Entry not found")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return False
                return True

            def do_HEAD(self):  # noqa: N802
                if not self._headers_for():
                    return
                sha = hub.claimed_sha or hub.sha256
                if hub.redirect_host and "cdn=1" not in self.path:
                    self.send_response(302)
                    self.send_header("Location", f"http://{hub.redirect_host}:{self.server.server_address[1]}"
                                                 f"{self.path.split('?')[0]}?cdn=1")
                else:
                    self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("X-Linked-Etag", f'"{sha}"')
                self.send_header("X-Linked-Size", str(len(hub.data)))
                self.send_header("ETag", f'"{sha}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(hub.data)))
                self.end_headers()

            def do_GET(self):  # noqa: N802
                if not self._headers_for():
                    return
                start = 0
                header = self.headers.get("Range")
                if header and header.startswith("bytes="):
                    start = int(header[6:].split("-")[0])
                body = hub.data[start:] + bytes(hub.extra_bytes)
                if hub.wrong_bytes:
                    body = bytes(b ^ 0xFF for b in body[:4096]) + body[4096:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(hub.data) - 1}/{len(hub.data)}")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", f'"{hub.sha256}"')
                self.end_headers()
                sent = 0
                for i in range(0, len(body), 1 << 20):
                    chunk = body[i:i + (1 << 20)]
                    if hub.drop_after is not None and sent + len(chunk) > hub.drop_after:
                        self.wfile.write(chunk[: hub.drop_after - sent])
                        self.wfile.flush()
                        hub.drop_after = None
                        self.close_connection = True
                        self.connection.shutdown(2)  # the connection drops mid-file
                        return
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    sent += len(chunk)
                    if hub.stall_after is not None and sent >= hub.stall_after:
                        self.wfile.flush()
                        hub.closed.wait(60)
                        return
                    if hub.delay_per_chunk:
                        time.sleep(hub.delay_per_chunk)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def gets(self) -> list[dict]:
        # Not huggingface_hub's own look at its registry of AI agents (2.4: once a day, on first use).
        return [headers for method, path, headers in self.requests
                if method == "GET" and not path.startswith("/api/agent-harnesses")]

    def close(self):
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def serving(monkeypatch, tmp_path, repo: str, filename: str, data: bytes):
    """A FakeHub that huggingface_hub talks to (HF_ENDPOINT), with a cache of the test's own."""
    server = FakeHub(repo, filename, data)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf cache"))
    try:
        yield server
    finally:
        server.close()
