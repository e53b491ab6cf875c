"""``codeact-desktop doctor``: what this machine offers the app."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

from .sizes import human_size
from .kernel.state import KernelListener, KernelState, KernelStatus
from .kernel.venv import KernelVenv, base_interpreter, base_layer_paths
from .models.hardware import detect_hardware
from .paths import AppPaths

_KERNEL_STACK = ("ipykernel", "numpy", "pandas", "scipy", "sympy", "matplotlib", "seaborn", "sklearn", "PIL",
                 "openpyxl")


def llama_report() -> list[tuple[str, str]]:
    try:
        import llama_cpp
    except ImportError as exc:
        return [("llama.cpp", f"not installed ({exc})")]
    from .native import ggml_backends

    found = ggml_backends.load()
    hw = detect_hardware()
    system = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    rows = [
        ("llama-cpp-python", llama_cpp.__version__),
        ("backends", f"{', '.join(found.backends) or 'none'} "
                     + ("(modules loaded from the bundle)" if found.loaded_from_folder
                        else "(linked into this build)")),
    ]
    if found.cpu_variant:
        rows.append(("CPU variant", f"{found.cpu_variant} (the best of the build's variants for this CPU)"))
    for device in found.devices:
        memory = (f", {human_size(device.memory_free)} of {human_size(device.memory_total)} free" if device.is_gpu
                  else "")
        rows.append(("device", f"{device.name}: {device.description} [{device.kind}]{memory}"))
    for module, reason in found.not_loaded.items():
        rows.append(("not used", f"{module}: {reason}"))
    rows += [
        ("GPU offload", f"yes ({', '.join(hw.offload_backends)}: {hw.gpu_name})" if hw.can_offload
         else "no: running on the CPU" + ("" if found.not_loaded else " (this build has no GPU backend)")),
        ("memory", hw.describe()),
        ("llama.cpp system info", system),
    ]
    return rows


def kernel_report(paths: AppPaths) -> list[tuple[str, str]]:
    venv = KernelVenv(paths.kernel_venv)
    rows = [("kernel interpreter", str(base_interpreter())),
            ("kernel base layer", os.pathsep.join(str(p) for p in base_layer_paths()))]
    state = venv.state()
    if state is None or not venv.python.exists():
        rows.append(("kernel venv", f"not created yet ({venv.root}); made on first use in about a second"))
        return rows
    rows.append(("kernel venv", str(venv.root)))
    probe = ("import importlib, sys\nmissing=[m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]\n"
             "print(','.join(missing))")
    done = subprocess.run([str(venv.python), "-c", probe, *_KERNEL_STACK], capture_output=True, text=True)
    missing = done.stdout.strip()
    rows.append(("kernel packages", f"missing: {missing}" if missing else "all present: " + ", ".join(_KERNEL_STACK)))
    return rows


def describe_state(state: KernelState) -> str:
    """One kernel state as doctor prints it."""
    words = str(state.status)
    if state.status == KernelStatus.READY and state.sandbox is not None:
        words += f" ({', '.join(state.sandbox.layers) or 'no restriction layer'})"
    return f"{words}: {state.detail}" if state.detail else words


def sandbox_report(paths: AppPaths, on_state: KernelListener | None = None) -> list[tuple[str, str]]:
    """Starts a real kernel in a throwaway folder and reports what its launcher applied;
    ``on_state`` hears the kernel's states as they come."""
    import tempfile
    from pathlib import Path

    from .engine import start_kernel

    rows = [("secrets", "kernel starts with an allow-listed environment (no tokens, keys or credentials)")]
    with tempfile.TemporaryDirectory(prefix="codeact-doctor-") as folder:
        try:
            kernel = start_kernel(paths, Path(folder), background=False, on_state=on_state)
        except Exception as exc:  # the report says so rather than failing
            return rows + [("kernel", f"could not start: {exc}")]
        report = kernel.sandbox
        kernel.shutdown()
    for layer in report.layers or ["none applied"]:
        rows.append(("layer", layer))
    if report.missing:
        rows.append(("approval", f"every action will need approval: code would run {report.why_not()}"))
    rows.append(("resource limits", report.limits))
    rows.append(("watchdog", "stops the kernel and all it started before the computer runs out of memory or "
                             "disk, or at a fork or thread bomb"))
    return rows


def _print_row(key: str, value: str) -> None:
    print(f"  {key:<22} {value}", flush=True)


def print_report() -> int:
    paths = AppPaths.default()
    # Each section is printed as soon as it is known: the kernel's states show while it starts.
    sections = {
        "Machine": lambda: [("platform", platform.platform()), ("python", sys.version.split()[0]),
                            ("CPU cores", str(os.cpu_count())), ("data folder", str(paths.data))],
        "Model runtime": llama_report,
        "Python kernel": lambda: kernel_report(paths),
        "Restriction layers": lambda: sandbox_report(
            paths, on_state=lambda state: _print_row("kernel state", describe_state(state))),
    }
    for title, rows in sections.items():
        print(title, flush=True)
        for key, value in rows():
            _print_row(key, value)
    return 0
