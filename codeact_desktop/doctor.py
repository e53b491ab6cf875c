"""``codeact-desktop doctor``: what this machine offers the app."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys

from .kernel.venv import KernelVenv, base_interpreter, base_layer_paths
from .models.hardware import detect_hardware
from .paths import AppPaths

_KERNEL_STACK = ("ipykernel", "numpy", "pandas", "scipy", "sympy", "matplotlib", "seaborn", "sklearn", "PIL", "openpyxl")


def llama_report() -> list[tuple[str, str]]:
    try:
        import llama_cpp
    except ImportError as exc:
        return [("llama.cpp", f"not installed ({exc})")]
    hw = detect_hardware()
    system = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    return [
        ("llama-cpp-python", llama_cpp.__version__),
        ("GPU offload", f"yes ({', '.join(hw.offload_backends)})" if hw.can_offload
         else "no: this build runs on the CPU (see README for Metal/CUDA builds)"),
        ("memory", hw.describe()),
        ("llama.cpp system info", system),
    ]


def kernel_report(paths: AppPaths) -> list[tuple[str, str]]:
    venv = KernelVenv(paths.kernel_venv)
    rows = [("kernel interpreter", str(base_interpreter())),
            ("kernel base layer", os.pathsep.join(str(p) for p in base_layer_paths()))]
    state = venv.state()
    if state is None or not venv.python.exists():
        rows.append(("kernel venv", f"not created yet ({venv.root}); made on first use in about a second"))
        return rows
    rows.append(("kernel venv", str(venv.root)))
    probe = "import importlib, sys\nmissing=[m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]\nprint(','.join(missing))"
    done = subprocess.run([str(venv.python), "-c", probe, *_KERNEL_STACK], capture_output=True, text=True)
    missing = done.stdout.strip()
    rows.append(("kernel packages", f"missing: {missing}" if missing else "all present: " + ", ".join(_KERNEL_STACK)))
    return rows


def landlock_abi() -> int | None:
    """Landlock's ABI version, or None when the kernel lacks it (Linux only)."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    nr = 444  # landlock_create_ruleset on x86_64 and aarch64
    abi = libc.syscall(nr, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # LANDLOCK_CREATE_RULESET_VERSION
    return abi if abi > 0 else None


def sandbox_report() -> list[tuple[str, str]]:
    rows = [("secrets", "kernel starts with an allow-listed environment (no tokens, keys or credentials)")]
    if sys.platform == "linux":
        abi = landlock_abi()
        rows.append(("Landlock", f"available (ABI {abi}); not yet applied to the kernel" if abi
                     else "not available in this Linux kernel"))
        rows.append(("resource limits", "available (setrlimit); not yet applied to the kernel"))
    elif sys.platform == "darwin":
        rows.append(("sandbox-exec", "available; not yet applied" if os.path.exists("/usr/bin/sandbox-exec") else "not found"))
    elif os.name == "nt":
        rows.append(("job objects", "available; not yet applied"))
    return rows


def print_report() -> int:
    paths = AppPaths.default()
    sections = {
        "Machine": [("platform", platform.platform()), ("python", sys.version.split()[0]),
                    ("CPU cores", str(os.cpu_count())), ("data folder", str(paths.data))],
        "Model runtime": llama_report(),
        "Python kernel": kernel_report(paths),
        "Restriction layers": sandbox_report(),
    }
    for title, rows in sections.items():
        print(title)
        for key, value in rows:
            print(f"  {key:<22} {value}")
    return 0
