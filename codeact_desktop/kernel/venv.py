"""The kernel's own virtual environment.

The venv is created without pip and without the network, in well under a second. The
scientific stack comes from the app's own environment, seen as a read-only base layer
through a ``.pth`` file. No kernel can write the venv: it is the interpreter for the
processes a kernel starts (``!python``, ``!pip``), while the kernel itself starts from the
base interpreter in isolated mode (``sandbox.launcher_argv``). ``!pip install`` puts
packages in the conversation's own folder (``environment.conversation_packages``),
ahead of the base layer on ``sys.path``. A packaged app ships the same base layer beside
its Python runtime and points ``CODEACT_KERNEL_BASE`` at it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import threading
from dataclasses import dataclass
from pathlib import Path

BASE_LAYER_PTH = "_codeact_base_layer.pth"
STATE_FILE = "codeact-venv.json"
# Bump when the layout below changes so old venvs are rebuilt. 2: kernels could write
# version 1 venvs, so they are made anew rather than trusted.
LAYOUT_VERSION = 2


class KernelVenvError(RuntimeError):
    """The kernel's Python environment could not be made or is not usable."""


def base_interpreter() -> Path:
    """The plain Python the kernel venv is made from: never the app's own executable.

    Once packaged, ``sys.executable`` is the app itself, so the interpreter is either
    named explicitly (``CODEACT_KERNEL_PYTHON``) or is the base Python under this one.
    """
    named = os.environ.get("CODEACT_KERNEL_PYTHON")
    if named:
        return Path(named).resolve()
    if getattr(sys, "frozen", False):
        raise KernelVenvError(
            "packaged build: set CODEACT_KERNEL_PYTHON to the bundled Python runtime"
        )
    base = getattr(sys, "_base_executable", None) or sys.executable
    return Path(base).resolve()


def base_layer_paths() -> list[Path]:
    """Site directories whose packages the kernel sees read-only."""
    named = os.environ.get("CODEACT_KERNEL_BASE")
    if named:
        return [Path(p).resolve() for p in named.split(os.pathsep) if p]
    paths = sysconfig.get_paths()
    ordered = dict.fromkeys(Path(paths[k]).resolve() for k in ("purelib", "platlib"))
    return list(ordered)


@dataclass(frozen=True)
class KernelVenv:
    """The Python environment the kernel runs in, apart from the app's own."""

    root: Path

    @property
    def python(self) -> Path:
        if os.name == "nt":
            return self.root / "Scripts" / "python.exe"
        return self.root / "bin" / "python"

    @property
    def bin_dir(self) -> Path:
        return self.python.parent

    def site_packages(self) -> Path:
        if os.name == "nt":
            return self.root / "Lib" / "site-packages"
        found = sorted((self.root / "lib").glob("python3*/site-packages"))
        if not found:
            raise KernelVenvError(f"no site-packages under {self.root}")
        return found[0]

    def state(self) -> dict | None:
        try:
            return json.loads((self.root / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None


def _wanted_state(interpreter: Path, layers: list[Path]) -> dict:
    return {
        "layout": LAYOUT_VERSION,
        "interpreter": str(interpreter),
        "base_layer": [str(p) for p in layers],
    }


# The model's load and each kernel's start both provision it, on their own threads: one
# ``venv --clear`` at a time, or one would empty the folder the other is filling.
_provisioning = threading.Lock()


def ensure_kernel_venv(root: Path) -> KernelVenv:
    """Create (or repair) the kernel venv at ``root``; cheap when it is already right."""
    with _provisioning:
        return _ensure_kernel_venv(root)


def _ensure_kernel_venv(root: Path) -> KernelVenv:
    venv = KernelVenv(root)
    interpreter = base_interpreter()
    layers = base_layer_paths()
    wanted = _wanted_state(interpreter, layers)
    if venv.state() == wanted and venv.python.exists():
        return venv

    root.parent.mkdir(parents=True, exist_ok=True)
    # --clear rebuilds a stale venv; without pip: pip comes from the base layer.
    cmd = [str(interpreter), "-m", "venv", "--clear", "--without-pip", str(root)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise KernelVenvError(
            f"could not create the kernel environment at {root}: {done.stderr.strip()}"
        )
    site = venv.site_packages()
    (site / BASE_LAYER_PTH).write_text("".join(f"{p}\n" for p in layers))
    _write_pip_shim(venv)
    (root / STATE_FILE).write_text(json.dumps(wanted, indent=2))
    return venv


def _write_pip_shim(venv: KernelVenv) -> None:
    """``!pip`` in a notebook runs the ``pip`` on PATH: make it the venv's, so that
    installs land in the venv even though pip itself lives in the base layer."""
    if os.name == "nt":
        shim = venv.bin_dir / "pip.cmd"
        shim.write_text(f'@"{venv.python}" -m pip %*\r\n')
        return
    for name in ("pip", "pip3"):
        shim = venv.bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{venv.python}" -m pip "$@"\n')
        shim.chmod(0o755)
