"""The environment variables a kernel starts with: an allow-list, so no secret leaks.

The user's shell may hold API keys, cloud credentials and tokens; code written by a
model (or by instructions hidden in a dropped file) must not see them.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

from .. import no_follow
from .venv import KernelVenv, base_interpreter, base_layer_paths

# Only what Python, locales and the OS loader need. Everything else is dropped.
_PASSED_THROUGH = (
    "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE",
    "LC_MONETARY", "LC_MESSAGES", "TZ",
    # Windows cannot start Python without these
    "SYSTEMROOT", "WINDIR", "COMSPEC", "PATHEXT", "NUMBER_OF_PROCESSORS",
)
_SYSTEM_PATH_POSIX = ("/usr/local/bin", "/usr/bin", "/bin")


MATPLOTLIB_DIR = ".matplotlib"
_FONT_LIST = "fontlist-*.json"  # matplotlib's font cache: seconds to build where many fonts are installed
_building = threading.Lock()


def build_font_cache(font_cache: Path) -> None:
    """Builds matplotlib's font list once, with the app's own Python and packages (never
    the kernel venv, where model-written code may have installed anything). Kernels get
    a copy and cannot change this one. Quietly nothing when matplotlib is not there."""
    with _building:  # the model's load and each kernel's start call it, on their own threads
        _build_font_cache(font_cache)


def _build_font_cache(font_cache: Path) -> None:
    if any(font_cache.glob(_FONT_LIST)):
        return
    font_cache.mkdir(parents=True, exist_ok=True)
    layers = [str(p) for p in base_layer_paths()]
    code = f"import sys; sys.path[:0] = {layers!r}; import matplotlib.font_manager"
    try:
        subprocess.run([str(base_interpreter()), "-I", "-S", "-c", code], capture_output=True, timeout=120,
                       env={**os.environ, "MPLCONFIGDIR": str(font_cache)})
    except (OSError, subprocess.SubprocessError):
        pass


def conversation_packages(venv: KernelVenv, home: Path) -> tuple[Path, Path]:
    """(prefix, site folder) where ``pip install`` puts this conversation's packages: its
    own ``~/.local``, laid out as pip's ``--prefix`` makes it. Another conversation never
    sees them, and the shared kernel venv stays read-only to every kernel."""
    prefix = home / ".local"
    return prefix, prefix / venv.site_packages().relative_to(venv.root)


def kernel_environment(venv: KernelVenv, home: Path, font_cache: Path) -> dict[str, str]:
    """``home`` is this conversation's own (HOME, matplotlib's config, installed packages),
    so code in one conversation cannot leave files for another; ``font_cache`` seeds it.
    Everything below ``home`` is the kernel's to change, links included: the folders and
    the font list are made without following any (``no_follow``), and none of them is
    ever resolved into a path the sandbox would grant."""
    env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
    home.mkdir(parents=True, exist_ok=True)
    prefix, packages = conversation_packages(venv, home)
    matplotlib_dir = home / MATPLOTLIB_DIR
    try:
        with no_follow.Folder(home, packages.relative_to(home), create=True):
            pass  # on sys.path from the start, so installs import at once
        with no_follow.Folder(home, MATPLOTLIB_DIR, create=True) as folder:
            for font_list in font_cache.glob(_FONT_LIST):
                if not folder.exists(font_list.name):
                    no_follow.write_new_file(folder, font_list.name, font_list.read_bytes())
    except OSError:
        pass  # the code replaced them with links or files: its own folder, its own loss
    system_path = (
        os.environ.get("PATH", "") if os.name == "nt" else os.pathsep.join(_SYSTEM_PATH_POSIX)
    )
    env.update(
        {
            # Nothing the kernel can write: a program it left in ~/.local/bin would be run by
            # name (`uname` by ipykernel's own start, `fc-list` by matplotlib's). Its packages
            # reach the processes it starts through PYTHONPATH, set once it is up.
            "PATH": os.pathsep.join([str(venv.bin_dir), system_path]),
            "PIP_PREFIX": str(prefix),
            "CODEACT_PACKAGES": str(packages),
            "VIRTUAL_ENV": str(venv.root),
            "HOME": str(home),
            "USERPROFILE": str(home),
            "PYTHONNOUSERSITE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONIOENCODING": "utf-8",
            # Plots come back as image/png; the font list is seeded, not rebuilt per kernel.
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MPLCONFIGDIR": str(matplotlib_dir),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            # Keep terminal colour codes out of what the model reads.
            "TERM": "dumb",
            "NO_COLOR": "1",
        }
    )
    return env
