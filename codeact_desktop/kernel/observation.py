"""What the model reads after an action: plain text, no ANSI codes, within a budget."""

from __future__ import annotations

import re

from .. import defaults
from ..resources import messages
from .outputs import OutputItem, image_type, png_size

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def item_text(item: OutputItem) -> str:
    texts = messages()
    if item.kind == "image":
        size = png_size(item.data or b"")
        if size:
            return texts["image_placeholder"].format(width=size[0], height=size[1])
        if not item.data or image_type(item.data) == "png":
            return texts["image_placeholder_unknown"]
        return texts["image_placeholder_kind"].format(kind=image_type(item.data).upper())
    if item.kind == "error":
        return strip_ansi("\n".join(item.traceback))
    if item.kind in ("html", "text") and item.plain:
        # The model reads the text/plain twin (a DataFrame's repr, sympy's sqrt(x)), not the
        # markup; LaTeX, Markdown or JSON without one as written (the model reads them well).
        return item.plain
    return strip_ansi(item.text)


def truncate_middle(text: str, budget: int) -> str:
    """Keeps the head and the tail (where errors and results are), marks the cut."""
    if len(text) <= budget:
        return text
    head_len = int(budget * 0.6)
    tail_len = budget - head_len
    cut = text[head_len : len(text) - tail_len]
    marker = messages()["truncated"].format(
        cut_chars=len(cut), cut_lines=cut.count("\n")
    )
    return text[:head_len] + marker + text[len(text) - tail_len :]


def observation_text(items: list[OutputItem], budget: int = defaults.OBSERVATION_CHARS) -> str:
    """The body of the observation; the caller adds the status lines and the prefix."""
    # Joined as the seed's executor did (outputs verbatim), with a line break only
    # where one item does not end in one.
    parts: list[str] = []
    for item in items:
        text = item_text(item)
        if parts and text and not parts[-1].endswith("\n"):
            parts.append("\n")
        parts.append(text)
    body = "".join(parts)
    if not body.strip():
        return ""
    return truncate_middle(body, budget)
