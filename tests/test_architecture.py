"""The shape of the code, checked: the import contracts in pyproject.toml (the engine knows
nothing of Qt; layers run one way) and ruff's rules. Both tools are test dependencies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / tool), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept():
    done = _run("lint-imports", "--no-cache")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "broken" not in done.stdout.split("Contracts:")[-1].lower().replace("0 broken", "")


def test_ruff_finds_nothing():
    done = _run("ruff", "check", "--no-cache", "codeact_desktop", "tests", "bench", "packaging", "docs")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_a_forbidden_import_is_caught(tmp_path):
    """The contract can fail: a copy of the package whose kernel module imports Qt breaks it."""
    import shutil

    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "codeact_desktop", copy / "codeact_desktop",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    with open(copy / "codeact_desktop" / "kernel" / "state.py", "a") as f:
        f.write("\nimport PySide6  # noqa: E402,F401\n")
    done = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=copy, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    assert "codeact_desktop.kernel.state -> PySide6" in done.stdout
