"""What the app carries from others, and under which licences: the About box's list, and
the ``THIRD_PARTY_LICENSES`` file a bundle's build writes (``python -m
codeact_desktop.third_party OUT``). Read from the installed packages' own metadata, so it
is true of whatever is installed. Standard library only."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

_LICENSE_FILE = re.compile(r"(^|/)(LICEN[CS]E|COPYING|NOTICE|AUTHORS)[^/]*$", re.IGNORECASE)
BUNDLE_INFO = "_bundle.json"  # written into the package by packaging/build.py


@dataclass(frozen=True)
class Component:
    """A third-party part shipped with the app, for the About box's licence list."""

    name: str
    version: str
    licence: str

    def line(self) -> str:
        return f"{self.name} {self.version}: {self.licence}"


def _licence_of(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return expression
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return ", ".join(classifiers)
    text = (meta.get("License") or "").strip()
    if text and len(text) < 80 and "\n" not in text:
        return text
    return "see its licence text" if text else "not stated in its metadata"


def installed() -> list[Component]:
    """Every installed distribution but the app itself, sorted by name."""
    seen: dict[str, Component] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name") or "?"
        if name.lower() in seen or name == "codeact-desktop":
            continue
        seen[name.lower()] = Component(name, dist.version, _licence_of(dist))
    return sorted(seen.values(), key=lambda c: c.name.lower())


def bundle_info() -> dict | None:
    """What the bundle's build recorded (version, llama.cpp build, backends), or None
    when the app runs from a checkout or a pip install."""
    try:
        return json.loads((Path(__file__).parent / BUNDLE_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_licences(out: Path, extra: dict[str, Path]) -> None:
    """The full texts: each package's licence files, then ``extra`` (the Python runtime,
    llama.cpp, ...: name -> licence file)."""
    parts = ["Third-party software in CodeAct Desktop, and its licences.\n"]
    for name, path in extra.items():
        parts.append(f"\n{'=' * 78}\n{name}\n{'=' * 78}\n{path.read_text(encoding='utf-8', errors='replace')}")
    for dist in sorted(metadata.distributions(), key=lambda d: (d.metadata.get("Name") or "").lower()):
        name = dist.metadata.get("Name") or "?"
        if name == "codeact-desktop":
            continue
        texts = []
        for file in dist.files or []:
            if _LICENSE_FILE.search(str(file)):
                try:
                    text = Path(dist.locate_file(file)).read_text(encoding="utf-8", errors="replace")
                    texts.append(f"--- {file}\n{text}")
                except OSError:
                    pass
        body = "\n".join(texts) or f"(no licence file shipped; metadata says: {_licence_of(dist)})"
        parts.append(f"\n{'=' * 78}\n{name} {dist.version} — {_licence_of(dist)}\n{'=' * 78}\n{body}")
    out.write_text("".join(parts), encoding="utf-8")


if __name__ == "__main__":
    extra = dict(arg.split("=", 1) for arg in sys.argv[2:])
    write_licences(Path(sys.argv[1]), {k: Path(v) for k, v in extra.items()})
