"""The "Copy diagnostic report": what someone helping a user needs to know about this
install, in plain text the user can read before sending.

Versions, the machine, the model backend, llama.cpp's compute backends, the kernel's
restrictions and state, the app's folders and the last lines of its log. Never what was
said: no conversation is read (the log holds none either, see app_log.py). Plain Python:
package versions come from their metadata, so PySide6 is named without being imported.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

from . import __version__, app_log
from .paths import AppPaths
from .sizes import human_size
from .visible_text import visible_name

# Distribution names; the first one installed of each group is reported (a bundle may
# carry PySide6's essentials alone).
PACKAGES = (("PySide6", "PySide6_Essentials"), ("llama_cpp_python",), ("jupyter_client",), ("ipykernel",),
            ("numpy",))


def diagnostic_report(paths: AppPaths, backend=None, kernel=None, log_lines: int = 200) -> str:
    """The report as text. ``backend`` (a ChatBackend) and ``kernel`` (a
    ConversationKernel) are the current conversation's, when there is one."""
    sections = [
        ("CodeAct Desktop", [("version", __version__)]),
        ("System", _system()),
        ("Packages", [(names[0], _version(*names)) for names in PACKAGES]),
        ("Model", _backend(backend)),
        ("llama.cpp backends", _ggml()),
        ("Python kernel", _kernel(kernel)),
        ("Folders", [("data", str(paths.data)), ("cache", str(paths.cache)), ("models", str(paths.models)),
                     ("logs", str(app_log.log_folder(paths)))]),
    ]
    lines = []
    for title, rows in sections:
        lines.append(f"== {title}")
        lines += [f"{key}: {visible_name(str(value))}" for key, value in rows]  # a server's model id, say
        lines.append("")
    tail = app_log.tail(paths, log_lines)
    lines.append(f"== Last {len(tail)} log lines ({app_log.log_file(paths)})")
    lines += tail or ["(no log yet)"]
    return "\n".join(lines) + "\n"


def _version(*distributions: str) -> str:
    for name in distributions:
        try:
            return metadata.version(name) + ("" if name == distributions[0] else f" ({name})")
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def _system() -> list[tuple[str, str]]:
    rows = [("Python", f"{platform.python_version()} ({sys.executable})"),
            ("OS", platform.platform()), ("machine", platform.machine()), ("CPUs", str(os.cpu_count()))]
    try:
        import psutil

        memory = psutil.virtual_memory()
        rows.append(("memory", f"{human_size(memory.total)} ({human_size(memory.available)} free)"))
    except Exception as exc:  # noqa: BLE001 - a report line, not a failure
        rows.append(("memory", f"unknown ({type(exc).__name__})"))
    return rows


def _backend(backend) -> list[tuple[str, str]]:
    if backend is None:
        return [("backend", "none loaded")]
    info = backend.info
    rows = [("kind", info.kind), ("model", info.model), ("context", f"{info.n_ctx} tokens"),
            ("chat format", info.chat_format),
            ("device", f"{info.device} {info.device_name}".strip())]
    if getattr(info, "model_file", ""):
        rows.append(("file", f"{info.model_file} ({human_size(info.model_bytes)})"))
    if getattr(info, "quantisation", ""):
        rows.append(("quantisation", info.quantisation))
    if info.kind == "llama.cpp":
        rows.append(("GPU layers", str(getattr(info, "gpu_layers", 0))))
    rows += [("note", note) for note in info.notes]
    return rows


def _ggml() -> list[tuple[str, str]]:
    from .native import ggml_backends

    found = ggml_backends.loaded()  # what this process loaded; loading them here could take seconds
    if found is None:
        return [("backends", "not loaded in this process (no model loaded yet)")]
    rows = [("backends", found.summary()),
            ("loaded from", str(found.folder) if found.loaded_from_folder else "linked into this build")]
    rows += [("device", f"{d.name}: {d.description} [{d.kind}]") for d in found.devices]
    rows += [("not used", f"{module}: {reason}") for module, reason in found.not_loaded.items()]
    return rows


def _kernel(kernel) -> list[tuple[str, str]]:
    if kernel is None:
        return [("kernel", "none for this view")]
    state = getattr(kernel, "state", None)
    if state is not None:
        rows = [("state", f"{state.status}" + (f" ({state.detail})" if state.detail else "")),
                ("restarts", str(state.restarts))]
    else:
        rows = [("state", "starting" if kernel.is_starting else "alive" if kernel.is_alive else "not running")]
    rows.append(("network", "on" if kernel.network else "off"))
    try:
        report = kernel.sandbox
    except Exception as exc:  # noqa: BLE001 - not started yet, or failed to
        return rows + [("restrictions", f"unknown ({type(exc).__name__})")]
    if report is None or not report.raw:
        return rows + [("restrictions", "not reported yet (the kernel is starting, or could not start)")]
    rows += [("layer", layer) for layer in report.layers]
    rows.append(("not isolated", ", ".join(report.missing) or "nothing"))
    if report.missing:
        rows.append(("why", report.why_not()))
    return rows
