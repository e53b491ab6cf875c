"""The user's settings, persisted as JSON in the data folder.

Plain data, no Qt: the window edits it, the engine reads it. A file that cannot be read
gives the defaults and a message, never a crash; writes are atomic.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from . import defaults

if TYPE_CHECKING:  # settings are plain data: the agent's own settings only by type
    from .agent.loop import AgentSettings

THEMES = ("system", "light", "dark")
KV_CACHE_TYPES = ("auto", "f16", "q8_0")  # auto: the load plan picks (models/hardware.py)
_CHOICES = {"theme": THEMES, "kv_cache_type": KV_CACHE_TYPES}  # text settings with a fixed set of values


@dataclass
class Settings:
    # model: take effect when the model is next loaded
    """The user's settings, saved as JSON in the data folder; a value that is not valid is
    reset to its default, and the user is told which."""

    model_path: str = ""  # the GGUF the window loads at start ("" = none chosen)
    base_url: str = ""  # or an OpenAI-compatible server
    model_name: str = ""
    n_ctx: int = defaults.N_CTX
    n_gpu_layers: int = -1  # -1: automatic (all layers where the build can offload)
    n_threads: int = 0  # 0: automatic
    kv_cache_ram_mb: int = defaults.KV_CACHE_RAM_MB  # 0: going back to a conversation reads it again
    kv_cache_disk_mb: int = defaults.KV_CACHE_DISK_MB
    kv_cache_type: str = "auto"  # how the model keeps what it read: f16, q8_0 (half the memory), or auto
    flash_attention: bool = True
    temperature: float = defaults.TEMPERATURE
    # execution: take effect at the next action
    action_timeout_s: float = defaults.ACTION_TIMEOUT_S
    max_actions: int = defaults.MAX_ACTIONS
    require_approval: bool = False
    # appearance
    theme: str = "system"
    chat_zoom: int = 0  # text size steps in the chat (Ctrl+ / Ctrl−)

    def apply_to(self, agent: AgentSettings) -> AgentSettings:
        """Updates the agent's settings in place, so running conversations see them."""
        agent.temperature = self.temperature
        agent.action_timeout_s = self.action_timeout_s
        agent.max_actions = self.max_actions
        return agent

    def backend_options(self) -> dict:
        return {
            "n_ctx": self.n_ctx,
            "n_gpu_layers": None if self.n_gpu_layers < 0 else self.n_gpu_layers,
            "n_threads": self.n_threads or None,
            "kv_cache_ram": max(0, self.kv_cache_ram_mb) << 20,
            "kv_cache_disk": max(0, self.kv_cache_disk_mb) << 20,
            "kv_type": self.kv_cache_type,
            "flash_attention": self.flash_attention,
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(tmp, path)  # a crash mid-write leaves the old file, never half a file

    @classmethod
    def load(cls, path: Path) -> tuple["Settings", str]:
        """The saved settings and a message ("" when all was well)."""
        if not path.exists():
            return cls(), ""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            return cls(), f"Settings could not be read ({exc}); using the defaults."
        settings, bad = cls(), []
        for f in fields(cls):
            if f.name not in raw:
                continue
            value, default = raw[f.name], getattr(settings, f.name)
            if isinstance(default, bool) or isinstance(value, bool):
                ok = isinstance(value, bool) and isinstance(default, bool)
            elif isinstance(default, (int, float)):
                ok = isinstance(value, (int, float))
                value = type(default)(value) if ok else value
            else:
                ok = isinstance(value, str)
            if ok and value not in _CHOICES.get(f.name, (value,)):
                ok = False
            if ok:
                setattr(settings, f.name, value)
            else:
                bad.append(f.name)
        message = f"Some settings were not valid and were reset: {', '.join(bad)}." if bad else ""
        return settings, message
