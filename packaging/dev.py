#!/usr/bin/env python3
"""Creates the project's environment (.venv) if needed, then launches the app or runs
the tests. Standard library only: it runs before anything is installed.

    python3 packaging/dev.py run [args...]   # the app (args go to codeact-desktop)
    python3 packaging/dev.py test [pytest args...]

CODEACT_BACKENDS=cpu,vulkan (or cpu,cuda / cpu,metal) runs either with llama.cpp built the
way the bundle builds it, with those backends as loadable modules (packaging/llama_libs.py;
about 9 minutes the first time), instead of the developer build for this CPU.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def llama_cmake_args() -> str:
    """llama.cpp is built for this CPU (-march=native), minus AMX: CPUs and virtual
    machines that advertise AMX without running it (seen here: a segfault at the first
    ldtilecfg) would crash the first token. Laptops have no AMX; Xeons lose a little."""
    if "CMAKE_ARGS" in os.environ:
        return os.environ["CMAKE_ARGS"]
    if platform.machine().lower() in ("x86_64", "amd64") and os.name != "nt":
        flags = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
        return f"-DCMAKE_C_FLAGS='{flags}' -DCMAKE_CXX_FLAGS='{flags}'"
    return ""


def ensure_llama(pip: list[str]) -> None:
    """(Re)builds llama-cpp-python when it was built with other flags (or not yet)."""
    wanted = llama_cmake_args()
    stamp = VENV / ".codeact-llama-flags"
    if stamp.exists() and stamp.read_text() == wanted:
        return
    print("building llama-cpp-python (about 10 min on 2 cores) …", flush=True)
    # No cache: pip's wheel cache is keyed by the source, not by the flags it was built with.
    subprocess.run([*pip, "--force-reinstall", "--no-deps", "--no-cache-dir", "--no-binary", "llama-cpp-python",
                    "llama-cpp-python>=0.3.0"], check=True, env={**os.environ, "CMAKE_ARGS": wanted})
    stamp.write_text(wanted)


def ensure_environment(extras: str) -> None:
    if sys.version_info < (3, 10):
        sys.exit(f"Python 3.10 or newer is needed; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print(f"creating {VENV} …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    # Reinstall only when pyproject.toml or the wanted extras change.
    stamp = VENV / ".codeact-installed"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check"]
    if stamp.exists() and stamp.read_text() == wanted:
        ensure_llama(pip)
        return
    print("installing dependencies …", flush=True)
    subprocess.run([*pip, "--quiet", "--upgrade", "pip", "setuptools", "wheel"], check=True)
    ensure_llama(pip)
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
    env = dict(os.environ)
    backends = env.get("CODEACT_BACKENDS")
    if backends:
        env["LLAMA_CPP_LIB_PATH"] = str(module_build(backends.split(",")))
    if command == "run":
        return subprocess.call([str(BIN / "codeact-desktop"), *rest], env=env)
    return subprocess.call([str(PYTHON), "-m", "pytest", *rest], cwd=ROOT, env=env)


def module_build(backends: list[str]) -> Path:
    """llama.cpp's libraries with ``backends`` as modules, built once (packaging/llama_libs.py)."""
    sys.path.insert(0, str(ROOT / "packaging"))
    import llama_libs

    sdk = os.environ.get("VULKAN_SDK")
    if "vulkan" in backends and not sdk and sys.platform.startswith("linux"):
        # Debian 12's headers are too old for this llama.cpp: newer ones, unpacked locally.
        sdk = subprocess.run(["bash", str(ROOT / "packaging" / "vulkan_headers.sh")], check=True,
                             capture_output=True, text=True).stdout.strip()
    return llama_libs.build(backends, ROOT / "build", sdk)


if __name__ == "__main__":
    sys.exit(main())
