"""OpenAI-compatible HTTP (``/v1/chat/completions``, streaming): vLLM, llama.cpp's
server, Ollama, LM Studio. The server applies the chat template; we send messages."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

import httpx

from .. import defaults
from ..app_log import safe_description
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
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        )
        listed = self._list_models()
        if model is None:
            if not listed:
                raise BackendError(f"The server at {self.base_url} lists no models; name one.")
            model = listed[0]["id"]
        entry = next((m for m in listed if m.get("id") == model), {})
        ctx = n_ctx or entry.get("max_model_len") or entry.get("context_length") or DEFAULT_N_CTX
        self.model = model
        self.info = BackendInfo(
            kind="openai", model=model, n_ctx=int(ctx), chat_format="server", device="remote"
        )

    def _list_models(self) -> list[dict]:
        try:
            response = self._http.get("/models")
        except httpx.HTTPError as exc:
            log.warning("cannot reach the server: %s", safe_description(exc))
            raise BackendError(f"Cannot reach the server at {self.base_url}: {_reason(exc)}") from exc
        if response.status_code >= 400:
            raise BackendError(
                f"The server at {self.base_url} answered {response.status_code} to /models:"
                f" {response.text[:200]}"
            )
        try:
            return list(response.json().get("data", []))
        except ValueError as exc:
            raise BackendError(f"{self.base_url} is not an OpenAI-compatible API (/models is not JSON)") from exc

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
        try:
            with self._http.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise BackendError(
                        f"The server refused the request ({response.status_code}): {response.text[:300]}"
                    )
                for line in response.iter_lines():
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
                            parts.append(piece)
                            on_piece(piece)
                        if finish_reason:
                            finish = finish_reason
        except httpx.HTTPError as exc:
            log.warning("lost the server mid-reply: %s", safe_description(exc))
            raise BackendError(f"Lost the server at {self.base_url}: {_reason(exc)}") from exc
        except MalformedStream as exc:
            log.warning("the server's stream could not be read after %d pieces", len(parts))
            raise BackendError(
                f"The server at {self.base_url} sent a reply this app cannot read ({exc}). "
                "The answer stopped there; send the message again, or check that the server speaks "
                "OpenAI's streaming format."
            ) from exc
        text = "".join(parts)
        return GenerationResult(
            text=text,
            finish_reason=finish if finish in ("stop", "length", "cancelled") else "stop",
            prompt_tokens=int(usage.get("prompt_tokens") or self.count_tokens(messages)),
            prompt_tokens_evaluated=None,
            completion_tokens=int(usage.get("completion_tokens") or len(parts)),
            seconds=time.monotonic() - started,
            first_piece_seconds=first,
        )

    def close(self) -> None:
        self._http.close()


def _chunk(data: str) -> dict:
    """One ``data:`` line's JSON object. Raises MalformedStream (naming what was wrong,
    not quoting it: it may hold the model's words)."""
    try:
        chunk = json.loads(data)
    except ValueError:
        raise MalformedStream("a streamed line that is not JSON") from None
    if not isinstance(chunk, dict):
        raise MalformedStream(f"a streamed chunk that is a JSON {type(chunk).__name__}, not an object")
    error = chunk.get("error")
    if error is not None:  # vLLM and others report a failure mid-stream this way
        detail = error.get("message") if isinstance(error, dict) else error
        raise MalformedStream(f"the server reported an error: {str(detail)[:200]}")
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
