"""The Linux artifact: a relocatable folder, packed as ``.tar.xz``.

    CodeActDesktop-<version>-linux-x86_64/
      codeact-desktop            the program to start (a two-line shell script)
      install.sh, uninstall.sh   menu entry, icon, "Open with" for the file kinds it reads
      runtime/                   CPython, with the app and its locked dependencies in its site-packages
        lib/python3.11/site-packages/llama_cpp/lib/   llama.cpp and its backend modules
      share/                     .desktop file, icon, MIME definitions
      THIRD_PARTY_LICENSES

The runtime is a copy of the CPython that runs this script, made relocatable: the
interpreter and each extension module find libpython and the libraries copied beside them
through ``$ORIGIN`` run paths (patchelf), never through ``LD_LIBRARY_PATH``, which would
leak into every program the app starts. Libraries every desktop has, and must use its own
of (glibc, libstdc++, the GPU and display stack), are not copied.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import llama_libs
from bundle_common import FFMPEG_LICENCE, ROOT, install_packages, largest, prune, run, size

PY = f"python{sys.version_info.major}.{sys.version_info.minor}"

# Kept by the system: the C library and its loader, the C++ runtime (a GPU driver loaded
# into the process may need a newer one than ours), and the display, GPU and font stack,
# which must match the machine (the same rule as AppImage's exclude list).
SYSTEM_LIBRARIES = re.compile(
    r"^(ld-linux.*|libc|libm|libdl|libpthread|librt|libresolv|libutil|libnsl|libanl|libmvec|"
    r"libstdc\+\+|libgcc_s|libgomp-never|"
    r"libGL.*|libEGL|libGLX.*|libGLdispatch|libOpenGL|libgbm|libdrm.*|libvulkan|"
    r"libX11.*|libxcb|libxcb-(glx|dri2|dri3|present|randr|render|shm|sync|xfixes|xinerama|xkb|shape|"
    r"xinput)|libXau|libXdmcp|libXext|libXrender|libXi|libXfixes|libxkbcommon|libwayland-.*|"
    r"libfontconfig|libfreetype|libexpat|libz|libdbus-1|libglib-2\.0|libgobject-2\.0|libgthread-2\.0|"
    r"libsystemd|libudev|libasound|libpulse.*|libharfbuzz|libpng16|libgpg-error|libgcrypt|libcap|"
    r"libselinux|libpcre2-8|liblzma|libzstd|liblz4|"
    # GTK and its stack, for Qt's GTK theme plugin: the desktop's own or none at all
    r"libgtk-3|libgdk-3|libatk-1\.0|libatk-bridge-2\.0|libatspi|libcairo|libcairo-gobject|libpango-1\.0|"
    r"libpangocairo-1\.0|libpangoft2-1\.0|libgdk_pixbuf-2\.0|libgio-2\.0|libgmodule-2\.0|libfribidi|libthai|"
    r"libdatrie|libgraphite2|libpixman-1|libblkid|libmount|libepoxy|libXcomposite|libXcursor|libXdamage|"
    r"libXrandr|libXinerama|libbrotli.*)\.so(\..*)?$"
)
STDLIB_DROPPED = ("test", "idlelib", "tkinter", "turtledemo", "lib2to3/tests", "site-packages")
DYNLOAD_DROPPED = re.compile(r"^(_tkinter|_test|_xxtest|xxlimited|_ctypes_test|xxsubtype)")


def site_packages(runtime: Path) -> Path:
    return runtime / "lib" / PY / "site-packages"


# -- the Python runtime ---------------------------------------------------------------------

def copy_python(runtime: Path) -> Path:
    """Copies the interpreter, libpython and the standard library; returns the python."""
    base = Path(sys.base_prefix)
    if sys.prefix != sys.base_prefix and not (base / "bin" / PY).exists():
        raise SystemExit("run the build with a real CPython, not from inside a virtual environment")
    (runtime / "bin").mkdir(parents=True)
    python = runtime / "bin" / PY
    shutil.copy2(base / "bin" / PY, python)
    for alias in ("python3", "python"):
        (runtime / "bin" / alias).symlink_to(PY)
    (runtime / "lib").mkdir()
    for lib in (base / "lib").glob(f"libpython{sys.version_info.major}.{sys.version_info.minor}*.so*"):
        shutil.copy2(lib, runtime / "lib" / lib.name, follow_symlinks=False)

    def ignore(folder: str, names: list[str]) -> set[str]:
        rel = Path(folder).relative_to(base / "lib" / PY)
        dropped = {n for n in names if str(rel / n) in STDLIB_DROPPED or (rel / n).as_posix() in STDLIB_DROPPED}
        dropped |= {n for n in names if n.endswith(".a")}  # the static libpython (tens of MB)
        if rel.name == "lib-dynload":
            dropped |= {n for n in names if DYNLOAD_DROPPED.match(n)}
        return dropped

    shutil.copytree(base / "lib" / PY, runtime / "lib" / PY, ignore=ignore, symlinks=True)
    (runtime / "lib" / PY / "site-packages").mkdir()
    run(["patchelf", "--set-rpath", "$ORIGIN/../lib", python])
    return python


def prune_qt_libraries(site: Path) -> dict[str, int]:
    """Qt libraries that no kept PySide6 module or plugin loads (their ELF closure)."""
    qt = site / "PySide6" / "Qt"
    if not (qt / "lib").is_dir():
        return {}
    saved = 0
    # A plugin that needs a Qt library the wheel does not have can never load (the PDF,
    # virtual keyboard and embedded-display plugins of PySide6-Essentials).
    for plugin in list((qt / "plugins").rglob("*.so")):
        if any(n.startswith("libQt6") and not (qt / "lib" / n).exists() for n in _needed(plugin)):
            saved += size(plugin)
            plugin.unlink()
    roots = [p for p in (site / "PySide6").glob("Qt*.so") if p.is_file()] + list((qt / "plugins").rglob("*.so"))
    needed = _elf_closure(roots, qt / "lib")
    for lib in list((qt / "lib").glob("lib*.so*")):
        if lib.name not in needed:
            saved += size(lib)
            lib.unlink()
    return {"Qt libraries not used": saved}


def _needed(elf: Path) -> list[str]:
    done = subprocess.run(["patchelf", "--print-needed", str(elf)], capture_output=True, text=True)
    return done.stdout.split() if done.returncode == 0 else []


def _elf_closure(roots: list[Path], folder: Path) -> set[str]:
    """Names of the libraries in ``folder`` that ``roots`` need, directly or not."""
    needed: set[str] = set()
    todo = list(roots)
    while todo:
        for name in _needed(todo.pop()):
            if name not in needed and (folder / name).exists():
                needed.add(name)
                real = (folder / name).resolve()
                needed.add(real.name)
                todo.append(real)
    return needed


# -- libraries the machine may not have -----------------------------------------------------

def _is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _resolved(elf: Path) -> dict[str, str]:
    """name -> path the loader found for each dependency (ldd), '' where not found."""
    done = subprocess.run(["ldd", str(elf)], capture_output=True, text=True)
    found = {}
    for line in done.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (not found|\S+)", line)
        if m:
            found[m.group(1)] = "" if m.group(2) == "not found" else m.group(2)
    return found


def bundle_libraries(stage: Path, lib_folder: Path) -> tuple[list[str], dict[str, list[str]]]:
    """Copies into ``lib_folder`` each library an ELF of the bundle loads from the build
    machine that a user's machine may lack, and points that ELF's run path at it. Returns
    the names copied, and what the build machine itself lacks (library -> who needs it:
    Qt plugins for a desktop this machine does not have, say)."""
    copied: dict[str, Path] = {}
    missing: dict[str, list[str]] = {}
    elves = [p for p in stage.rglob("*") if p.is_file() and not p.is_symlink() and _is_elf(p)]
    for elf in elves:
        wants = []
        for name, where in _resolved(elf).items():
            if not where:
                missing.setdefault(name, []).append(elf.name)
                continue
            if SYSTEM_LIBRARIES.match(name) or Path(where).is_relative_to(stage):
                continue
            if name not in copied:
                shutil.copy2(where, lib_folder / name)
                os.chmod(lib_folder / name, 0o755)
                copied[name] = lib_folder / name
                elves.append(lib_folder / name)
            wants.append(name)
        if wants:
            _add_rpath(elf, lib_folder)
    return sorted(copied), missing


# What Qt's X11 plugin loads: without them the window cannot open, so they must travel in the
# bundle (a desktop may lack libxcb-cursor0, say), and so they must be on the build machine.
WINDOW_PLUGIN = frozenset({"libqxcb.so", "libQt6XcbQpa.so.6"})


def require_window_libraries(missing: dict[str, list[str]]) -> None:
    lacking = sorted(name for name, needers in missing.items() if WINDOW_PLUGIN.intersection(needers))
    if lacking:
        packages = " ".join(debian_package(name) for name in lacking)
        raise SystemExit(f"the window's X11 plugin needs {', '.join(lacking)}, which this build machine "
                         f"lacks, so the bundle could not carry them; install them (apt-get install {packages}) "
                         "and build again")


def debian_package(library: str) -> str:
    """libxcb-icccm.so.4 -> libxcb-icccm4; libxkbcommon-x11.so.0 -> libxkbcommon-x11-0 (Debian's naming)."""
    stem, _, soname = library.partition(".so.")
    return f"{stem}-{soname}" if stem[-1].isdigit() else f"{stem}{soname}"


def _add_rpath(elf: Path, folder: Path) -> None:
    rel = os.path.relpath(folder, elf.parent)
    entry = "$ORIGIN" if rel == "." else f"$ORIGIN/{rel}"
    old = subprocess.run(["patchelf", "--print-rpath", str(elf)], capture_output=True, text=True).stdout.strip()
    parts = [p for p in old.split(":") if p and not p.startswith("/")]  # no build-machine paths
    if entry not in parts:
        parts.append(entry)
    subprocess.run(["patchelf", "--set-rpath", ":".join(parts), str(elf)], check=True)


def glibc_needed(stage: Path) -> str:
    """The newest glibc symbol version any ELF in the bundle needs."""
    best = (0,)
    for elf in stage.rglob("*.so*"):
        if elf.is_file() and not elf.is_symlink() and _is_elf(elf):
            out = subprocess.run(["objdump", "-T", str(elf)], capture_output=True, text=True).stdout
            for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out):
                best = max(best, tuple(int(x) for x in v.split(".")))
    return ".".join(map(str, best))


# -- what a person sees -----------------------------------------------------------------------

LAUNCHER = """#!/bin/sh
# CodeAct Desktop. -I: no PYTHONPATH, user site or current folder can change what runs.
here="$(dirname "$(readlink -f "$0")")"
exec "$here/runtime/bin/python3" -I -m codeact_desktop "$@"
"""

INSTALL = """#!/bin/sh
# Adds CodeAct Desktop to the applications menu, with its icon and "Open with" for the
# file kinds it reads. Only your own account's folders are touched; uninstall.sh undoes it.
set -e
here="$(dirname "$(readlink -f "$0")")"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
mkdir -p "$data/applications" "$data/icons/hicolor/256x256/apps" \
    "$data/icons/hicolor/scalable/apps" "$data/mime/packages"
# The Exec line quoted as the specification asks, whatever this folder is called.
"$here/runtime/bin/python3" -I -m codeact_desktop.desktop_entry "$here/share/codeact-desktop.desktop" \
    "$here/codeact-desktop" > "$data/applications/codeact-desktop.desktop"
# `codeact-desktop FILE...` from a terminal, where ~/.local/bin is on PATH (most distributions).
mkdir -p "$HOME/.local/bin"
ln -sfn "$here/codeact-desktop" "$HOME/.local/bin/codeact-desktop"
cp "$here/share/codeact-desktop.png" "$data/icons/hicolor/256x256/apps/codeact-desktop.png"
cp "$here/share/codeact-desktop.svg" "$data/icons/hicolor/scalable/apps/codeact-desktop.svg"
cp "$here/share/codeact-desktop-mime.xml" "$data/mime/packages/codeact-desktop.xml"
command -v update-mime-database >/dev/null && update-mime-database "$data/mime" || true
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
echo "CodeAct Desktop is in your applications menu, in \\"Open with\\" for tables, documents and images,"
echo "and in a terminal as codeact-desktop ($HOME/.local/bin)."
"""

UNINSTALL = """#!/bin/sh
# Removes what install.sh added. Your conversations and models stay (see the README).
data="${XDG_DATA_HOME:-$HOME/.local/share}"
rm -f "$data/applications/codeact-desktop.desktop" "$data/icons/hicolor/256x256/apps/codeact-desktop.png" \\
      "$data/icons/hicolor/scalable/apps/codeact-desktop.svg" "$data/mime/packages/codeact-desktop.xml"
here="$(dirname "$(readlink -f "$0")")"
if [ "$(readlink "$HOME/.local/bin/codeact-desktop")" = "$here/codeact-desktop" ]; then
    rm -f "$HOME/.local/bin/codeact-desktop"
fi
command -v update-mime-database >/dev/null && update-mime-database "$data/mime" || true
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
echo "Removed the menu entry. Delete this folder to remove the app."
echo "Your conversations, settings and models stay in $data/CodeActDesktop (delete it to remove them too)."
"""


def _write_executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def desktop_files(stage: Path) -> None:
    share = stage / "share"
    share.mkdir()
    for src, dst in (("linux/codeact-desktop.desktop", "codeact-desktop.desktop"),
                     ("linux/codeact-desktop-mime.xml", "codeact-desktop-mime.xml"),
                     ("icons/codeact-desktop-256.png", "codeact-desktop.png"),
                     ("icons/codeact-desktop.svg", "codeact-desktop.svg")):
        shutil.copy2(ROOT / "resources" / src, share / dst)
    _write_executable(stage / "codeact-desktop", LAUNCHER)
    _write_executable(stage / "install.sh", INSTALL)
    _write_executable(stage / "uninstall.sh", UNINSTALL)


def build(version: str, backends: list[str], work: Path, dist: Path, vulkan_sdk: str | None,
          compress: bool = True) -> Path:
    started = time.monotonic()
    libs = llama_libs.build(backends, work, vulkan_sdk)
    llama_seconds = time.monotonic() - started
    arch = platform.machine()
    name = f"CodeActDesktop-{version}-linux-{arch}"
    stage = work / "bundle" / name
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    runtime = stage / "runtime"
    python = copy_python(runtime)
    install_packages(python, site_packages(runtime), ROOT / "packaging" / "locks" / f"linux-{arch}.txt", libs)
    saved = prune(site_packages(runtime), runtime / "bin", keep_bin=(PY, "python3", "python"))
    saved.update(prune_qt_libraries(site_packages(runtime)))
    drop_saved = runtime / "lib" / PY / "ensurepip"
    if drop_saved.exists():
        shutil.rmtree(drop_saved)  # used once, to bootstrap pip
    copied, missing = bundle_libraries(stage, runtime / "lib")
    for library, needers in sorted(missing.items()):
        print(f"note: {library} is not on this machine; needed by {', '.join(sorted(set(needers))[:4])}")
    require_window_libraries(missing)
    desktop_files(stage)
    source = llama_libs.fetch_source(work)
    licences = {"CPython": Path(sys.base_prefix) / "lib" / PY / "LICENSE.txt",
                "llama.cpp (vendored by llama-cpp-python)": source / "vendor" / "llama.cpp" / "LICENSE",
                FFMPEG_LICENCE[0]: FFMPEG_LICENCE[1]}
    run([python, "-I", "-m", "codeact_desktop.third_party", stage / "THIRD_PARTY_LICENSES",
         *(f"{k}={v}" for k, v in licences.items())])
    info = {
        "version": version, "platform": f"linux-{arch}", "built": time.strftime("%Y-%m-%d"),
        "llama_cpp_python": llama_libs.LLAMA_CPP_PYTHON, "llama_cpp_flags": (libs / ".complete").read_text(),
        "backends": backends, "cpu_variants": sorted(n[len("libggml-cpu-"):-3] for n in (p.name for p in libs.iterdir())
                              if n.startswith("libggml-cpu-") and llama_libs.bundled(n)),
        "glibc_needed": glibc_needed(stage), "libraries_copied": copied,
        "python": sys.version.split()[0],
        "licence_file": "../../../../../THIRD_PARTY_LICENSES",  # from the package folder to the bundle's top
    }
    (site_packages(runtime) / "codeact_desktop" / "_bundle.json").write_text(json.dumps(info, indent=2))
    installed = size(stage)
    print(f"staged {stage}: {installed / 1e6:.0f} MB installed; llama.cpp {llama_seconds:.0f} s; "
          f"pruned {sum(saved.values()) / 1e6:.0f} MB ({', '.join(f'{k} {v / 1e6:.0f} MB' for k, v in saved.items())})")
    print("largest packages:", ", ".join(f"{n} {s / 1e6:.0f} MB" for n, s in largest(site_packages(runtime))))
    if not compress:
        return stage
    dist.mkdir(parents=True, exist_ok=True)
    archive = dist / f"{name}.tar.xz"
    run(["tar", "-C", stage.parent, "-I", "xz -T0 -6", "-cf", archive, name])
    print(f"artifact {archive}: {archive.stat().st_size / 1e6:.0f} MB to download, {installed / 1e6:.0f} MB installed")
    return archive
