"""A backend that plays back written replies: deterministic agent-loop and window tests,
screenshots and benchmarks. It behaves like a server: it streams in small pieces, stops
at the first stop string (and strips it), and honours cancellation between pieces."""

from __future__ import annotations

import threading
import time
from typing import Callable

from .base import BackendInfo, ChatBackend, GenerationParams, GenerationResult, Message

Reply = str | Callable[[list[Message]], str]


class ScriptedBackend(ChatBackend):
    def __init__(self, replies: list[Reply], *, piece_chars: int = 4, piece_delay: float = 0.0, n_ctx: int = 8192):
        self.replies = list(replies)
        self.piece_chars = piece_chars
        self.piece_delay = piece_delay
        self.calls: list[list[Message]] = []
        self.info = BackendInfo(kind="scripted", model="scripted", n_ctx=n_ctx, chat_format="none")

    def count_tokens(self, messages: list[Message]) -> int:
        return sum(len(m["content"]) for m in messages) // 4 + 4 * len(messages)

    def generate(self, messages, params: GenerationParams, on_piece, cancel: threading.Event | None = None):
        self.calls.append([dict(m) for m in messages])
        reply = self.replies.pop(0) if self.replies else "(no more scripted replies)"
        text = reply(messages) if callable(reply) else reply
        finish = "stop"
        cut = min((i for i in (text.find(s) for s in params.stop) if i >= 0), default=-1)
        if cut >= 0:
            text = text[:cut]
        started = time.monotonic()
        sent = []
        for i in range(0, len(text), self.piece_chars):
            if cancel is not None and cancel.is_set():
                finish = "cancelled"
                break
            piece = text[i:i + self.piece_chars]
            sent.append(piece)
            on_piece(piece)
            if self.piece_delay:
                time.sleep(self.piece_delay)
        return GenerationResult(
            text="".join(sent), finish_reason=finish,
            prompt_tokens=self.count_tokens(messages), completion_tokens=len(sent),
            seconds=time.monotonic() - started, first_piece_seconds=0.0,
        )
