"""What every platform's bundle shares: installing the locked dependencies and the app
into the bundled Python, removing what a window does not need, sizes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import llama_libs

ROOT = Path(__file__).resolve().parent.parent
# QtNetwork: the single-instance socket; QtSvg: model-made SVG drawn as SVG (ui/svg_image.py).
# tests/test_install.py checks that every Qt module the app imports is here.
QT_MODULES_KEPT = ("QtCore", "QtGui", "QtWidgets", "QtNetwork", "QtSvg")
# Pure Python, published on PyPI as source archives only (docs/kernel-stack.md): built
# into wheels by pip at install time, with nothing compiled.
SOURCE_ONLY = ("jieba", "moviepy", "odfpy")
# The ffmpeg program inside imageio-ffmpeg's wheel is a GPL-3.0 build (run as its own process,
# never linked: docs/kernel-stack.md, "Licences"); its licence text goes with the bundle.
FFMPEG_LICENCE = ("ffmpeg, the program inside imageio-ffmpeg (GPL-3.0; source: https://ffmpeg.org/download.html, "
                  "how imageio-ffmpeg gets its builds: https://github.com/imageio/imageio-ffmpeg)",
                  ROOT / "packaging" / "licences" / "GPL-3.0.txt")
QT_PLUGINS_KEPT = ("platforms", "platformthemes", "platforminputcontexts", "imageformats", "iconengines",
                   "styles", "xcbglintegrations", "wayland-decoration-client", "wayland-graphics-integration-client",
                   "wayland-shell-integration", "egldeviceintegrations")


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def install_packages(python: Path, site: Path, lock: Path, libs: Path) -> None:
    """The locked dependencies (wheels only), the app, and llama-cpp-python with the
    bundle's own llama.cpp libraries in place of the ones it would build."""
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run([python, "-m", "ensurepip", "--default-pip"])  # then upgraded to the locked pip
    locked = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
    wheels = [line for line in locked if not line.lower().startswith("llama_cpp_python")]
    # Wheels only, but for the kernel's few pure-Python packages that PyPI has as sources alone.
    run([*pip, "install", "--quiet", "--no-deps", "--only-binary", ":all:", "--no-binary", ",".join(SOURCE_ONLY),
         *wheels])
    # Python code only (LLAMA_BUILD=OFF): the libraries are the ones built with every
    # backend as a module. No cache: that wheel must never stand in for a full build.
    env = {**os.environ, "CMAKE_ARGS": "-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF"}
    run([*pip, "install", "--quiet", "--no-deps", "--no-cache-dir", "--no-binary", "llama-cpp-python",
         f"llama-cpp-python=={llama_libs.LLAMA_CPP_PYTHON}"], env=env)
    run([*pip, "install", "--quiet", "--no-deps", "--no-cache-dir", ROOT])
    target = site / "llama_cpp" / "lib"
    target.mkdir(parents=True, exist_ok=True)
    for lib in libs.iterdir():
        if llama_libs.bundled(lib.name):
            shutil.copy2(lib, target / lib.name, follow_symlinks=False)


# -- what a window does not need ------------------------------------------------------------

def prune(site: Path, bin_dir: Path, keep_bin: tuple[str, ...]) -> dict[str, int]:
    """Removes tests, headers, build inputs, and the Qt modules, tools and plugins the app
    does not use; and the scripts pip wrote into ``bin_dir`` (their first line names this
    build's folder; the app starts none of them: the kernel's pip is ``python -m pip``).
    Returns the bytes saved per kind."""
    saved: dict[str, int] = {}

    def drop(path: Path, kind: str) -> None:
        if not path.exists() and not path.is_symlink():
            return
        n = size(path)
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        saved[kind] = saved.get(kind, 0) + n

    for path in list(site.rglob("tests")):
        if path.is_dir():
            drop(path, "tests")
    for pattern in ("*.pyx", "*.pxd", "*.c", "*.h", "*.hpp", "*.a", "*.lib"):
        for path in list(site.rglob(pattern)):
            drop(path, "headers and build inputs")
    for path in list(site.rglob("include")):
        if path.is_dir():
            drop(path, "headers and build inputs")
    for path in list(bin_dir.iterdir()) if bin_dir.is_dir() else []:
        if path.name not in keep_bin and not path.name.lower().startswith(("python", "vcruntime")):
            drop(path, "scripts")
    pyside = site / "PySide6"
    if pyside.is_dir():
        for path in list(pyside.iterdir()):
            module = path.name.split(".")[0]
            if path.suffix in (".so", ".pyd", ".pyi") and module.startswith("Qt") and module not in QT_MODULES_KEPT:
                drop(path, "Qt modules not used")
            elif module in ("typesystems", "glue", "include", "scripts", "doc", "examples", "qml", "metatypes",
                            "lupdate", "lrelease", "rcc", "uic", "designer", "assistant", "linguist", "qmlformat",
                            "qmllint", "qmlls", "balsam", "balsamui", "libexec", "Designer", "Assistant", "Linguist"):
                drop(path, "Qt tools and build files")
            elif path.is_file() and (path.suffix == ".exe" or (not path.suffix and os.access(path, os.X_OK))):
                drop(path, "Qt tools and build files")  # svgtoqml and the like: programs, not modules
        qt = pyside / "Qt" if (pyside / "Qt").is_dir() else pyside
        for folder in ("qml", "libexec", "metatypes"):
            drop(qt / folder, "Qt modules not used")
        plugins = qt / "plugins"
        for plugin in list(plugins.iterdir()) if plugins.is_dir() else []:
            if plugin.name not in QT_PLUGINS_KEPT:
                drop(plugin, "Qt plugins not used")
        translations = qt / "translations"
        for tr in list(translations.glob("*.qm")) if translations.is_dir() else []:
            if not tr.name.startswith("qtbase_"):
                drop(tr, "Qt translations of modules not used")
    return saved


def size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def largest(site: Path, n: int = 12) -> list[tuple[str, int]]:
    sizes = [(p.name, size(p)) for p in site.iterdir()]
    return sorted(sizes, key=lambda x: -x[1])[:n]


