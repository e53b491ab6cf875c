"""A backend that plays back written replies: deterministic agent-loop and window tests,
screenshots and benchmarks. It behaves like a server: it streams in small pieces, stops
at the first stop string (and strips it), and honours cancellation between pieces.
With ``progress_steps``, it first reports reading the prompt in that many steps, as
llama.cpp does for a long prompt."""

from __future__ import annotations

import threading
import time
from typing import Callable

from .. import defaults
from .base import BackendInfo, ChatBackend, GenerationParams, GenerationResult, Message, ProgressHook

Reply = str | Callable[[list[Message]], str]


class ScriptedBackend(ChatBackend):
    """A model that answers with the replies it was given, for tests, screenshots and benchmarks."""

    def __init__(self, replies: list[Reply], *, piece_chars: int = 4, piece_delay: float = 0.0,
                 n_ctx: int = defaults.N_CTX, progress_steps: int = 0):
        self.replies = list(replies)
        self.piece_chars = piece_chars
        self.piece_delay = piece_delay
        self.progress_steps = progress_steps
        self.calls: list[list[Message]] = []
        self.info = BackendInfo(kind="scripted", model="scripted", n_ctx=n_ctx, chat_format="none")

    def count_tokens(self, messages: list[Message]) -> int:
        return sum(len(m["content"]) for m in messages) // 4 + 4 * len(messages)

    def generate(self, messages, params: GenerationParams, on_piece, cancel: threading.Event | None = None, *,
                 on_progress: ProgressHook | None = None):
        self.calls.append([dict(m) for m in messages])
        reply = self.replies.pop(0) if self.replies else "(no more scripted replies)"
        text = reply(messages) if callable(reply) else reply
        finish = "stop"
        cut = min((i for i in (text.find(s) for s in params.stop) if i >= 0), default=-1)
        if cut >= 0:
            text = text[:cut]
        started = time.monotonic()
        total = self.count_tokens(messages)
        for step in range(1, self.progress_steps + 1):
            if cancel is not None and cancel.is_set():
                return GenerationResult(text="", finish_reason="cancelled", prompt_tokens=total,
                                        seconds=time.monotonic() - started)
            if self.piece_delay:
                time.sleep(self.piece_delay)
            if on_progress is not None:
                on_progress(total * step // self.progress_steps, total)
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
