"""What llama.cpp says while it loads a model, read back: where the layers went.

The offload plan (``models.hardware.choose_plan``) says how many layers should go to the
GPU; llama.cpp's own log says how many did and which devices hold the weights
("offloaded 12/19 layers to GPU", "Vulkan0 model buffer size = 180.00 MiB"). The app
shows that, and the tests check that it is what was planned. The log callback stays
llama-cpp-python's own except while a load is being watched.
"""

from __future__ import annotations

import ctypes
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

_OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")
_BUFFER = re.compile(r"^\S+:\s+(\S+) model buffer size =\s+([\d.]+) MiB", re.M)
_ERROR_LEVEL = 3  # GGML_LOG_LEVEL_ERROR
_lock = threading.Lock()


@dataclass
class Placement:
    """Where llama.cpp put the model, from its log."""

    layers_on_gpu: int | None = None  # None: the log did not say (a build without GPU support)
    layers_total: int | None = None
    buffers: dict[str, float] = field(default_factory=dict)  # device or host buffer -> MiB
    gpu_devices: list[str] = field(default_factory=list)  # the buffers on a GPU (not CPU, CPU_REPACK, AMX)

    def describe(self) -> str:
        if not self.layers_total:
            return "all layers on the CPU"
        where = ", ".join(self.gpu_devices) or "the GPU"
        if self.layers_on_gpu == 0:
            return f"all {self.layers_total} layers on the CPU"
        if self.layers_on_gpu == self.layers_total:
            return f"all {self.layers_total} layers on {where}"
        return f"{self.layers_on_gpu} of {self.layers_total} layers on {where}, the rest on the CPU"


def placement_from(text: str, gpu_names: set[str]) -> Placement:
    """``gpu_names``: the GPU devices ggml reported (``ggml_backends``), to tell their buffers
    from the host's."""
    found = Placement()
    m = _OFFLOADED.search(text)
    if m:
        found.layers_on_gpu, found.layers_total = int(m.group(1)), int(m.group(2))
    for name, mib in _BUFFER.findall(text):
        found.buffers[name] = found.buffers.get(name, 0.0) + float(mib)
    found.gpu_devices = [name for name in found.buffers if name in gpu_names]
    return found


def errors_in(text: str, keep: int = 2) -> str:
    """The last lines of the log that say what failed ("failed to allocate Vulkan0 buffer")."""
    found = [line.strip() for line in text.splitlines()
             if re.search(r"error|failed|out of memory|cannot", line, re.IGNORECASE)]
    return "; ".join(dict.fromkeys(found[-keep:]))


@contextmanager
def watched():
    """Collects llama.cpp's log lines (from any thread) while the block runs; errors are
    still printed, as llama-cpp-python does when not verbose. Yields the list."""
    import llama_cpp
    import llama_cpp._logger as default

    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(level: int, text: bytes, user_data) -> None:
        piece = text.decode("utf-8", errors="replace")
        lines.append(piece)
        if level == _ERROR_LEVEL:
            default.llama_log_callback(level, text, user_data)

    with _lock:
        llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
        try:
            yield lines
        finally:
            llama_cpp.llama_log_set(default.llama_log_callback, ctypes.c_void_p(0))
