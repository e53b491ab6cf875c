"""llama.cpp's compute backends and devices, as ggml itself reports them.

A bundle's llama.cpp is built with every backend as a loadable module
(``GGML_BACKEND_DL``): the CPU backend in each instruction-set variant, and GPU backends
(Vulkan, CUDA, Metal) that load only where their driver is. ggml looks for the modules
beside the executable (here: the Python interpreter) and in the current folder, so the app
loads them from llama-cpp-python's own library folder, by path, before llama.cpp would
look anywhere else (``ggml_backend_load_all_from_path``, through ctypes: llama-cpp-python
does not wrap it). A build with the backends linked in (a developer's pip install) has
them registered already and loads nothing.

Devices and their memory come from ggml's device API, for every backend the build has,
instead of one vendor's tool. Plain Python, no Qt.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

# enum ggml_backend_dev_type
DEVICE_TYPES = {0: "CPU", 1: "GPU", 2: "IGPU", 3: "ACCEL", 4: "META"}
_MODULE_PREFIX = {"win32": ""}.get(sys.platform, "lib") + "ggml-"
_MODULE_SUFFIX = {"win32": ".dll", "darwin": ".so"}.get(sys.platform, ".so")
_CORE = {"base", "cpu"}  # ggml-base is not a backend; ggml-cpu is reported by variant


@dataclass(frozen=True)
class Device:
    """One device ggml can compute on, with its memory as ggml reports it."""

    name: str  # "Vulkan0", "CUDA0", "CPU"
    description: str  # "NVIDIA GeForce RTX 4070", "llvmpipe (LLVM 15.0.6, 256 bits)"
    kind: str  # CPU, GPU, IGPU, ACCEL
    backend: str  # the backend's name: "Vulkan", "CUDA", "Metal", "CPU"
    memory_free: int
    memory_total: int

    @property
    def is_gpu(self) -> bool:
        return self.kind in ("GPU", "IGPU")


@dataclass
class Backends:
    """What loaded, on which devices, and why a backend the build has did not."""

    folder: Path | None
    loaded_from_folder: bool  # False: the build has its backends linked in
    backends: list[str] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    cpu_variant: str | None = None  # "haswell", "x64", ... (None: not a variant build)
    not_loaded: dict[str, str] = field(default_factory=dict)  # backend module -> reason
    log: str = ""  # what ggml said while loading them

    @property
    def gpus(self) -> list[Device]:
        return [d for d in self.devices if d.is_gpu]

    def summary(self) -> str:
        parts = [", ".join(self.backends) or "none"]
        if self.cpu_variant:
            parts.append(f"CPU variant {self.cpu_variant}")
        return "; ".join(parts)


_lock = threading.Lock()
_loaded: Backends | None = None


def library_folder() -> Path | None:
    """Where llama-cpp-python loads libllama from (and where a bundle puts the modules)."""
    named = os.environ.get("LLAMA_CPP_LIB_PATH")
    if named:
        return Path(named)
    try:
        import llama_cpp
    except ImportError:
        return None
    return Path(llama_cpp.__file__).resolve().parent / "lib"


def _ggml(folder: Path) -> ctypes.CDLL:
    """libggml, the one libllama already loaded (same path, so the same handle)."""
    import llama_cpp  # noqa: F401  (loads libllama and, with it, libggml)

    name = {"win32": "ggml.dll", "darwin": "libggml.dylib"}.get(sys.platform, "libggml.so")
    lib = ctypes.CDLL(str(folder / name))
    c = ctypes
    for fn, res, args in (
        ("ggml_backend_reg_count", c.c_size_t, []),
        ("ggml_backend_reg_get", c.c_void_p, [c.c_size_t]),
        ("ggml_backend_reg_name", c.c_char_p, [c.c_void_p]),
        ("ggml_backend_dev_count", c.c_size_t, []),
        ("ggml_backend_dev_get", c.c_void_p, [c.c_size_t]),
        ("ggml_backend_dev_name", c.c_char_p, [c.c_void_p]),
        ("ggml_backend_dev_description", c.c_char_p, [c.c_void_p]),
        ("ggml_backend_dev_memory", None, [c.c_void_p, c.POINTER(c.c_size_t), c.POINTER(c.c_size_t)]),
        ("ggml_backend_dev_type", c.c_int, [c.c_void_p]),
        ("ggml_backend_dev_backend_reg", c.c_void_p, [c.c_void_p]),
        ("ggml_backend_load_all_from_path", None, [c.c_char_p]),
    ):
        f = getattr(lib, fn)
        f.restype, f.argtypes = res, args
    return lib


def load() -> Backends:
    """Loads the backend modules once per process (before any model) and reports them."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _load()
        return _loaded


def loaded() -> Backends | None:
    """What ``load`` found, without loading (None before): for a UI that must not wait."""
    return _loaded


def _load() -> Backends:
    folder = library_folder()
    if folder is None:
        return Backends(folder=None, loaded_from_folder=False,
                        not_loaded={"llama.cpp": "llama-cpp-python is not installed"})
    from . import llama_log

    lib = _ggml(folder)
    from_folder = lib.ggml_backend_reg_count() == 0
    with llama_log.watched() as said:  # "load_backend: loaded CPU backend from ..." is for doctor, not stderr
        if from_folder:
            lib.ggml_backend_load_all_from_path(os.fsencode(folder))
    found = Backends(folder=folder, loaded_from_folder=from_folder, log="".join(said))
    found.backends = [lib.ggml_backend_reg_name(lib.ggml_backend_reg_get(i)).decode(errors="replace")
                      for i in range(lib.ggml_backend_reg_count())]
    for i in range(lib.ggml_backend_dev_count()):
        dev = lib.ggml_backend_dev_get(i)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        found.devices.append(Device(
            name=lib.ggml_backend_dev_name(dev).decode(errors="replace"),
            description=(lib.ggml_backend_dev_description(dev) or b"").decode(errors="replace"),
            kind=DEVICE_TYPES.get(lib.ggml_backend_dev_type(dev), "?"),
            backend=lib.ggml_backend_reg_name(lib.ggml_backend_dev_backend_reg(dev)).decode(errors="replace"),
            memory_free=free.value, memory_total=total.value,
        ))
    if from_folder:
        found.cpu_variant = _loaded_cpu_variant()
        found.not_loaded = _why_not_loaded(folder, found)
    return found


def module_names(folder: Path) -> list[str]:
    """Backend modules in ``folder`` by backend: ``vulkan``, ``cuda``; CPU variants as
    ``cpu-haswell``."""
    names = []
    for path in sorted(folder.glob(f"{_MODULE_PREFIX}*{_MODULE_SUFFIX}")):
        stem = path.name[len(_MODULE_PREFIX): -len(_MODULE_SUFFIX)]
        if stem not in _CORE:
            names.append(stem)
    return names


def _loaded_cpu_variant() -> str | None:
    """The CPU variant ggml chose (it scores each against this CPU), read from the
    process's own mappings; None where that cannot be read (not Linux)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    marker = f"{_MODULE_PREFIX}cpu-"
    for line in maps.splitlines():
        name = line.rsplit("/", 1)[-1]
        if name.startswith(marker) and name.endswith(_MODULE_SUFFIX):
            return name[len(marker): -len(_MODULE_SUFFIX)]
    return None


def _why_not_loaded(folder: Path, found: Backends) -> dict[str, str]:
    """A reason, in words, for each GPU backend module the build has that gave no device."""
    have = {d.backend.lower() for d in found.devices}
    reasons = {}
    for stem in module_names(folder):
        if stem.startswith("cpu-") or stem in have:
            continue
        path = folder / f"{_MODULE_PREFIX}{stem}{_MODULE_SUFFIX}"
        try:
            ctypes.CDLL(str(path))  # already loaded when ggml took it: then this is free
        except OSError as exc:
            # "libvulkan.so.1: cannot open shared object file": no driver installed
            reasons[stem] = f"its driver is not installed ({_first_line(exc)})"
            continue
        if stem == "vulkan" and "ggml_vulkan: No devices found" in found.log:
            reasons[stem] = ("no Vulkan GPU found (a software renderer such as llvmpipe is skipped: "
                             "the CPU backend is faster)")
        elif stem in (b.lower() for b in found.backends):
            reasons[stem] = "loaded, but found no usable device"
        else:
            reasons[stem] = "did not load (no device or driver)"
    return reasons


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
