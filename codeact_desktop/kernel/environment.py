"""The environment variables a kernel starts with: an allow-list, so no secret leaks.

The user's shell may hold API keys, cloud credentials and tokens; code written by a
model (or by instructions hidden in a dropped file) must not see them.
"""

from __future__ import annotations

import os
from pathlib import Path

from .venv import KernelVenv

# Only what Python, locales and the OS loader need. Everything else is dropped.
_PASSED_THROUGH = (
    "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE",
    "LC_MONETARY", "LC_MESSAGES", "TZ",
    # Windows cannot start Python without these
    "SYSTEMROOT", "WINDIR", "COMSPEC", "PATHEXT", "NUMBER_OF_PROCESSORS",
)
_SYSTEM_PATH_POSIX = ("/usr/local/bin", "/usr/bin", "/bin")


def kernel_environment(venv: KernelVenv, home: Path, cache: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
    system_path = (
        os.environ.get("PATH", "") if os.name == "nt" else os.pathsep.join(_SYSTEM_PATH_POSIX)
    )
    home.mkdir(parents=True, exist_ok=True)
    (cache / "matplotlib").mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "PATH": os.pathsep.join([str(venv.bin_dir), system_path]),
            "VIRTUAL_ENV": str(venv.root),
            "HOME": str(home),
            "USERPROFILE": str(home),
            "PYTHONNOUSERSITE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONIOENCODING": "utf-8",
            # Plots come back as image/png; the font cache is built once, not per kernel.
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MPLCONFIGDIR": str(cache / "matplotlib"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            # Keep terminal colour codes out of what the model reads.
            "TERM": "dumb",
            "NO_COLOR": "1",
        }
    )
    return env
