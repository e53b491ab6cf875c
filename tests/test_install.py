"""A regular install, not the editable one the developers use: the wheel is built,
installed into a fresh venv and started from a folder outside the checkout, so nothing
can come from the source tree. Its data files (prompts, catalogue, style sheet) must be
package data. The fixed stack is not installed again: the fresh venv sees the project
venv's packages through a plain path entry (its editable hook is not run)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp / "dist"), str(ROOT)], capture_output=True, text=True, cwd=tmp)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp / "dist").glob("codeact_desktop-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.base_prefix + "/bin/python3" if os.name != "nt" else sys.executable, "-m", "venv",
                    str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    done = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    site = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # The kernel's read-only base layer, named as a bundle names it: both folders
    base = os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]])
    return python, {"CODEACT_HOME": str(tmp / "home"), "QT_QPA_PLATFORM": "offscreen", "CODEACT_KERNEL_BASE": base}, tmp


def _env(settings: dict) -> dict:
    env = {**os.environ, **settings}
    env.pop("PYTHONPATH", None)
    return env


def _run(program, settings, cwd, *args):
    return subprocess.run([str(program), *args], capture_output=True, text=True, cwd=cwd, env=_env(settings),
                          timeout=300, stdin=subprocess.DEVNULL)


def test_the_wheel_carries_its_data_files(installed):
    python, settings, tmp = installed
    where = _run(python, settings, tmp, "-c", "import codeact_desktop, codeact_desktop.resources as r; "
                 "print(codeact_desktop.__file__); print(r.resources_dir()); print(r.prompt_text('system.txt')[:16])")
    assert where.returncode == 0, where.stderr
    module, data, prompt = where.stdout.splitlines()
    assert str(ROOT) not in module and str(ROOT) not in data, where.stdout  # from the install, not the checkout
    assert "site-packages/codeact_desktop/resources_data" in data and prompt == "A chat between a"


def test_the_installed_cli_and_window_start(installed):
    python, settings, tmp = installed
    script = python.parent / ("codeact-desktop.exe" if os.name == "nt" else "codeact-desktop")
    models = _run(script, settings, tmp, "models", "list")
    assert models.returncode == 0 and "codeact-mistral-7b" in models.stdout.lower(), models.stdout + models.stderr
    sys.path.insert(0, str(ROOT))
    from tests.scripted_openai import ScriptedOpenAIServer

    server = ScriptedOpenAIServer(["<execute>\nprint(6 * 7)\n</execute>", "It is 42."])
    try:
        answer = _run(script, settings, tmp, "run", "six times seven?", "--base-url", server.url, "--yes")
    finally:
        server.close()
    assert answer.returncode == 0 and "42" in answer.stdout and "It is 42." in answer.stdout, answer.stderr[-2000:]
    window = subprocess.Popen([str(script)], cwd=tmp, env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        time.sleep(6)
        assert window.poll() is None, window.communicate()[1][-2000:]  # the style sheet and the window loaded
    finally:
        window.terminate()
        window.wait(10)


def test_every_subpackage_is_listed_for_the_wheel():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "codeact_desktop").rglob("__init__.py")}
    assert found <= listed, f"add to pyproject.toml's packages: {sorted(found - listed)}"


def test_the_bundle_keeps_every_qt_module_the_app_imports():
    """The bundles delete the Qt modules not listed as kept; one imported but pruned fails
    only in the built bundle's self-test (it did: QtSvg, stop 23's CI)."""
    import re
    QT_MODULES_KEPT = _packaging_module("bundle_common").QT_MODULES_KEPT
    imported = set()
    for source in (ROOT / "codeact_desktop").rglob("*.py"):
        imported |= set(re.findall(r"\bPySide6\.(Qt\w+)", source.read_text(encoding="utf-8")))
    assert "QtWidgets" in imported  # the scan sees the imports
    assert imported <= set(QT_MODULES_KEPT), sorted(imported - set(QT_MODULES_KEPT))


def test_a_linux_bundle_without_the_window_plugins_libraries_is_not_built():
    """The build copies what Qt's X11 plugin loads into the bundle; a build machine lacking one
    made a bundle whose window could not open on a desktop without it (stop 28's smoke run:
    libxcb-icccm4, libxcb-keysyms1), so the build stops and names the package."""
    linux_bundle = _packaging_module("linux_bundle")
    linux_bundle.require_window_libraries({"libwayland-cursor.so.0": ["libqwayland.so"]})  # another desktop's
    with pytest.raises(SystemExit, match=r"apt-get install libxcb-icccm4 libxkbcommon-x11-0\)"):
        linux_bundle.require_window_libraries({"libxcb-icccm.so.4": ["libqxcb.so"],
                                               "libxkbcommon-x11.so.0": ["libQt6XcbQpa.so.6", "libqxcb.so"]})


def _packaging_module(name: str):
    """A module of packaging/ (scripts, not a package of the app)."""
    import importlib
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "packaging"))
