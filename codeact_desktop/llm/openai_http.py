"""OpenAI-compatible HTTP (``/v1/chat/completions``, streaming): vLLM, llama.cpp's
server, Ollama, LM Studio. The server applies the chat template; we send messages.

What a server sends is read within bounds (a line, an error body, the model list, a
reply), since a hostile server or a man in the middle of an http:// address sent an endless
line and took 6 GB in 10 s; its words reach the window on one line, quoted; and Stop closes
the connection at once, even while the server sends nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable, Iterator

import httpx

from .. import defaults
from ..app_log import safe_description
from ..socket_stop import shut_on_cancel, socket_of
from ..visible_text import visible_name
from .base import (
    BackendError,
    BackendInfo,
    ChatBackend,
    GenerationParams,
    GenerationResult,
    Message,
    ProgressHook,
)

DEFAULT_N_CTX = defaults.N_CTX
# Without the server's tokenizer, a cautious estimate for fitting the context.
CHARS_PER_TOKEN = 3.2
MAX_LINE = 1 << 20  # one streamed line; a chunk is a few hundred bytes
MAX_MODELS_BODY = 4 << 20  # /models: hundreds of entries
MAX_ERROR_BODY = 4096  # what is read of an error's body
# A model's name as a server lists it: a Hub id is at most 96 characters, a path a few hundred.
# Longer is not a name (a 20,000-character id stretched the window to its width).
MAX_MODEL_ID = 512
CHARS_PER_REPLY_TOKEN = 32  # a reply longer than max_tokens of these ends as "length"
log = logging.getLogger(__name__)


class MalformedStream(ValueError):
    """A streamed chunk this client cannot read; the text says what, never the chunk."""


class OpenAIBackend(ChatBackend):
    """A model behind an OpenAI-compatible server, streamed over HTTP."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        n_ctx: int | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 300.0,
    ):
        self.base_url = base_url.rstrip("/")
        # Bytes as sent: a compressed reply is decoded a whole chunk at a time before any of
        # the bounds below can look at it (1,826 bytes of double gzip grew to 2 GB).
        headers = {"Accept-Encoding": "identity", **({"Authorization": f"Bearer {api_key}"} if api_key else {})}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        )
        listed = self._list_models()
        if model is not None and len(model) > MAX_MODEL_ID:
            raise BackendError(f"A model name of {len(model):,} characters is not one (at most {MAX_MODEL_ID}).")
        if model is None:
            if not listed:
                raise BackendError(f"The server at {self.base_url} lists no models; name one.")
            model = listed[0]["id"]
        entry = next((m for m in listed if m["id"] == model), {})
        ctx = n_ctx or entry.get("max_model_len") or entry.get("context_length") or DEFAULT_N_CTX
        ctx = min(ctx, 1 << 24)  # a server's claim of 10**30 tokens is not a context to plan for
        self.model = model
        self.info = BackendInfo(
            kind="openai", model=model, n_ctx=int(ctx), chat_format="server", device="remote"
        )

    def _list_models(self) -> list[dict]:
        try:
            with self._http.stream("GET", "/models") as response:
                if response.status_code >= 400:
                    raise BackendError(f"The server at {self.base_url} answered {response.status_code} to "
                                       f"/models: {_quoted(_read_at_most(response, MAX_ERROR_BODY))}")
                body = _read_at_most(response, MAX_MODELS_BODY + 1)
        except httpx.HTTPError as exc:
            log.warning("cannot reach the server: %s", safe_description(exc))
            raise BackendError(f"Cannot reach the server at {self.base_url}: {_reason(exc)}") from exc
        except MalformedStream as exc:
            raise BackendError(f"The server at {self.base_url} sent {exc}; it is not read.") from exc
        if len(body) > MAX_MODELS_BODY:
            raise BackendError(f"The server at {self.base_url} sent a model list of more than "
                               f"{MAX_MODELS_BODY >> 20} MB; it is not read.")
        try:
            listed = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise BackendError(f"{self.base_url} is not an OpenAI-compatible API (/models is not JSON)") from exc
        data = listed.get("data", []) if isinstance(listed, dict) else None
        if not isinstance(data, list):
            raise BackendError(f"{self.base_url} is not an OpenAI-compatible API (/models holds no list)")
        # Only entries that name a model with a string id of a name's length; a context that
        # is not a count is left out.
        return [{"id": entry["id"], **{key: entry[key] for key in ("max_model_len", "context_length")
                                      if _count(entry.get(key))}}
                for entry in data if isinstance(entry, dict) and isinstance(entry.get("id"), str)
                and 0 < len(entry["id"]) <= MAX_MODEL_ID]

    def count_tokens(self, messages: list[Message]) -> int:
        chars = sum(len(m["content"]) + 16 for m in messages)
        return int(chars / CHARS_PER_TOKEN) + 8

    def generate(
        self,
        messages: list[Message],
        params: GenerationParams,
        on_piece: Callable[[str], None],
        cancel: threading.Event | None = None,
        *,
        on_progress: ProgressHook | None = None,  # a server does not say how far it has read
    ) -> GenerationResult:
        body = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stop": list(params.stop)[:4],  # OpenAI's limit
            "stream_options": {"include_usage": True},
        }
        started = time.monotonic()
        first = None
        parts: list[str] = []
        finish = "stop"
        usage: dict = {}
        room = max(params.max_tokens, 1) * CHARS_PER_REPLY_TOKEN
        try:
            with self._http.stream("POST", "/chat/completions", json=body) as response, \
                    shut_on_cancel(cancel, lambda: socket_of(response)):
                if response.status_code >= 400:
                    raise BackendError(f"The server refused the request ({response.status_code}): "
                                       f"{_quoted(_read_at_most(response, MAX_ERROR_BODY))}")
                for line in _lines(response):
                    if cancel is not None and cancel.is_set():
                        finish = "cancelled"
                        break  # leaving the block closes the connection: the server stops
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = _chunk(data)
                    usage = chunk.get("usage") if isinstance(chunk.get("usage"), dict) else usage
                    for piece, finish_reason in _choices(chunk):
                        if piece:
                            if first is None:
                                first = time.monotonic() - started
                            piece = piece[:room]
                            room -= len(piece)
                            parts.append(piece)
                            on_piece(piece)
                        if finish_reason:
                            finish = finish_reason
                    if room <= 0:  # a server that does not keep to max_tokens: the reply ends here
                        finish = "length"
                        break
                if cancel is not None and cancel.is_set():  # the stream ended because Stop shut it
                    finish = "cancelled"
        except httpx.HTTPError as exc:
            if cancel is not None and cancel.is_set():  # Stop closed the connection under the read
                return self._result(parts, "cancelled", usage, messages, started, first)
            log.warning("lost the server mid-reply: %s", safe_description(exc))
            raise BackendError(f"Lost the server at {self.base_url}: {_reason(exc)}") from exc
        except MalformedStream as exc:
            log.warning("the server's stream could not be read after %d pieces", len(parts))
            raise BackendError(
                f"The server at {self.base_url} sent a reply this app cannot read ({exc}). "
                "The answer stopped there; send the message again, or check that the server speaks "
                "OpenAI's streaming format."
            ) from exc
        return self._result(parts, finish, usage, messages, started, first)

    def _result(self, parts: list[str], finish: str, usage: dict, messages: list[Message], started: float,
                first: float | None) -> GenerationResult:
        return GenerationResult(
            text="".join(parts),
            finish_reason=finish if finish in ("stop", "length", "cancelled") else "stop",
            prompt_tokens=_count(usage.get("prompt_tokens")) or self.count_tokens(messages),
            prompt_tokens_evaluated=None,
            completion_tokens=_count(usage.get("completion_tokens")) or len(parts),
            seconds=time.monotonic() - started,
            first_piece_seconds=first,
        )

    def close(self) -> None:
        self._http.close()


def _count(value) -> int:
    """A server's count (tokens, a context length) when it is one, else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1 << 40 else 0


def _quoted(text: str) -> str:
    """A server's words, on one line and quoted: never read as the app's own lines."""
    return f"“{visible_name(' '.join(text.split())[:300])}”"


def _received(response: httpx.Response) -> Iterator[bytes]:
    """The body's bytes as they arrive, never decompressed: the bounds count what came."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise MalformedStream(f"a reply compressed as {visible_name(encoding[:40])}, which was not asked for")
    yield from response.iter_raw()


def _read_at_most(response: httpx.Response, limit: int) -> str:
    data = bytearray()
    for block in _received(response):
        data += block
        if len(data) >= limit:
            break
    return bytes(data[:limit]).decode("utf-8", "replace")


def _lines(response: httpx.Response) -> Iterator[str]:
    """The stream's lines, split at LF only (httpx also split at U+2028 inside a JSON
    string), none longer than MAX_LINE (an endless line grew without bound). Each block is
    searched once: 64 MB of newlines made the old split copy the rest after every line."""
    pending = bytearray()
    for block in _received(response):
        start = 0
        while (end := block.find(b"\n", start)) >= 0:
            pending += block[start:end]
            yield bytes(pending).rstrip(b"\r").decode("utf-8", "replace")
            pending.clear()
            start = end + 1
        pending += block[start:]
        if len(pending) > MAX_LINE:
            raise MalformedStream(f"a streamed line longer than {MAX_LINE >> 20} MB")
    if pending:
        yield bytes(pending).decode("utf-8", "replace")


def _chunk(data: str) -> dict:
    """One ``data:`` line's JSON object. Raises MalformedStream (naming what was wrong,
    not quoting it: it may hold the model's words)."""
    try:
        chunk = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: arrays nested 100,000 deep
        raise MalformedStream("a streamed line that is not JSON") from None
    if not isinstance(chunk, dict):
        raise MalformedStream(f"a streamed chunk that is a JSON {type(chunk).__name__}, not an object")
    error = chunk.get("error")
    if error is not None:  # vLLM and others report a failure mid-stream this way
        detail = error.get("message") if isinstance(error, dict) else error
        raise MalformedStream(f"the server reported an error: {_quoted(str(detail))}")
    if "choices" not in chunk and "usage" not in chunk:
        raise MalformedStream("a streamed chunk without choices")
    return chunk


def _choices(chunk: dict) -> list[tuple[str, str | None]]:
    """(text piece, finish reason) of each choice, every field type-checked."""
    choices = chunk.get("choices") or []
    if not isinstance(choices, list):
        raise MalformedStream("a streamed chunk whose choices are not a list")
    found = []
    for choice in choices:
        if not isinstance(choice, dict):
            raise MalformedStream("a streamed choice that is not an object")
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise MalformedStream("a streamed delta that is not an object")
        piece = delta.get("content") or ""
        if not isinstance(piece, str):
            raise MalformedStream(f"a streamed text that is a {type(piece).__name__}, not a string")
        reason = choice.get("finish_reason")
        found.append((piece, reason if isinstance(reason, str) else None))
    return found


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"connection refused or no route ({text})"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({text})"
    return text
