"""Finds bundled resources relative to the package, never the working directory."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resources_dir() -> Path:
    # Installed or packaged builds carry resources inside the package; a source
    # checkout keeps them at the repository's top level.
    for candidate in (_PACKAGE_DIR / "resources", _PACKAGE_DIR.parent / "resources"):
        if (candidate / "prompts").is_dir():
            return candidate
    raise FileNotFoundError(f"resources/ not found next to {_PACKAGE_DIR}")


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)


@lru_cache(maxsize=None)
def prompt_text(name: str) -> str:
    return resource_path("prompts", name).read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def messages() -> dict[str, str]:
    """Fixed texts the model sees (observation wording, limits); data, not code."""
    return json.loads(prompt_text("messages.json"))
