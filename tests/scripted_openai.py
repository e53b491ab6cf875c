"""A real OpenAI-compatible HTTP server (``/v1/models``, streaming ``/v1/chat/completions``)
that answers with scripted replies, streamed in small pieces. Which reply comes is
decided by the request itself (how many observations follow the user's last message),
so any number of clients, killed and restarted, get the same conversation."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def send_json(handler: BaseHTTPRequestHandler, payload: dict) -> None:
    """A 200 reply with ``payload`` as its JSON body (the model list, say)."""
    body = json.dumps(payload).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class ScriptedOpenAIServer:
    def __init__(self, replies: list[str], piece_chars: int = 4, piece_delay: float = 0.01,
                 model_ids: tuple[str, ...] = ("scripted",)):
        self.replies = replies
        self.authorizations: list[str | None] = []  # the Authorization header of each request
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                send_json(self, {"data": [{"id": model_id, "context_length": 8192} for model_id in model_ids]})

            def do_POST(self):  # noqa: N802
                server.authorizations.append(self.headers.get("Authorization"))
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                reply = server.reply_for(request["messages"])
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    for i in range(0, len(reply), piece_chars):
                        chunk = {"choices": [{"delta": {"content": reply[i:i + piece_chars]}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(piece_delay)
                    done = {"choices": [{"delta": {}, "finish_reason": "stop"}]}
                    self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed mid-stream

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def reply_for(self, messages: list[dict]) -> str:
        observations = 0
        for message in reversed(messages):
            if message["role"] != "user":
                continue
            if not message["content"].startswith("Execution Output:"):
                break
            observations += 1
        return self.replies[min(observations, len(self.replies) - 1)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
