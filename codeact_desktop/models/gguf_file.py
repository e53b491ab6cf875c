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
# Values kept whole; other arrays (vocabularies, merges) are skipped.
_KEEP_ARRAYS = ()


class GGUFError(ValueError):
    pass


@dataclass
class GGUFInfo:
    path: Path
    size: int
    version: int
    architecture: str
    name: str
    context_length: int | None
    chat_template: str | None
    tensor_count: int
    metadata: dict = field(default_factory=dict, repr=False)

    def looks_like_codeact(self) -> bool:
        return "codeact" in f"{self.name} {self.path.name}".lower()


class _Reader:
    def __init__(self, fh, size: int):
        self.fh = fh
        self.size = size

    def take(self, n: int) -> bytes:
        data = self.fh.read(n)
        if len(data) != n:
            raise GGUFError("the header ends early")
        return data

    def scalar(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar("<Q")
        if n > self.size:
            raise GGUFError("a string length runs past the end of the file")
        return self.take(n).decode("utf-8", "replace")

    def skip_string(self) -> None:
        n = self.scalar("<Q")
        self.fh.seek(n, os.SEEK_CUR)

    def value(self, vtype: int, keep: bool = False):
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype, count = self.scalar("<I"), self.scalar("<Q")
            if etype in _SCALARS:
                width = struct.calcsize(_SCALARS[etype])
                if count * width > self.size:
                    raise GGUFError("an array runs past the end of the file")
                self.fh.seek(count * width, os.SEEK_CUR)
            elif etype == _STRING:
                for _ in range(count):
                    self.skip_string()
            else:
                for _ in range(count):
                    self.value(etype)
            return f"<array of {count}>"
        raise GGUFError(f"unknown value type {vtype}")


def inspect_gguf(path: str | os.PathLike) -> GGUFInfo:
    path = Path(path)
    if not path.exists():
        raise GGUFError(f"No model file at {path}.")
    if path.is_dir():
        raise GGUFError(f"{path} is a folder, not a GGUF model file.")
    size = path.stat().st_size
    if size == 0:
        raise GGUFError(f"{path.name} is empty (0 bytes): the download or copy did not finish.")
    with open(path, "rb", buffering=1 << 16) as fh:
        magic = fh.read(4)
        if magic != GGUF_MAGIC:
            raise GGUFError(f"{path.name} is not a GGUF model file (it starts with {magic!r}, not b'GGUF').")
        try:
            meta, tensors_end = _read_header(_Reader(fh, size))
        except (GGUFError, struct.error, UnicodeError) as exc:
            raise GGUFError(f"{path.name} is damaged or truncated: {exc}.") from exc
    if tensors_end > size:
        raise GGUFError(
            f"{path.name} is truncated: it has {size:,} bytes but its tensors need {tensors_end:,}."
            " Download or copy it again."
        )
    arch = str(meta.get("general.architecture", "unknown"))
    ctx = meta.get(f"{arch}.context_length")
    return GGUFInfo(
        path=path,
        size=size,
        version=meta["GGUF.version"],
        architecture=arch,
        name=str(meta.get("general.name") or path.stem),
        context_length=int(ctx) if ctx is not None else None,
        chat_template=meta.get("tokenizer.chat_template"),
        tensor_count=meta["GGUF.tensor_count"],
        metadata=meta,
    )


def _read_header(r: _Reader) -> tuple[dict, int]:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    version = r.scalar("<I")
    if version not in (2, 3):
        raise GGUFError(f"GGUF version {version} is not supported (2 and 3 are)")
    n_tensors, n_kv = r.scalar("<Q"), r.scalar("<Q")
    meta: dict = {"GGUF.version": version, "GGUF.tensor_count": n_tensors}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.scalar("<I"))
    end_of_data = 0
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
        end_of_data = max(end_of_data, offset + n_elements // block * type_size)
    alignment = int(meta.get("general.alignment", 32))
    data_start = -(-r.fh.tell() // alignment) * alignment
    return meta, data_start + end_of_data
