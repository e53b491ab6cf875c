"""The interface every model backend keeps: stream text pieces, stop on request,
report token counts and, where it can, progress through a long prompt."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Callable

from .. import defaults
from ..resources import messages

Message = dict[str, str]  # {"role": ..., "content": ...}
# (prompt tokens evaluated so far, prompt tokens to evaluate)
ProgressHook = Callable[[int, int], None]

# CodeAct's two stop sequences: the end of a ChatML turn, and the end of an action (the
# app runs the code and answers with the observation). The tag's spelling is data, with
# the other texts the model reads (agent/actions.py reads it from the same place).
CODEACT_STOPS = ("<|im_end|>", messages()["action_close"])


class BackendError(RuntimeError):
    """A message meant for the user: what went wrong and what to do about it, in plain
    words. It may quote a server, so the log records only its type."""


@dataclass
class GenerationParams:
    """How to write one reply: its length, sampling and where it stops."""

    max_tokens: int = defaults.MAX_NEW_TOKENS
    temperature: float = defaults.TEMPERATURE
    top_p: float = 1.0
    stop: tuple[str, ...] = CODEACT_STOPS


@dataclass
class GenerationResult:
    """One reply written, with why it ended and its token counts and timings."""

    text: str
    finish_reason: str  # "stop" | "length" | "cancelled"
    prompt_tokens: int = 0
    prompt_tokens_evaluated: int | None = None  # None: the backend cannot tell
    completion_tokens: int = 0
    seconds: float = 0.0
    first_piece_seconds: float | None = None

    @property
    def tokens_per_second(self) -> float:
        if self.first_piece_seconds is None:
            return 0.0
        decode = self.seconds - self.first_piece_seconds
        return (self.completion_tokens - 1) / decode if decode > 0 else 0.0

    def to_json(self) -> dict:
        out = asdict(self)
        out["tokens_per_second"] = round(self.tokens_per_second, 2)
        return out


@dataclass
class BackendInfo:
    """What a backend runs and where: for the status bar, transcripts and diagnostics."""

    kind: str  # "llama.cpp" | "openai"
    model: str
    n_ctx: int
    chat_format: str
    device: str = "cpu"  # "cpu" | "gpu" | "remote"
    device_name: str = ""  # the GPU llama.cpp put layers on ("Vulkan0")
    notes: list[str] = field(default_factory=list)
    model_file: str = ""  # the GGUF's file name (not its folder); "" for a server
    model_bytes: int = 0
    quantisation: str = ""  # "Q4_K_M", from the GGUF's header
    gpu_layers: int = 0  # layers llama.cpp put on the GPU


class ChatBackend(ABC):
    """A model the agent talks to; one request at a time, from one thread."""

    info: BackendInfo

    @abstractmethod
    def generate(
        self,
        messages: list[Message],
        params: GenerationParams,
        on_piece: Callable[[str], None],
        cancel: threading.Event | None = None,
        *,
        on_progress: ProgressHook | None = None,
    ) -> GenerationResult:
        """Streams the assistant's reply into ``on_piece``; returns when it ends.

        The stop strings are not part of the text (servers strip them too).
        ``on_progress(done, total)`` is called on the caller's thread while a long prompt
        is read, by backends that can tell (a server cannot).
        """

    @abstractmethod
    def count_tokens(self, messages: list[Message]) -> int:
        """Tokens the prompt for ``messages`` takes, generation prompt included."""

    def forget(self, messages: list[Message]) -> None:
        """A conversation was deleted: drop whatever this backend kept of it (a local
        model's saved KV states). A server keeps nothing of ours."""

    def close(self) -> None:
        pass
