"""A GGUF's header, read once per version of the file (``inspect_gguf``) and kept in the
app's cache folder for the next start. Reading it walks the whole vocabulary (262k
strings for the test model: 0.06 s of Python, and 0.03 s more to import the ``gguf``
package) on the model's load thread, while the window's build wants the same GIL.

A kept header is used only for the very same file: its path, size, modification and
change times and inode. Anything else, or a cache that cannot be read, means reading the
file again; a cache that cannot be written costs nothing but that.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

from .gguf_file import GGUFInfo, inspect_gguf

log = logging.getLogger(__name__)
KEPT = 32  # headers, one per model file used; the oldest go


def _version(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "inode": st.st_ino}


def _entry(folder: Path, path: Path) -> Path:
    return folder / (hashlib.sha256(str(path).encode("utf-8", "surrogatepass")).hexdigest()[:32] + ".json")


def cached_inspect(path: str | os.PathLike, folder: Path | None) -> GGUFInfo:
    """``inspect_gguf(path)``, from ``folder`` when it holds this version of the file."""
    path = Path(path).absolute()
    if folder is None:
        return inspect_gguf(path)
    try:
        version = _version(path)
    except OSError:
        return inspect_gguf(path)  # it says why in the user's words
    entry = _entry(folder, path)
    try:
        kept = json.loads(entry.read_text(encoding="utf-8"))
        if kept["version"] == version:
            return GGUFInfo(**{**kept["info"], "path": path})
    except (OSError, ValueError, KeyError, TypeError):
        pass  # none yet, another version's, or damaged: read the file
    info = inspect_gguf(path)
    _keep(folder, entry, version, info)
    return info


def _keep(folder: Path, entry: Path, version: dict, info: GGUFInfo) -> None:
    fields = {f.name: getattr(info, f.name) for f in dataclasses.fields(info) if f.name != "path"}
    # The raw token types are only read for ``im_end``, which is kept as it is.
    fields["metadata"] = {k: v for k, v in info.metadata.items() if not isinstance(v, bytes)}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": version, "info": fields}), encoding="utf-8")
        os.replace(tmp, entry)
        kept = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[KEPT:]:
            old.unlink(missing_ok=True)
    except (OSError, ValueError, TypeError):
        log.warning("could not keep a model's header in the cache", exc_info=True)
