"""The models the app offers to download: data in resources/models/catalogue.json."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..resources import resource_path


@dataclass(frozen=True)
class CatalogueEntry:
    """A model the app offers to download: where it is on the Hub and what it needs."""

    id: str
    name: str
    repo: str
    file: str
    revision: str  # a branch, or a commit to pin; a download pins the commit it resolved
    size_bytes: int  # about; the Hub gives the exact size when a download starts
    n_ctx_train: int
    chat_format: str
    ram_needed_bytes: int
    about: str = ""
    default: bool = False


def load_catalogue() -> list[CatalogueEntry]:
    raw = json.loads(resource_path("models", "catalogue.json").read_text(encoding="utf-8"))
    return [CatalogueEntry(**entry) for entry in raw["models"]]


def find_entry(model_id: str | None = None) -> CatalogueEntry:
    """The entry with that id, or the default one."""
    entries = load_catalogue()
    for entry in entries:
        if (model_id and entry.id == model_id) or (not model_id and entry.default):
            return entry
    names = ", ".join(e.id for e in entries)
    raise KeyError(f"No model called {model_id!r} in the catalogue. Choose one of: {names}.")
