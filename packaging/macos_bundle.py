"""The macOS artifact: ``CodeAct Desktop.app`` in a ``.dmg``. Runs on a macOS runner
(.github/workflows/bundle.yml); never run here, where there is no Mac.

The runtime is python-build-standalone's relocatable CPython (the one uv and Briefcase
use), pinned by URL and SHA-256, unpacked into ``Contents/Resources/runtime``. llama.cpp is
built with Metal (embedded shaders) as a loadable backend beside the CPU backend.
Signing and notarisation: packaging/README.md.
"""

from __future__ import annotations

import hashlib
import plistlib
import shutil
import subprocess
import tarfile
import urllib.request
from pathlib import Path

import llama_libs
from bundle_common import ROOT, install_packages, prune, run

# python-build-standalone, CPython 3.11, "install_only" builds of one pinned release.
PBS_RELEASE = "https://github.com/astral-sh/python-build-standalone/releases/download/20241016/"
PBS_FILES = {"arm64": "cpython-3.11.10+20241016-aarch64-apple-darwin-install_only.tar.gz",
             "x86_64": "cpython-3.11.10+20241016-x86_64-apple-darwin-install_only.tar.gz"}
# What Finder offers "Open with CodeAct Desktop" for (the same kinds as Linux's MimeType=).
DOCUMENT_TYPES = ["public.comma-separated-values-text", "public.tab-separated-values-text", "public.json",
                  "public.plain-text", "net.daringfireball.markdown", "public.html", "public.xml",
                  "com.adobe.pdf", "org.openxmlformats.spreadsheetml.sheet", "com.microsoft.excel.xls",
                  "org.oasis-open.opendocument.spreadsheet", "org.openxmlformats.wordprocessingml.document",
                  "org.openxmlformats.presentationml.presentation", "public.png", "public.jpeg",
                  "com.compuserve.gif", "public.tiff", "public.mp3", "com.microsoft.waveform-audio",
                  "public.mpeg-4", "public.zip-archive", "public.data"]


def fetch_python(name: str, work: Path) -> Path:
    """A python-build-standalone archive, checked against the release's SHA256SUMS."""
    work.mkdir(parents=True, exist_ok=True)
    archive = work / name
    if not archive.exists():
        urllib.request.urlretrieve(PBS_RELEASE + name, archive)
    sums = urllib.request.urlopen(PBS_RELEASE + "SHA256SUMS").read().decode()
    wanted = next((line.split()[0] for line in sums.splitlines() if line.endswith(name)), None)
    if wanted is None or hashlib.sha256(archive.read_bytes()).hexdigest() != wanted:
        archive.unlink()
        raise SystemExit(f"{name}: its SHA-256 is not the one the release lists")
    return archive


def icns(work: Path) -> Path:
    """The icon in Apple's format, from the PNGs in resources/icons (iconutil)."""
    iconset = work / "codeact-desktop.iconset"
    iconset.mkdir(exist_ok=True)
    source = ROOT / "resources" / "icons" / "codeact-desktop-256.png"
    for size in (16, 32, 128, 256):
        for scale in (1, 2):
            px = size * scale
            name = f"icon_{size}x{size}{'@2x' if scale == 2 else ''}.png"
            run(["sips", "-z", px, px, source, "--out", iconset / name],
                capture_output=True)
    out = work / "codeact-desktop.icns"
    run(["iconutil", "-c", "icns", iconset, "-o", out])
    return out


def build(version: str, backends: list[str], work: Path, dist: Path) -> Path:
    arch = subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip()
    libs = llama_libs.build(backends, work)
    app = work / "bundle" / "CodeAct Desktop.app"
    if app.exists():
        shutil.rmtree(app)
    resources = app / "Contents" / "Resources"
    resources.mkdir(parents=True)
    with tarfile.open(fetch_python(PBS_FILES[arch], work)) as archive:
        archive.extractall(resources, filter="data")
    runtime = resources / "python"
    runtime.rename(resources / "runtime")
    runtime = resources / "runtime"
    python = runtime / "bin" / "python3"
    site = next((runtime / "lib").glob("python3.*/site-packages"))
    install_packages(python, site, ROOT / "packaging" / "locks" / f"macos-{arch}.txt", libs)
    prune(site, runtime / "bin", keep_bin=("python3", "python3.11"))
    shutil.copy2(icns(work), resources / "codeact-desktop.icns")
    macos = app / "Contents" / "MacOS"
    macos.mkdir()
    launcher = macos / "CodeAct Desktop"
    launcher.write_text('#!/bin/sh\nhere="$(cd "$(dirname "$0")/../Resources" && pwd)"\n'
                        'exec "$here/runtime/bin/python3" -I -m codeact_desktop "$@"\n')
    launcher.chmod(0o755)
    with (app / "Contents" / "Info.plist").open("wb") as f:
        plistlib.dump({
            "CFBundleName": "CodeAct Desktop", "CFBundleDisplayName": "CodeAct Desktop",
            "CFBundleIdentifier": "org.codeact.desktop", "CFBundleVersion": version,
            "CFBundleShortVersionString": version, "CFBundleExecutable": "CodeAct Desktop",
            "CFBundleIconFile": "codeact-desktop.icns", "CFBundlePackageType": "APPL",
            "LSMinimumSystemVersion": "12.0", "NSHighResolutionCapable": True,
            "CFBundleDocumentTypes": [{"CFBundleTypeRole": "Viewer", "LSHandlerRank": "Alternate",
                                       "LSItemContentTypes": DOCUMENT_TYPES}],
        }, f)
    dist.mkdir(parents=True, exist_ok=True)
    dmg = dist / f"CodeActDesktop-{version}-macos-{arch}.dmg"
    run(["hdiutil", "create", "-volname", "CodeAct Desktop", "-srcfolder", app, "-ov", "-format", "UDZO", dmg])
    return dmg
