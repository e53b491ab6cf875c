"""The Windows artifact: an Inno Setup installer (Start-menu entry, "Open with" for the
file kinds the app reads, an uninstaller). Runs on a Windows runner
(.github/workflows/bundle.yml); never run here, where there is no Windows machine.

The runtime is python-build-standalone's relocatable CPython, checked against its
release's SHA256SUMS. llama.cpp is built with every CPU variant and Vulkan as loadable
backends (CUDA with ``--backends cpu,vulkan,cuda`` where the CUDA toolkit is installed).
The Start-menu entry runs ``pythonw.exe -I -m codeact_desktop``: no console window, and no
environment variable or current folder can change what Python runs. Signing:
packaging/README.md.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import llama_libs
from bundle_common import FFMPEG_LICENCE, ROOT, install_packages, prune, run
from macos_bundle import fetch_python

PBS_FILE = "cpython-3.11.10+20241016-x86_64-pc-windows-msvc-install_only.tar.gz"


def build(version: str, backends: list[str], work: Path, dist: Path, vulkan_sdk: str | None) -> Path:
    libs = llama_libs.build(backends, work, vulkan_sdk)
    stage = work / "bundle" / "CodeActDesktop"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    with tarfile.open(fetch_python(PBS_FILE, work)) as archive:
        archive.extractall(stage, filter="data")
    runtime = stage / "runtime"
    (stage / "python").rename(runtime)
    python = runtime / "python.exe"
    site = runtime / "Lib" / "site-packages"
    install_packages(python, site, ROOT / "packaging" / "locks" / "windows-amd64.txt", libs)
    prune(site, runtime / "Scripts", keep_bin=())
    shutil.copy2(ROOT / "resources" / "icons" / "codeact-desktop.ico", stage / "codeact-desktop.ico")
    run([python, "-I", "-m", "codeact_desktop.third_party", stage / "THIRD_PARTY_LICENSES.txt",
         f"CPython={runtime / 'LICENSE.txt'}",
         f"llama.cpp={llama_libs.fetch_source(work) / 'vendor' / 'llama.cpp' / 'LICENSE'}",
         f"{FFMPEG_LICENCE[0]}={FFMPEG_LICENCE[1]}"])
    dist.mkdir(parents=True, exist_ok=True)
    iscc = shutil.which("iscc") or r"C:\Program Files (x86)\Inno Setup 6\ISCC.exe"
    run([iscc, f"/DAppVersion={version}", f"/DStage={stage}", f"/O{dist}",
         ROOT / "packaging" / "windows" / "codeact-desktop.iss"])
    return dist / f"CodeActDesktop-{version}-windows-x64-setup.exe"
