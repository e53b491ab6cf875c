"""Where the app keeps its things on disk (platformdirs), overridable for tests."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .visible_text import NOT_IN_NAMES as _NOT_OFFERED

APP_NAME = "CodeActDesktop"


@dataclass(frozen=True)
class AppPaths:
    """Where the app keeps its data (conversations, models, settings, logs) and its caches."""

    data: Path
    cache: Path

    @classmethod
    def default(cls) -> "AppPaths":
        # CODEACT_HOME puts everything under one folder: tests, portable installs.
        home = os.environ.get("CODEACT_HOME")
        if home:
            root = Path(home)
            return cls(data=root / "data", cache=root / "cache")
        return cls(
            data=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            cache=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        )

    @property
    def kernel_venv(self) -> Path:
        return self.data / "kernel-venv"

    @property
    def kernel_home(self) -> Path:
        return self.data / "kernel-home"

    def kernel_home_for(self, workspace: Path) -> Path:
        """A conversation's own HOME for its kernel: one per workspace folder (the hash
        tells apart two CLI workdirs with the same name)."""
        workspace = Path(workspace).resolve()
        digest = hashlib.sha1(str(workspace).encode("utf-8")).hexdigest()[:8]
        return self.kernel_home / f"{workspace.name}-{digest}"

    @property
    def font_cache(self) -> Path:
        return self.cache / "font-cache"

    @property
    def kv_states(self) -> Path:
        """Saved KV states of conversations (llm/prompt_cache.py): out of every kernel's reach."""
        return self.cache / "kv-states"

    @property
    def gguf_headers(self) -> Path:
        """Model files' headers as read at their last load (models/header_cache.py)."""
        return self.cache / "gguf-headers"

    @property
    def opened_copies(self) -> Path:
        """Read-only copies of the code's files that Open hands the desktop (opened_copies.py): out of every
        kernel's reach."""
        return self.cache / "opened"

    @property
    def workspaces(self) -> Path:
        return self.data / "workspaces"

    @property
    def history_db(self) -> Path:
        return self.data / "history.sqlite3"

    @property
    def settings_file(self) -> Path:
        return self.data / "settings.json"

    @property
    def models(self) -> Path:
        return self.data / "models"

    @property
    def verified_models(self) -> Path:
        return self.models / "verified.json"

    @property
    def logs(self) -> Path:
        return self.data / "logs"


def save_suggestion(name: str) -> Path:
    """Where a Save dialog first proposes to put a file the code named: the user's Downloads
    folder (as browsers do) under the name without its leading dots or odd characters. In
    the home, code naming its file `.bash_profile` or a folder `.ssh` had the dialog propose
    a shell start-up file or an `authorized_keys`, one Enter away."""
    downloads = Path(platformdirs.user_downloads_dir())
    folder = downloads if downloads.is_dir() else Path.home()
    return folder / offered_name(name)


def offered_name(name: str) -> str:
    """A name the code chose, fit to be offered outside the workspace: not hidden, nothing
    invisible or reordering in it (``invoice_\u202efdp.exe`` showed as ``invoice_exe.pdf``)."""
    plain = _NOT_OFFERED.sub("_", name).lstrip(". ").strip()
    return plain or "file"
