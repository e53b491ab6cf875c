"""Finding the code action in a model reply.

The model writes ``thought <execute> code </execute>``. Generation stops at
``</execute>`` and servers strip the stop string, so an ``<execute>`` left open when the
reply stopped is a complete action. Only the first action runs: anything the model wrote
after it was written without seeing its result.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from ..resources import messages

# The action tag, as the system prompt teaches it: spelt once, in the texts the model reads
# (llm/base.py's stop sequences read the same entry). Code uses these names.
OPEN, CLOSE = messages()["action_open"], messages()["action_close"]
_FENCE = re.compile(r"^\s*```[\w+-]*[ \t]*\n(.*?)\n?\s*```\s*$", re.DOTALL)


@dataclass
class ParsedReply:
    """A model reply split into its thought and its first action."""

    thought: str  # text before the action (or the whole reply)
    code: str | None  # None: no action
    runnable: bool  # False when the action was cut off mid-code
    history_text: str  # the reply as the history keeps it: tag closed, tail dropped
    ignored_blocks: int = 0  # further actions after the first


def clean_code(raw: str) -> str:
    match = _FENCE.match(raw)
    if match:
        raw = match.group(1)
    return textwrap.dedent(raw).strip("\n").rstrip()


def parse_reply(text: str, finish_reason: str = "stop") -> ParsedReply:
    start = text.find(OPEN)
    if start < 0:
        return ParsedReply(thought=text.strip(), code=None, runnable=False, history_text=text.strip())
    thought = text[:start].strip()
    body_start = start + len(OPEN)
    end = text.find(CLOSE, body_start)
    if end >= 0:
        raw = text[body_start:end]
        rest = text[end + len(CLOSE):]
        runnable = True
    else:
        raw = text[body_start:]
        rest = ""
        # Open at a stop: the stop string was </execute>. Open at the length limit: cut off.
        runnable = finish_reason == "stop"
    code = clean_code(raw)
    history = f"{text[:body_start]}{raw}{CLOSE}"
    return ParsedReply(
        thought=thought,
        code=code,
        runnable=runnable and bool(code.strip()),
        history_text=history,
        ignored_blocks=rest.count(OPEN),
    )
