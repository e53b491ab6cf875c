"""ChatML, the format CodeActAgent was fine-tuned on."""

from __future__ import annotations

from .base import Message

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"


def chatml_prompt(messages: list[Message]) -> str:
    """Append-only by construction: each message adds text after the last, so a new
    turn's prompt starts with the previous one and the KV cache can be reused."""
    parts = [f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages]
    parts.append(f"{IM_START}assistant\n")
    return "".join(parts)
