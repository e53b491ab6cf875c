"""Typed output items, built from the kernel's IOPub messages.

The full output is kept for the history and the window; what the model reads is made
from it separately (``observation.py``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from ..visible_text import well_formed

# One action may print far more than anyone will read; keep the head and the tail
# of each stream, and say how much was dropped in between.
STREAM_KEEP_CHARS = 1_000_000


@dataclass
class OutputItem:
    kind: str  # "stdout" | "stderr" | "text" | "html" | "image" | "error"
    text: str = ""
    mime: str = "text/plain"
    data: bytes | None = None  # image bytes
    plain: str = ""  # text/plain alternative of a rich item
    ename: str = ""
    evalue: str = ""
    traceback: list[str] = field(default_factory=list)
    dropped_chars: int = 0  # stream text dropped from the middle

    def to_json(self) -> dict:
        out = {"kind": self.kind, "mime": self.mime}
        if self.kind == "image":
            out["bytes"] = len(self.data or b"")
        else:
            out["text"] = self.text
        if self.plain:
            out["plain"] = self.plain
        if self.kind == "error":
            out.update(ename=self.ename, evalue=self.evalue, traceback=self.traceback)
        if self.dropped_chars:
            out["dropped_chars"] = self.dropped_chars
        return out


class StreamBuffer:
    """Accumulates one stream (stdout or stderr) keeping head and tail within a budget."""

    def __init__(self, name: str, keep: int = STREAM_KEEP_CHARS):
        self.name = name
        self.keep = keep
        self.head: list[str] = []
        self.head_len = 0
        self.tail = ""
        self.dropped = 0

    def add(self, text: str) -> None:
        room = self.keep // 2 - self.head_len
        if room > 0:
            self.head.append(text[:room])
            self.head_len += min(room, len(text))
            text = text[room:]
        if text:
            self.tail += text
            excess = len(self.tail) - self.keep // 2
            if excess > 0:
                self.dropped += excess
                self.tail = self.tail[excess:]

    def item(self) -> OutputItem:
        head = "".join(self.head)
        if self.dropped:
            text = f"{head}\n[... {self.dropped} characters not kept ...]\n{self.tail}"
        else:
            text = head + self.tail
        return OutputItem(kind=self.name, text=text, dropped_chars=self.dropped)


def _text(value) -> str:
    """A MIME bundle's text: a string, or a list of lines as nbformat allows; never trusted to be either."""
    if isinstance(value, str):
        return well_formed(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return well_formed("".join(value))
    return ""


def _png(value) -> bytes | None:
    """The bytes of a base64 PNG, or None when they are not one (the kernel may send anything)."""
    try:
        raw = base64.b64decode(_text(value), validate=False)
    except (ValueError, TypeError):
        return None
    return raw if png_size(raw) else None


def item_from_message(msg: dict) -> OutputItem | None:
    """Turns a display_data / execute_result / error message into an item. Everything in
    the message came from the kernel, so every field is checked before it is used."""
    kind = msg.get("header", {}).get("msg_type")
    content = msg.get("content")
    if not isinstance(content, dict):
        return None
    if kind == "error":
        traceback = [well_formed(line) for line in content.get("traceback", []) if isinstance(line, str)] \
            if isinstance(content.get("traceback"), list) else []
        return OutputItem(kind="error", ename=_text(content.get("ename")), evalue=_text(content.get("evalue")),
                          traceback=traceback, text="\n".join(traceback))
    if kind in ("display_data", "execute_result"):
        data = content.get("data")
        if not isinstance(data, dict):
            return None
        plain = _text(data.get("text/plain"))
        if "image/png" in data:
            raw = _png(data["image/png"])
            if raw is not None:
                return OutputItem(kind="image", mime="image/png", data=raw, plain=plain)
            from ..resources import messages

            return OutputItem(kind="stderr", text=messages()["image_unreadable"] + "\n")
        if "text/html" in data and _text(data["text/html"]):
            return OutputItem(kind="html", mime="text/html", text=_text(data["text/html"]), plain=plain)
        if plain:
            return OutputItem(kind="text", text=plain)
    return None


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG header, without decoding the image."""
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None
