#!/usr/bin/env python3
"""Builds the app people download and double-click, for the platform it runs on.

    python3 packaging/build.py                      # Linux: dist/CodeActDesktop-<v>-linux-x86_64.tar.xz
    python3 packaging/build.py --backends cpu,vulkan --vulkan-sdk "$(packaging/vulkan_headers.sh)"
    python3 packaging/build.py --lock               # re-resolve packaging/locks/<platform>.txt

macOS gives a ``.app`` in a ``.dmg`` and Windows an Inno Setup installer; those two run
on their own CI runners (.github/workflows/bundle.yml). What each artifact holds, why it
is a relocatable Python runtime rather than a frozen app, and its sizes: packaging/README.md.
Standard library only: it runs before anything is installed. Run it with the CPython the
bundle should carry (not from inside a virtual environment).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import llama_libs  # noqa: E402

DEFAULT_BACKENDS = {"linux": "cpu,vulkan", "darwin": "cpu,metal", "win32": "cpu,vulkan"}


def version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)


def platform_key() -> str:
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}[sys.platform]
    return f"{system}-{platform.machine().lower()}"


def lock() -> Path:
    """Resolves pyproject.toml's dependencies (not the test extra) to exact versions."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
                        "--report", str(report), str(ROOT)], check=True)
        installed = json.loads(report.read_text())["install"]
    pins = sorted(f"{i['metadata']['name']}=={i['metadata']['version']}" for i in installed
                  if i["metadata"]["name"] != "codeact-desktop")
    pip_version = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True,
                                 text=True, check=True).stdout.split()[1]
    out = HERE / "locks" / f"{platform_key()}.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        f"# The bundle's locked dependencies for {platform_key()} (python3 packaging/build.py installs\n"
        "# exactly these). Made by: python3 packaging/build.py --lock (pip's resolver on pyproject.toml).\n"
        + f"pip=={pip_version}\n" + "\n".join(sorted(pins, key=str.lower)) + "\n")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=DEFAULT_BACKENDS[sys.platform],
                        help=f"llama.cpp backends, from {', '.join(llama_libs.BACKENDS)} (default: %(default)s)")
    parser.add_argument("--vulkan-sdk", help="a prefix with Vulkan and SPIR-V headers newer than the system's")
    parser.add_argument("--work", type=Path, default=ROOT / "build", help="build folder (default: %(default)s)")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the artifact goes")
    parser.add_argument("--stage-only", action="store_true", help="assemble the folder, do not pack it")
    parser.add_argument("--lock", action="store_true", help="re-resolve the locked dependencies and stop")
    args = parser.parse_args()
    if args.lock:
        print(lock())
        return 0
    backends = args.backends.split(",")
    if sys.platform.startswith("linux"):
        import linux_bundle

        linux_bundle.build(version(), backends, args.work, args.dist, args.vulkan_sdk,
                           compress=not args.stage_only)
    elif sys.platform == "darwin":
        import macos_bundle

        macos_bundle.build(version(), backends, args.work, args.dist)
    elif sys.platform == "win32":
        import windows_bundle

        windows_bundle.build(version(), backends, args.work, args.dist, args.vulkan_sdk)
    else:
        raise SystemExit(f"no bundle for {sys.platform}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
