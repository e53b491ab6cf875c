#!/usr/bin/env python3
"""Creates the project's environment (.venv) if needed, then launches the app or runs
the tests. Standard library only: it runs before anything is installed.

    python3 packaging/dev.py run [args...]   # the app (args go to codeact-desktop)
    python3 packaging/dev.py test [pytest args...]
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_environment(extras: str) -> None:
    if sys.version_info < (3, 10):
        sys.exit(f"Python 3.10 or newer is needed; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print(f"creating {VENV} …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    # Reinstall only when pyproject.toml or the wanted extras change.
    stamp = VENV / ".codeact-installed"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    print("installing dependencies (the first time builds llama-cpp-python: ~10 min on 2 cores) …", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, "--quiet", "--upgrade", "pip", "setuptools", "wheel"], check=True)
    target = f".[{extras}]" if extras else "."
    subprocess.run([*pip, "--editable", target], cwd=ROOT, check=True)
    stamp.write_text(wanted)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "test"):
        print(__doc__)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    # The test extra is a superset; keep one environment for both commands.
    installed = VENV / ".codeact-installed"
    ensure_environment("test" if command == "test" or installed.exists() else "")
    if command == "run":
        return subprocess.call([str(BIN / "codeact-desktop"), *rest])
    return subprocess.call([str(PYTHON), "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
