"""The app's data files (prompts, catalogue, styles), found with importlib.resources.

In an installed wheel or a bundle they are package data, ``codeact_desktop.resources_data``
(pyproject.toml maps the repository's top-level ``resources/`` there); a source checkout
used without installing reads that folder directly. Never the working directory.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent / "resources"


@lru_cache(maxsize=None)
def resources_dir() -> Traversable:
    try:
        found = resources.files("codeact_desktop.resources_data")
        if (found / "prompts" / "system.txt").is_file():
            return found
    except ModuleNotFoundError:
        pass
    if (_CHECKOUT / "prompts").is_dir():
        return _CHECKOUT
    raise FileNotFoundError("the app's data files (prompts, catalogue, styles) are missing from this install")


def resource_path(*parts: str) -> Traversable:
    found = resources_dir()
    for part in parts:  # one part at a time: a namespace package's path takes no more (3.11)
        found = found / part
    return found


@lru_cache(maxsize=None)
def prompt_text(name: str) -> str:
    return resource_path("prompts", name).read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def messages() -> dict[str, str]:
    """Fixed texts the model sees (observation wording, limits); data, not code."""
    return json.loads(prompt_text("messages.json"))
