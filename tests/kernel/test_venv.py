"""The kernel venv: made offline in seconds, has the stack, isolates installs."""

import subprocess
import sys
import time
import zipfile
from pathlib import Path

from codeact_desktop.kernel.venv import base_layer_paths, ensure_kernel_venv


def test_venv_is_made_quickly_and_sees_the_scientific_stack(tmp_path):
    t0 = time.monotonic()
    venv = ensure_kernel_venv(tmp_path / "venv")
    made_in = time.monotonic() - t0
    assert made_in < 30, f"venv took {made_in:.1f} s"
    probe = "import ipykernel, numpy, pandas, scipy, sympy, matplotlib, seaborn, sklearn, PIL, openpyxl; print('ok')"
    done = subprocess.run([str(venv.python), "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr
    # a second call finds it right and does nothing
    t0 = time.monotonic()
    assert ensure_kernel_venv(tmp_path / "venv").root == venv.root
    assert time.monotonic() - t0 < 1


def test_kernel_starts_isolated_and_its_children_use_the_venv(make_kernel, kernel_venv):
    kernel = make_kernel()
    result = kernel.execute("import sys, subprocess; print(sys.executable); print(sys.flags.isolated); "
                            "print(subprocess.run([sys.executable, '-c', 'import sys, numpy; print(sys.prefix)'], "
                            "capture_output=True, text=True).stdout)")
    executable, isolated, child_prefix = result.items[0].text.split()
    assert Path(executable) == kernel_venv.python  # what `!python` and multiprocessing start
    assert isolated == "1"  # nothing the kernel could write was read before its restrictions
    assert Path(child_prefix) == kernel_venv.root  # ... and the venv sees the stack
    assert Path(executable) != Path(sys.executable)


def _tiny_wheel(folder: Path) -> Path:
    """A real wheel, built by hand so no network or build backend is needed."""
    wheel = folder / "codeact_probe-1.0-py3-none-any.whl"
    files = {
        "codeact_probe.py": "VALUE = 42\n",
        "codeact_probe-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: codeact-probe\nVersion: 1.0\n",
        "codeact_probe-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "codeact_probe-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr("codeact_probe-1.0.dist-info/RECORD", record)
    return wheel


def test_pip_install_lands_in_the_conversations_packages_only(make_kernel, kernel_venv, tmp_path):
    workspace = tmp_path / "ws"  # the wheel sits where the kernel may read: its workspace
    workspace.mkdir()
    wheel = _tiny_wheel(workspace)
    kernel = make_kernel(workspace)
    result = kernel.execute(f"!pip install --no-index --quiet {wheel}\nimport codeact_probe, os\nprint(codeact_probe.VALUE, codeact_probe.__file__)", timeout=120)
    text = "".join(i.text for i in result.items)
    assert "42" in text, text
    installed = Path(text.split()[-1])
    assert installed.is_relative_to(Path(kernel.env["HOME"]) / ".local")  # this conversation's own
    assert not (kernel_venv.site_packages() / "codeact_probe.py").exists()
    other = make_kernel(tmp_path / "other")
    assert other.execute("import codeact_probe").status == "error"  # another conversation does not see it
    for layer in base_layer_paths():
        assert not (layer / "codeact_probe.py").exists()
    # the app's own interpreter does not see it
    done = subprocess.run([sys.executable, "-c", "import codeact_probe"], capture_output=True)
    assert done.returncode != 0
