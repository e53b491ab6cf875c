"""Files given with a request: copied into the workspace, named to the model."""

from __future__ import annotations

import mimetypes
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..resources import messages


@dataclass
class Attachment:
    name: str  # relative to the workspace
    size: int
    kind: str


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def describe_kind(path: Path) -> str:
    if path.is_dir():
        return "folder"
    mime, _ = mimetypes.guess_type(path.name)
    return mime or "file"


def _free_name(workspace: Path, name: str) -> Path:
    target = workspace / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while target.exists():
        target = workspace / f"{stem} ({n}){suffix}"
        n += 1
    return target


def copy_into_workspace(sources: list[Path], workspace: Path) -> list[Attachment]:
    workspace.mkdir(parents=True, exist_ok=True)
    attached = []
    for source in sources:
        source = Path(source)
        if not source.exists():
            raise FileNotFoundError(f"No file at {source}.")
        target = _free_name(workspace, source.name)
        if source.is_dir():
            shutil.copytree(source, target)
            size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        else:
            shutil.copy2(source, target)
            size = target.stat().st_size
        attached.append(Attachment(name=target.name, size=size, kind=describe_kind(target)))
    return attached


def attachment_lines(attached: list[Attachment]) -> str:
    lines = [messages()["files_header"]]
    lines += [f"- ./{a.name} ({human_size(a.size)}, {a.kind})" for a in attached]
    return "\n".join(lines)
