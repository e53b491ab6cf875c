"""Signs that the loaded model cannot work in CodeAct's format, so the user can be told
once, instead of wondering why nothing runs.

Pure functions over a conversation's stored messages (dicts with ``kind`` and
``content``); the agent loop decides what to say.
"""

from __future__ import annotations

import re
from collections import Counter

from ..resources import messages
from .actions import OPEN, parse_reply

REPEATS = 4  # the same line or sentence this often in one reply is a loop
MIN_REPEATED_CHARS = 12  # shorter ones ("Yes.", "---", "}") repeat in good replies too
MIN_SAME_PROSE_CHARS = 80  # "You're welcome!" may come back; the same paragraph again is a loop
REPLIES_WITHOUT_ACTION = 3  # task after task answered without ever writing code

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SPACES = re.compile(r"\s+")
# Requests only code answers well: numbers to work out, data, files, plots. Kept narrow
# on purpose: "hello", "tell me a joke" or "write a poem" are not tasks here.
_TASK_WORDS = re.compile(
    r"\b(calculate|compute|plot|chart|graph|histogram|analy[sz]e|analysis|statistics|average|median|"
    r"regression|simulate|solve|equation|integral|derivative|factorial|prime|csv|excel|xlsx|"
    r"spreadsheet|dataframe|pandas|numpy|python|script|file|files|folder)\b",
    re.IGNORECASE,
)
# No bare "-": "3-4 sentences" and dates are not sums.
_ARITHMETIC = re.compile(r"\d\s*(?:[+*/^×÷]|times|plus|minus|divided by)\s*\d", re.IGNORECASE)


def looks_like_task(text: str) -> bool:
    """A user message that asks for something code would do."""
    files_attached = messages()["files_header"] in text  # work on them is asked for
    return files_attached or bool(_TASK_WORDS.search(text) or _ARITHMETIC.search(text))


def _normal(text: str) -> str:
    return _SPACES.sub(" ", text).strip().strip(".!?").lower()


def repeats_itself(reply: str) -> bool:
    """The same non-trivial line or sentence REPEATS times or more, outside its code
    (code repeats lines legitimately)."""
    prose = parse_reply(reply).thought
    return max(_most_repeated(prose.splitlines()), _most_repeated(_SENTENCE_END.split(prose))) >= REPEATS


def _most_repeated(pieces: list[str]) -> int:
    counts = Counter(key for key in map(_normal, pieces) if len(key) >= MIN_REPEATED_CHARS)
    return max(counts.values(), default=0)


def unfit_sign(messages: list[dict], finish_reason: str) -> str | None:
    """Why the last message, the model's reply just made, suggests the model cannot act
    on requests, or None.

    "length": the reply ran to the token limit without an action, in a conversation
    that never had one; "repeats": the reply repeats itself, or is the model's previous
    reply over again; "no_action": the third reply in a row to task-like requests in a
    conversation that never had an action.
    """
    reply = messages[-1]["content"]
    acted = any(m["kind"] == "assistant" and OPEN in m["content"] for m in messages)
    if finish_reason == "length" and not acted:
        return "length"
    if repeats_itself(reply) or _same_as_previous_reply(messages):
        return "repeats"
    replies = [m for m in messages if m["kind"] == "assistant"]
    requests = [m["content"] for m in messages if m["kind"] == "user"][-REPLIES_WITHOUT_ACTION:]
    if (not acted and len(replies) >= REPLIES_WITHOUT_ACTION and len(requests) == REPLIES_WITHOUT_ACTION
            and all(looks_like_task(text) for text in requests)):
        return "no_action"
    return None


def _same_as_previous_reply(messages: list[dict]) -> bool:
    """The reply is the model's previous one again, though what it answered differs (the
    same question asked twice may well get the same answer)."""
    turns = [m for m in messages if m["kind"] in ("user", "observation", "assistant")]
    replies = [i for i, m in enumerate(turns) if m["kind"] == "assistant"]
    if len(replies) < 2:
        return False
    last, previous = replies[-1], replies[-2]
    reply = _normal(turns[last]["content"])
    if reply != _normal(turns[previous]["content"]):
        return False
    # The same action after its result is a loop; a short pleasantry again is not.
    if OPEN not in reply and len(reply) < MIN_SAME_PROSE_CHARS:
        return False
    asked_last = turns[last - 1]["content"] if last > 0 else ""
    asked_previous = turns[previous - 1]["content"] if previous > 0 else ""
    return _normal(asked_last) != _normal(asked_previous)
