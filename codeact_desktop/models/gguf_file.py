"""Reads a GGUF file's header before llama.cpp sees it, so a wrong or truncated file gets
a clear message instead of a failure deep in C.

``gguf.GGUFReader`` parses every value into numpy objects (10 s for a 262k-token
vocabulary), so this reads the header in one pass and skips the arrays; tensor sizes
come from the ``gguf`` package's quantisation table.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

GGUF_MAGIC = b"GGUF"
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
IM_END = "<|im_end|>"
_IM_END_BYTES = IM_END.encode()
# llama.cpp's token types: CONTROL and USER_DEFINED tokens are matched whole in text.
_SPECIAL_TOKEN_TYPES = (3, 4)


class GGUFError(ValueError):
    """The file is not a GGUF this app can read; the message says why in plain words."""


@dataclass
class GGUFInfo:
    """What a GGUF's header says, read without loading its weights."""

    path: Path
    size: int
    version: int
    architecture: str
    name: str
    context_length: int | None
    chat_template: str | None
    tensor_count: int
    parameter_count: int = 0
    quantisation: str = "unknown"
    n_layers: int = 0
    kv_bytes_per_token: int = 0  # an f16 KV cache, all layers
    im_end: str = "absent"  # "special" (one control token), "text" (in the vocabulary, not special), "absent"
    metadata: dict = field(default_factory=dict, repr=False)

    def looks_like_codeact(self) -> bool:
        return "codeact" in f"{self.name} {self.path.name}".lower()

    def chat_format_summary(self) -> str:
        if self.looks_like_codeact() or (self.im_end == "special" and not self.chat_template):
            return "ChatML"
        if self.chat_template:
            return "the file's own chat template"
        return "none in the file: llama.cpp's built-in one for this architecture, or ChatML"

    def describe(self) -> list[tuple[str, str]]:
        """What a person choosing this file wants to know, as (label, value) rows."""
        from ..sizes import human_size

        ctx = f"{self.context_length:,} tokens" if self.context_length else "not stated"
        return [
            ("Name", self.name),
            ("Architecture", self.architecture),
            ("Parameters", _count(self.parameter_count)),
            ("Quantisation", self.quantisation),
            ("Trained context", ctx),
            ("Chat format", self.chat_format_summary()),
            ("<|im_end|>", {"special": "one special token (ChatML replies stop cleanly)",
                            "text": "in the vocabulary but not special: ChatML replies may not stop cleanly",
                            "absent": "not in the vocabulary"}[self.im_end]),
            ("File", f"{human_size(self.size)} · GGUF v{self.version} · {self.tensor_count} tensors"),
        ]


def _count(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}".replace(".0 ", " ")
    return str(n)


_U64 = struct.Struct("<Q")
_CHUNK = 1 << 20
# More than any model has (a vocabulary of 262k tokens, a few hundred thousand merges,
# about 50 keys, a few thousand tensors): a header that claims more is refused at once, not
# walked for seconds to minutes. The total over all arrays bounds a file of many arrays.
_MAX_ENTRIES, _MAX_KEYS, _MAX_TENSORS, _MAX_NESTED = 1 << 22, 1 << 16, 1 << 20, 1 << 16
_MAX_TOTAL = 1 << 23
_MAX_STRING = 1 << 20


class _Reader:
    """The header, read from the file a megabyte at a time and parsed from memory. A
    262k-token vocabulary is 262k length-prefixed strings: a file read and a seek for each
    took 0.13 s here (and 0.4 to 0.6 s on the model's load thread while the window was
    built, both wanting the GIL); from memory it takes 0.06 s. Not an mmap: a file cut
    short while it is read would raise SIGBUS, not an error."""

    def __init__(self, fh, size: int):
        self.fh = fh
        self.size = size
        self.buf = b""  # the file's bytes from offset ``base``
        self.base = fh.tell()
        self.pos = 0  # in ``buf``; may run past its end after a skip
        self.entries = 0  # counted so far, over every array, key and tensor

    def tell(self) -> int:
        return self.base + self.pos

    def _need(self, n: int) -> None:
        if self.pos + n <= len(self.buf):
            return
        at = self.tell()
        if self.pos <= len(self.buf):
            rest = self.buf[self.pos:]  # the file's own position is at the buffer's end
        else:
            rest = b""
            self.fh.seek(at)
        self.buf = rest + self.fh.read(max(n - len(rest), _CHUNK))
        self.base, self.pos = at, 0
        if len(self.buf) < n:
            raise GGUFError("the header ends early")

    def take(self, n: int) -> bytes:
        self._need(n)
        data = self.buf[self.pos:self.pos + n]
        self.pos += n
        return data

    def scalar(self, fmt: str):
        self._need(struct.calcsize(fmt))
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def skip(self, n: int) -> None:
        if n > self.size:
            raise GGUFError("a length runs past the end of the file")
        self.pos += n

    def string(self) -> str:
        n = self.scalar("<Q")
        if n > self.size:
            raise GGUFError("a string length runs past the end of the file")
        if n > _MAX_STRING:  # a chat template is tens of kilobytes; more is not kept in memory
            self.skip(n)
            return ""
        return self.take(n).decode("utf-8", "replace")

    def skip_string(self) -> None:
        self.skip(self.scalar("<Q"))

    def count(self, limit: int = _MAX_ENTRIES, what: str = "entries in an array") -> int:
        """How many follow: entries of an array, keys, or tensors."""
        n = self.scalar("<Q")
        self.entries += n
        if n > limit or self.entries > _MAX_TOTAL:
            raise GGUFError(f"it claims {n:,} {what}, more than any model has")
        return n

    def find_in_strings(self, needle: bytes) -> int:
        """Reads an array of strings (after its type) and returns the index of needle, or -1."""
        count, found, wanted = self.count(), -1, len(needle)
        unpack, buf, pos = _U64.unpack_from, self.buf, self.pos  # the hot loop: locals
        for i in range(count):
            if pos + 8 > len(buf):
                self.pos = pos
                self._need(8)
                buf, pos = self.buf, self.pos
            (n,) = unpack(buf, pos)
            if n > self.size:
                raise GGUFError("a string length runs past the end of the file")
            pos += 8
            if n == wanted and found < 0:
                self.pos = pos
                if self.take(n) == needle:
                    found = i
                buf, pos = self.buf, self.pos
            else:
                pos += n
        self.pos = pos
        return found

    def int_array(self) -> bytes:
        """An array of 32-bit ints (after its type), raw, for a lookup later."""
        count = self.count()
        if count * 4 > self.size:
            raise GGUFError("an array runs past the end of the file")
        return self.take(count * 4)

    def value(self, vtype: int, depth: int = 0):
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            return self.array(self.scalar("<I"), depth)
        raise GGUFError(f"unknown value type {vtype}")

    def array(self, etype: int, depth: int = 0) -> str:
        """Skips an array whose element type has been read; what it was, in words."""
        if depth > 2:  # no model nests arrays; a file of nothing else would exhaust the stack
            raise GGUFError("its arrays are nested too deep")
        if etype in _SCALARS:
            count = self.scalar("<Q")
            width = struct.calcsize(_SCALARS[etype])
            if count * width > self.size:
                raise GGUFError("an array runs past the end of the file")
            self.skip(count * width)
        elif etype == _STRING:
            count = self.count()
            for _ in range(count):
                self.skip_string()
        elif etype == _ARRAY:
            count = self.count(_MAX_NESTED, "arrays in an array")
            for _ in range(count):
                self.array(self.scalar("<I"), depth + 1)
        else:
            raise GGUFError(f"unknown array element type {etype}")
        return f"<array of {count}>"


def inspect_gguf(path: str | os.PathLike) -> GGUFInfo:
    path = Path(path)
    if not path.exists():
        raise GGUFError(f"No model file at {path}.")
    if path.is_dir():
        raise GGUFError(f"{path} is a folder, not a GGUF model file.")
    size = path.stat().st_size
    if size == 0:
        raise GGUFError(f"{path.name} is empty (0 bytes): the download or copy did not finish.")
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise GGUFError(f"{path.name} could not be read: {exc.strerror or exc}.") from exc
    with fh:
        magic = fh.read(4)
        if magic != GGUF_MAGIC:
            raise GGUFError(f"{path.name} is not a GGUF model file (it starts with {magic!r}, not b'GGUF').")
        try:
            meta, tensors_end = _read_header(_Reader(fh, size))
        except (GGUFError, struct.error, UnicodeError) as exc:
            raise GGUFError(f"{path.name} is damaged or truncated: {exc}.") from exc
        except OSError as exc:
            raise GGUFError(f"{path.name} could not be read: {exc.strerror or exc}.") from exc
    if tensors_end > size:
        raise GGUFError(
            f"{path.name} is truncated: it has {size:,} bytes but its tensors need {tensors_end:,}."
            " Download or copy it again."
        )
    arch = _str(meta.get("general.architecture")) or "unknown"
    ctx = _int(meta.get(f"{arch}.context_length"))
    n_layers = _int(meta.get(f"{arch}.block_count"), 0)
    return GGUFInfo(
        path=path,
        size=size,
        version=meta["GGUF.version"],
        architecture=arch,
        name=_str(meta.get("general.name")) or path.stem,
        context_length=ctx,
        chat_template=_str(meta.get("tokenizer.chat_template")) or None,
        tensor_count=meta["GGUF.tensor_count"],
        parameter_count=meta["GGUF.parameter_count"],
        quantisation=_quantisation(meta),
        n_layers=n_layers,
        kv_bytes_per_token=_kv_bytes_per_token(meta, arch, n_layers),
        im_end=_im_end_kind(meta),
        metadata=meta,
    )


def _int(value, default: int | None = None) -> int | None:
    """A whole, non-negative number the file gave, or ``default`` for anything else (a
    string, a float, an array): the file's word on a count is used only when it is one."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _str(value) -> str:
    return value if isinstance(value, str) else ""


def _quantisation(meta: dict) -> str:
    from gguf import LlamaFileType

    file_type = _int(meta.get("general.file_type"))
    if file_type is not None:
        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_")
        except ValueError:  # a type this gguf package does not know
            pass
    return meta.get("GGUF.main_tensor_type", "unknown")


def _kv_bytes_per_token(meta: dict, arch: str, n_layers: int) -> int:
    heads = _int(meta.get(f"{arch}.attention.head_count"), 0)
    kv_heads = _int(meta.get(f"{arch}.attention.head_count_kv")) or heads
    width = _int(meta.get(f"{arch}.embedding_length"), 0)
    key = _int(meta.get(f"{arch}.attention.key_length")) or (width // heads if heads > 0 else 0)
    value = _int(meta.get(f"{arch}.attention.value_length")) or key
    return n_layers * kv_heads * (key + value) * 2  # f16: 2 bytes


def _im_end_kind(meta: dict) -> str:
    index = meta.get("GGUF.im_end_index", -1)
    if index < 0:
        return "absent"
    types = meta.get("GGUF.token_types", b"")
    if len(types) >= 4 * (index + 1):
        (token_type,) = struct.unpack_from("<i", types, 4 * index)
        if token_type in _SPECIAL_TOKEN_TYPES:
            return "special"
    return "text"


def _read_header(r: _Reader) -> tuple[dict, int]:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    version = r.scalar("<I")
    if version not in (2, 3):
        raise GGUFError(f"GGUF version {version} is not supported (2 and 3 are)")
    n_tensors, n_kv = r.count(_MAX_TENSORS, "tensors"), r.count(_MAX_KEYS, "keys")
    meta: dict = {"GGUF.version": version, "GGUF.tensor_count": n_tensors}
    for _ in range(n_kv):
        key = r.string()
        vtype = r.scalar("<I")
        etype = r.scalar("<I") if vtype == _ARRAY else None
        if key == "tokenizer.ggml.tokens" and etype == _STRING:
            meta["GGUF.im_end_index"] = r.find_in_strings(_IM_END_BYTES)
        elif key == "tokenizer.ggml.token_type" and etype in (4, 5):
            meta["GGUF.token_types"] = r.int_array()
        else:
            value = r.array(etype) if etype is not None else r.value(vtype)
            if not key.startswith("GGUF."):  # the reader's own entries, not the file's to set
                meta[key] = value
    end_of_data, parameters, by_type = 0, 0, {}
    for _ in range(n_tensors):
        r.skip_string()
        n_dims = r.scalar("<I")
        if n_dims > 8:
            raise GGUFError("a tensor has more than 8 dimensions")
        dims = struct.unpack(f"<{n_dims}Q", r.take(8 * n_dims))
        ttype, offset = r.scalar("<I"), r.scalar("<Q")
        try:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
        except (ValueError, KeyError) as exc:
            raise GGUFError(f"unknown tensor type {ttype}") from exc
        n_elements = 1
        for d in dims:
            n_elements *= d
        parameters += n_elements
        by_type[ttype] = by_type.get(ttype, 0) + n_elements
        end_of_data = max(end_of_data, offset + n_elements // block * type_size)
    meta["GGUF.parameter_count"] = parameters
    if by_type:
        meta["GGUF.main_tensor_type"] = GGMLQuantizationType(max(by_type, key=by_type.get)).name
    alignment = _int(meta.get("general.alignment"), 32)
    if not 1 <= alignment <= 1 << 16 or alignment & (alignment - 1):
        raise GGUFError(f"its alignment ({alignment}) is not a power of two up to 65536")
    data_start = -(-r.tell() // alignment) * alignment
    return meta, data_start + end_of_data
