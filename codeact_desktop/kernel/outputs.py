"""Typed output items, built from the kernel's IOPub messages and kept whole.

A display keeps its whole MIME bundle as Jupyter keeps it (``nbformat.v4.output_from_msg``):
the history and the notebook export hold every type the kernel sent. What the window shows
is picked from that bundle by ``DISPLAY_PRIORITY``; what the model reads is made from it
separately (``observation.py``).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field

from ..image_size import MAX_IMAGE_PIXELS, image_size, png_size
from ..untrusted_markup import (clean_html, clean_svg, html_layout_cost, inline_image_pixels, markdown_cost,
                               text_only)
from ..visible_text import well_formed

# One action may print far more than anyone will read; keep the head and the tail
# of each stream, and say how much was dropped in between.
STREAM_KEEP_CHARS = 1_000_000

# What the window shows of a bundle, first found first, as qtconsole and nbconvert choose.
DISPLAY_PRIORITY = ("image/png", "image/jpeg", "image/svg+xml", "text/latex", "text/html", "text/markdown",
                    "application/json", "text/plain")
# The broad kind each shown type makes: what the execution loop counts and the history files under.
_KIND_OF_MIME = {"image/png": "image", "image/jpeg": "image", "image/svg+xml": "image", "text/html": "html"}
DISPLAY_KINDS = ("image", "html", "text")
# nbformat's own patterns for a bundle's keys: JSON types hold any JSON value, the rest text.
_MIME = re.compile(r"[a-zA-Z0-9]+/[a-zA-Z0-9\-+.]+\Z")
_JSON_MIME = re.compile(r"application/(.*\+)?json\Z")
# A JSON value (a bundle's application/json, metadata) is validated by nbformat and written
# out as text at every opening: 600,000 objects took 7.9 s of the UI thread, and 900 levels
# of nesting overflowed nbformat's validator. Past these the value is left out.
MAX_JSON_NODES = 100_000
MAX_JSON_DEPTH = 64


@dataclass
class OutputItem:
    """One output of an action: a stream, an error, or a display with its whole bundle."""

    kind: str  # "stdout" | "stderr" | "text" | "html" | "image" | "error"
    text: str = ""  # stream text, joined traceback, the HTML, or the text of the shown type
    mime: str = "text/plain"  # the type shown (DISPLAY_PRIORITY's pick)
    data: bytes | None = None  # image bytes: PNG, JPEG or the cleaned SVG
    plain: str = ""  # text/plain alternative of a rich item
    ename: str = ""
    evalue: str = ""
    traceback: list[str] = field(default_factory=list)
    dropped_chars: int = 0  # stream text dropped from the middle
    bundle: dict = field(default_factory=dict)  # every type sent, checked; images as base64 text
    metadata: dict = field(default_factory=dict)
    output_type: str = ""  # "display_data" | "execute_result" for a display
    execution_count: int | None = None

    @property
    def is_display(self) -> bool:
        """A display (counted against the per-run cap), not a stream or an error."""
        return self.kind in DISPLAY_KINDS

    @property
    def kept_size(self) -> int:
        """Characters and bytes this item holds, its bundle included."""
        size = len(self.data or b"") + len(self.text) + len(self.plain)
        for value in self.bundle.values():
            size += len(value) if isinstance(value, str) else len(json.dumps(value))
        return size

    def to_json(self) -> dict:
        """A short description for transcripts: the shown type and text, no image bytes."""
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
        if len(self.bundle) > 1:
            out["types"] = sorted(self.bundle)
        return out

    def to_output(self) -> dict:
        """The item as an nbformat output, as Jupyter keeps it (what the history stores)."""
        from nbformat import v4  # here: with its validator about 0.1 s of the window's start

        if self.kind in ("stdout", "stderr"):
            return v4.new_output("stream", name=self.kind, text=self.text)
        if self.kind == "error":
            return v4.new_output("error", ename=self.ename, evalue=self.evalue, traceback=self.traceback)
        data = self.bundle or _bundle_of_fields(self)
        if self.output_type == "execute_result":
            return v4.new_output("execute_result", data=data, metadata=self.metadata,
                                 execution_count=self.execution_count)
        return v4.new_output("display_data", data=data, metadata=self.metadata)


def _bundle_of_fields(item: OutputItem) -> dict:
    """A bundle for an item made without one (an older history's row)."""
    plain = item.plain or (item.text if item.kind == "text" else "")
    data = {"text/plain": plain or "<output>"}
    if item.kind == "image" and item.data:
        shown = item.mime if item.mime in _KIND_OF_MIME else "image/png"
        data[shown] = item.data.decode("utf-8") if shown == "image/svg+xml" else \
            base64.b64encode(item.data).decode("ascii")
    elif item.kind == "html":
        data["text/html"] = item.text
    elif item.kind == "text" and item.mime.startswith("text/") and item.text:
        data[item.mime] = item.text
    return data


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


def _decoded(value) -> bytes:
    try:
        return base64.b64decode(_text(value), validate=False)
    except (ValueError, TypeError):
        return b""


def _png(value) -> bytes | None:
    """The bytes of a base64 PNG, or None when they are not one (the kernel may send anything)."""
    raw = _decoded(value)
    return raw if png_size(raw) else None


def _jpeg(value) -> bytes | None:
    raw = _decoded(value)
    return raw if raw.startswith(b"\xff\xd8\xff") else None


def json_within_bounds(value) -> bool:
    """Whether a JSON value has at most MAX_JSON_NODES values, MAX_JSON_DEPTH levels deep;
    walked without recursion, and no further than the bounds."""
    stack, nodes = [(value, 1)], 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_JSON_NODES or depth > MAX_JSON_DEPTH:
            return False
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return True


def _clean_bundle(data: dict) -> dict:
    """The types whose key and value nbformat accepts; an SVG cleaned, or left out if it cannot be."""
    bundle = {}
    for mime, value in data.items():
        if not isinstance(mime, str) or not _MIME.match(mime):
            continue
        if _JSON_MIME.match(mime):
            if json_within_bounds(value):
                bundle[mime] = value  # any JSON value: it came as JSON
            continue
        text = _text(value)
        if mime == "image/svg+xml":
            text = clean_svg(text) or ""
        if text:
            bundle[mime] = text
    return bundle


def _clean_metadata(metadata) -> dict:
    """Metadata nbformat accepts: a type's entry is an object (an image's width, say)."""
    if not isinstance(metadata, dict):
        return {}
    return {key: value for key, value in metadata.items()
            if isinstance(key, str) and (isinstance(value, dict) or not _MIME.match(key)) and json_within_bounds(value)}


def _shown(mime: str, value) -> tuple[bytes | None, str] | None:
    """What the window draws of one type: image bytes or text; None when it holds nothing usable."""
    if mime == "image/png":
        raw = _png(value)
        return (raw, "") if raw else None
    if mime == "image/jpeg":
        raw = _jpeg(value)
        return (raw, "") if raw else None
    if mime == "image/svg+xml":
        return (value.encode("utf-8"), "")
    if mime == "application/json":
        try:
            return None, well_formed(json.dumps(value, indent=2, ensure_ascii=False))
        except (TypeError, ValueError, RecursionError):
            return None
    text = _text(value)
    return (None, text) if text.strip() else None


def _display_item(output_type: str, bundle: dict, metadata: dict, count: int | None) -> OutputItem | None:
    plain = _text(bundle.get("text/plain"))
    for mime in DISPLAY_PRIORITY:
        shown = _shown(mime, bundle[mime]) if mime in bundle else None
        if shown is None:
            continue
        data, text = shown
        return OutputItem(kind=_KIND_OF_MIME.get(mime, "text"), mime=mime, data=data, text=text,
                          plain="" if mime == "text/plain" else plain, bundle=bundle, metadata=metadata,
                          output_type=output_type, execution_count=count)
    return None


def item_from_message(msg: dict) -> OutputItem | None:
    """Turns a display_data / execute_result / error message into an item. Everything in
    the message came from the kernel, so every field is checked before it is used."""
    header = msg.get("header")
    kind = header.get("msg_type") if isinstance(header, dict) else None
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
        refused = _image_refused(data)
        if refused:
            return OutputItem(kind="stderr", text=refused + "\n")
        count = content.get("execution_count")
        count = count if kind == "execute_result" and isinstance(count, int) and not isinstance(count, bool) else None
        clean = {"data": _clean_bundle(data), "metadata": _clean_metadata(content.get("metadata")),
                 "execution_count": count}
        from nbformat import v4
        from nbformat.validator import ValidationError

        try:
            output = v4.output_from_msg({"header": {"msg_type": kind}, "content": clean})
        except (ValidationError, ValueError, TypeError, RecursionError):
            return None
        return _display_item(kind, dict(output.data), dict(output.metadata), count)
    return None


def item_from_output(output: dict) -> OutputItem | None:
    """An item from a stored nbformat output, checked as a message from the kernel is
    (the history holds what the kernel sent)."""
    if not isinstance(output, dict):
        return None
    kind = output.get("output_type")
    if kind == "stream":
        name = "stderr" if output.get("name") == "stderr" else "stdout"
        return OutputItem(kind=name, text=_text(output.get("text")))
    return item_from_message({"header": {"msg_type": kind}, "content": output})


def item_from_stored(kind: str, text: str, image: bytes | None, meta: dict) -> OutputItem | None:
    """An item from a history row: its whole output where the row holds one, else rebuilt
    from the fields older versions stored (kind, text, an image's bytes, meta)."""
    if isinstance(meta.get("output"), dict):
        item = item_from_output(meta["output"])
        if item is not None:
            return item
    if kind in ("stdout", "stderr"):
        return OutputItem(kind=kind, text=text)
    if kind == "error":
        traceback = meta.get("traceback") if isinstance(meta.get("traceback"), list) else text.splitlines()
        return OutputItem(kind="error", ename=_text(meta.get("ename")), evalue=_text(meta.get("evalue")),
                          traceback=[well_formed(t) for t in traceback if isinstance(t, str)], text=text)
    if kind == "image" and image and png_size(image):
        return OutputItem(kind="image", mime="image/png", data=image, plain=text)
    if kind == "html":
        return OutputItem(kind="html", mime="text/html", text=text, plain=_text(meta.get("plain")))
    if kind == "text" and text:
        return OutputItem(kind="text", text=text)
    return None


def image_type(data: bytes) -> str:
    """``"png"``, ``"jpeg"`` or ``"svg"``: which an item's image bytes are."""
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    return "svg"


def _image_refused(data: dict) -> str:
    """Why the bundle's first raster image is not kept ("" when it is), decoded once: a PNG
    that is not one, a JPEG whose header gives no size (what the app cannot measure could
    be any size when Qt decodes it), or a claimed size over MAX_IMAGE_PIXELS. A JPEG that
    is not one by its first bytes is passed over for the next type."""
    from ..resources import messages

    if "image/png" in data:
        raw = _png(data["image/png"])
    elif "image/jpeg" in data:
        raw = _jpeg(data["image/jpeg"])
        if raw is None:
            return ""
    else:
        return ""
    size = image_size(raw) if raw is not None else None
    if size is None:
        return messages()["image_unreadable"]
    if size[0] * size[1] > MAX_IMAGE_PIXELS:
        return messages()["image_too_large"].format(width=size[0], height=size[1], most=MAX_IMAGE_PIXELS // 1_000_000)
    return ""


_LAID_OUT = ("text/html", "text/markdown")
_OBJECT_REPR = re.compile(r"<[\w.]+ object( at 0x[0-9a-fA-F]+)?>\Z")  # IPython's HTML(...) says no more


def rich_costs(item: OutputItem) -> tuple[int, int]:
    """What drawing the item's rich text costs the window: its layout (``untrusted_markup``'s
    elements) and the pixels of the images inside its HTML (a Markdown output's are links).
    (0, 0) for an item that shows no rich text."""
    if item.mime == "text/html":
        clean = clean_html(item.text)  # once for both
        return html_layout_cost(clean), inline_image_pixels(clean)
    if item.mime == "text/markdown":
        return markdown_cost(item.text), 0
    return 0, 0


def without_layout(item: OutputItem) -> OutputItem | None:
    """The item as its next type that needs no rich layout (a table's text twin)."""
    bundle = {mime: value for mime, value in item.bundle.items() if mime not in _LAID_OUT}
    if not any(mime in bundle for mime in DISPLAY_PRIORITY) or _OBJECT_REPR.match(item.plain):
        bundle["text/plain"] = text_only(clean_html(item.text)) if item.mime == "text/html" else item.text
    return _display_item(item.output_type, bundle, item.metadata, item.execution_count)


def image_pixels(item: OutputItem) -> int:
    """How many pixels drawing the item's raster image takes (0: not one, or an SVG)."""
    size = image_size(item.data or b"") if item.kind == "image" else None
    return size[0] * size[1] if size else 0
