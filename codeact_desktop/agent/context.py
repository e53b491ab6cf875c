"""Fitting a conversation into the model's context.

Oldest observations are shortened first, then the oldest exchanges dropped; the system
prompt and the latest message are never touched. The caller is told what was done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import resources
from ..llm.base import Message

SHORT_OBSERVATION_CHARS = 300


class ContextOverflow(ValueError):
    """Even shortened, the conversation does not fit the model's context; the message says by how much."""


@dataclass
class FittedPrompt:
    """The messages as sent to the model, and what was shortened or left out to fit."""

    messages: list[Message]
    tokens: int
    shortened: int = 0
    dropped: int = 0

    def summary(self) -> str:
        parts = []
        if self.shortened:
            parts.append(f"{self.shortened} older code result(s) shortened")
        if self.dropped:
            parts.append(f"{self.dropped} oldest message(s) left out")
        return ", ".join(parts)


def _shorten(content: str) -> str:
    half = SHORT_OBSERVATION_CHARS // 2
    if len(content) <= SHORT_OBSERVATION_CHARS + 80:
        return content
    return content[:half] + resources.messages()["observation_shortened"] + content[-half:]


def fit_to_context(
    messages: list[Message],
    kinds: list[str],
    count_tokens: Callable[[list[Message]], int],
    n_ctx: int,
    reserve: int,
) -> FittedPrompt:
    """``kinds[i]`` says what ``messages[i]`` is (system/user/assistant/observation)."""
    limit = n_ctx - reserve
    msgs = [dict(m) for m in messages]
    tokens = count_tokens(msgs)
    fitted = FittedPrompt(msgs, tokens)
    if tokens <= limit:
        return fitted
    last = len(msgs) - 1
    for i, kind in enumerate(kinds):
        if kind == "observation" and i != last:
            short = _shorten(msgs[i]["content"])
            if short != msgs[i]["content"]:
                msgs[i]["content"] = short
                fitted.shortened += 1
                fitted.tokens = count_tokens(msgs)
                if fitted.tokens <= limit:
                    return fitted
    # Drop whole messages after the system prompt, oldest first; keep the last one.
    first = 1 if kinds and kinds[0] == "system" else 0
    while fitted.tokens > limit and len(msgs) - first > 1:
        del msgs[first]
        fitted.dropped += 1
        fitted.tokens = count_tokens(msgs)
    if fitted.tokens > limit:
        raise ContextOverflow(
            f"The message is about {fitted.tokens} tokens with the system prompt, but the"
            f" model's context holds {n_ctx} and {reserve} are kept for the reply."
            " Shorten the message, or attach the text as a file instead."
        )
    fitted.messages = msgs
    return fitted
