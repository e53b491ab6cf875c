"""Builds llama.cpp's libraries for a bundle: every backend a loadable module.

The source is the llama.cpp that the pinned llama-cpp-python release vendors (its sdist
from PyPI), so the Python bindings and the libraries always match. Backends are built as
modules (``GGML_BACKEND_DL``) and the CPU backend in every x86-64/ARM variant
(``GGML_CPU_ALL_VARIANTS``): at run time ggml scores each variant against the CPU and loads
the best one, so a bundle built here runs on a CPU without AVX2 instead of dying with
SIGILL. GPU backends (Vulkan, CUDA, Metal) are modules too: one whose driver is missing
does not load, and the CPU is used. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

LLAMA_CPP_PYTHON = "0.3.36"
BACKENDS = ("cpu", "vulkan", "cuda", "metal")

# Not shipped: the AMX variant. ggml picks it wherever the CPU advertises AMX, and a
# virtual machine here advertised AMX that faults at the first tile instruction
# (segfault in ggml_backend_amx_mul_mat); the AVX-512 variants run there. Laptops have no AMX.
NOT_SHIPPED_VARIANTS = ("sapphirerapids",)


def bundled(name: str) -> bool:
    """Whether a file of the build goes into the bundle: libllama and ggml (core and
    backends); not llama-bench's libraries or llama.cpp's "common" (the app uses neither)."""
    if not name.startswith(("libllama", "libggml", "llama.", "ggml")) or "bench" in name or "common" in name:
        return False
    return not _not_shipped_variant(name)


def _not_shipped_variant(name: str) -> bool:
    return any(f"ggml-cpu-{v}." in name for v in NOT_SHIPPED_VARIANTS)


def _run(cmd: list[str], **kw) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def fetch_source(work: Path) -> Path:
    """The llama-cpp-python sdist (pip's cache makes this free after the first time)."""
    source = work / f"llama_cpp_python-{LLAMA_CPP_PYTHON}"
    if (source / "vendor" / "llama.cpp" / "CMakeLists.txt").exists():
        return source
    work.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
          f"llama-cpp-python=={LLAMA_CPP_PYTHON}", "-d", str(work)])
    with tarfile.open(work / f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz") as archive:
        archive.extractall(work, filter="data")
    return source


def cmake_flags(backends: list[str], vulkan_sdk: str | None) -> list[str]:
    flags = [
        "-DCMAKE_BUILD_TYPE=Release",
        "-DBUILD_SHARED_LIBS=ON",
        "-DGGML_BACKEND_DL=ON",
        "-DGGML_NATIVE=OFF",  # -march=native is what makes a bundle die on an older CPU
        "-DLLAMA_CURL=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_SERVER=OFF",
        "-DLLAMA_BUILD_TOOLS=ON",  # llama-bench: the native peer of bench/ (not bundled)
        # Backends live beside libllama; the app loads them from there by path.
        "-DCMAKE_INSTALL_RPATH=$ORIGIN" if sys.platform.startswith("linux") else "-DCMAKE_INSTALL_RPATH=@loader_path",
        "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON",
    ]
    if sys.platform != "darwin":
        flags.append("-DGGML_CPU_ALL_VARIANTS=ON")  # Apple silicon has one CPU family
    flags.append(f"-DGGML_VULKAN={'ON' if 'vulkan' in backends else 'OFF'}")
    flags.append(f"-DGGML_CUDA={'ON' if 'cuda' in backends else 'OFF'}")
    flags.append(f"-DGGML_METAL={'ON' if 'metal' in backends else 'OFF'}")
    if "metal" in backends:
        flags.append("-DGGML_METAL_EMBED_LIBRARY=ON")
    if "vulkan" in backends and vulkan_sdk:
        # Headers newer than the system's (Debian 12's 1.3.239 lacks vk::LayerSettingEXT):
        # packaging/vulkan_headers.sh unpacks Debian 13's into a prefix of their own.
        flags.append(f"-DVulkan_INCLUDE_DIR={vulkan_sdk}/include")
        flags.append(f"-DCMAKE_PREFIX_PATH={vulkan_sdk}")
    if "cuda" in backends:
        # The architectures people own (Pascal to Blackwell), PTX for what comes later.
        flags.append("-DCMAKE_CUDA_ARCHITECTURES=61;70;75;80;86;89;90;120")
    return flags


def built_libraries(build: Path) -> list[Path]:
    """Every shared library of the build (llama.cpp puts them all in ``bin/``): libllama,
    ggml's core and each backend module, symlinks included (``DT_NEEDED`` names the
    versioned file)."""
    patterns = {"darwin": ("lib*.dylib",), "win32": ("*.dll",)}.get(sys.platform, ("lib*.so", "lib*.so.*"))
    found = {p for pattern in patterns for p in (build / "bin").glob(pattern)}
    return sorted(p for p in found if p.name.lower().startswith(("libllama", "libggml", "llama", "ggml")))


def build(backends: list[str], work: Path, vulkan_sdk: str | None = None,
          jobs: int | None = None) -> Path:
    """Builds (or reuses) the libraries for ``backends``; returns the folder holding them
    and ``llama-bench``. The build folder is named by the flags, so a change rebuilds."""
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        raise SystemExit(f"unknown backend(s) {sorted(unknown)}; choose from {', '.join(BACKENDS)}")
    source = fetch_source(work)
    flags = cmake_flags(backends, vulkan_sdk)
    key = hashlib.sha256("\n".join([LLAMA_CPP_PYTHON, sys.platform, *flags]).encode()).hexdigest()[:10]
    build_dir = work / f"llama-{'-'.join(backends)}-{key}"
    out = build_dir / "out"
    if (out / ".complete").exists():
        return out
    _run(["cmake", "-S", str(source / "vendor" / "llama.cpp"), "-B", str(build_dir), *flags])
    _run(["cmake", "--build", str(build_dir), "--config", "Release", "-j", str(jobs or os.cpu_count() or 2),
          "--target", "llama", "llama-bench", *_backend_targets(build_dir)])
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    for lib in built_libraries(build_dir):
        if not _not_shipped_variant(lib.name):  # llama-bench runs what ships
            shutil.copy2(lib, out / lib.name, follow_symlinks=False)
    for tool in ("llama-bench", "llama-bench.exe"):
        for found in build_dir.rglob(tool):
            if found.is_file():
                shutil.copy2(found, out / tool)
    (out / ".complete").write_text(" ".join(flags))
    return out


def _backend_targets(build_dir: Path) -> list[str]:
    """The backend module targets CMake generated (ggml-cpu-haswell, ggml-vulkan, ...)."""
    done = subprocess.run(["cmake", "--build", str(build_dir), "--target", "help"],
                          capture_output=True, text=True)
    targets = []
    for line in done.stdout.splitlines():
        name = line.strip().lstrip(".").strip().split(":")[0].split()[0] if line.strip() else ""
        if name.startswith("ggml-") and name not in ("ggml-base",) and "shaders" not in name:
            targets.append(name)
    return sorted(set(targets))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="cpu")
    parser.add_argument("--work", default=str(Path(__file__).resolve().parent.parent / "build"))
    parser.add_argument("--vulkan-sdk", help="prefix holding include/vulkan and share/cmake/SPIRV-Headers")
    args = parser.parse_args()
    print(build(args.backends.split(","), Path(args.work), args.vulkan_sdk))
