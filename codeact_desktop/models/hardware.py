"""What this machine can give a model, and how to load one so that it fits.

``detect_hardware`` reads the memory (psutil), whether the installed llama.cpp build
can offload and with which backend, and the GPU's memory where it can be read
(``nvidia-smi`` for CUDA; Apple silicon shares the RAM with its GPU). ``choose_plan``
turns that and a GGUF's header into GPU layers and a context that fit, with the
reasons in words a user can read. Plain Python, no Qt.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from ..agent.attachments import human_size
from .gguf_file import GGUFInfo

GPU_BACKENDS = ("CUDA", "METAL", "VULKAN", "HIP", "SYCL")
MIN_CTX = 2048
COMPUTE_RESERVE = 512 << 20  # llama.cpp's scratch buffers and the rest of the app
# Metal may use about three quarters of the unified memory before macOS pushes back.
UNIFIED_GPU_SHARE = 0.75


@dataclass
class Hardware:
    ram_total: int
    ram_available: int
    offload_backends: list[str] = field(default_factory=list)  # empty: this build runs on the CPU only
    gpu_name: str = ""
    vram_total: int | None = None  # None: could not be read
    vram_free: int | None = None
    unified_memory: bool = False  # Apple silicon: the GPU uses the RAM

    @property
    def can_offload(self) -> bool:
        return bool(self.offload_backends)

    def describe(self) -> str:
        parts = [f"{human_size(self.ram_total)} RAM ({human_size(self.ram_available)} free)"]
        if not self.can_offload:
            parts.append("llama.cpp build: CPU only")
        elif self.unified_memory:
            parts.append(f"{'/'.join(self.offload_backends)} GPU sharing the RAM")
        elif self.vram_free is not None:
            parts.append(f"{self.gpu_name or '/'.join(self.offload_backends)}: {human_size(self.vram_free)} "
                         f"of {human_size(self.vram_total or 0)} GPU memory free")
        else:
            parts.append(f"{'/'.join(self.offload_backends)} GPU (its memory could not be read)")
        return " · ".join(parts)


def llama_offload_backends() -> list[str]:
    try:
        import llama_cpp
    except ImportError:
        return []
    if not llama_cpp.llama_supports_gpu_offload():
        return []
    info = llama_cpp.llama_print_system_info().decode(errors="replace").upper()
    return [b for b in GPU_BACKENDS if b in info] or ["GPU"]


def _nvidia_memory() -> tuple[str, int, int] | None:
    """(name, total, free) of the first NVIDIA GPU, or None."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5).stdout
        name, total, free = (x.strip() for x in out.splitlines()[0].split(","))
        return name, int(total) << 20, int(free) << 20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def detect_hardware() -> Hardware:
    import psutil

    memory = psutil.virtual_memory()
    hw = Hardware(ram_total=memory.total, ram_available=memory.available, offload_backends=llama_offload_backends())
    if "METAL" in hw.offload_backends and sys.platform == "darwin":
        hw.unified_memory = True
        hw.vram_total = int(memory.total * UNIFIED_GPU_SHARE)
        hw.vram_free = min(hw.vram_total, memory.available)
    elif "CUDA" in hw.offload_backends:
        found = _nvidia_memory()
        if found:
            hw.gpu_name, hw.vram_total, hw.vram_free = found
    return hw


@dataclass
class LoadPlan:
    n_gpu_layers: int  # -1 all, 0 none
    n_ctx: int
    memory_needed: int
    fits: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def device(self) -> str:
        return "cpu" if self.n_gpu_layers == 0 else "gpu"


def memory_needed(info: GGUFInfo, n_ctx: int) -> int:
    """Weights (about the file's size) + the KV cache for n_ctx tokens + scratch."""
    return info.size + info.kv_bytes_per_token * n_ctx + COMPUTE_RESERVE


def choose_plan(info: GGUFInfo, hw: Hardware, wanted_ctx: int, wanted_gpu_layers: int = -1) -> LoadPlan:
    """GPU layers and a context that fit this machine; wanted_gpu_layers >= 0 is the user's override."""
    reasons: list[str] = []
    n_ctx = min(wanted_ctx, info.context_length or wanted_ctx)
    if n_ctx < wanted_ctx:
        reasons.append(f"context capped at the model's trained {info.context_length} tokens")
    # The weights are memory-mapped from the file, so RAM bounds the whole model on the CPU.
    while memory_needed(info, n_ctx) > hw.ram_available and n_ctx > MIN_CTX:
        n_ctx = max(MIN_CTX, n_ctx // 2)
    if n_ctx < min(wanted_ctx, info.context_length or wanted_ctx):
        reasons.append(f"context lowered to {n_ctx} tokens to fit the {human_size(hw.ram_available)} of free memory")
    needed = memory_needed(info, n_ctx)
    fits = needed <= hw.ram_available
    if not fits:
        reasons.append(f"the model needs about {human_size(needed)} of memory and {human_size(hw.ram_available)} "
                       "is free: it may be very slow or fail to load")
    layers = _gpu_layers(info, hw, n_ctx, wanted_gpu_layers, reasons)
    return LoadPlan(n_gpu_layers=layers, n_ctx=n_ctx, memory_needed=needed, fits=fits, reasons=reasons)


def _gpu_layers(info: GGUFInfo, hw: Hardware, n_ctx: int, wanted: int, reasons: list[str]) -> int:
    if wanted >= 0:
        if wanted and not hw.can_offload:
            reasons.append("GPU layers are set in Settings, but this llama.cpp build runs on the CPU only")
            return 0
        reasons.append(f"GPU layers set in Settings: {wanted}")
        return wanted
    if not hw.can_offload:
        reasons.append("running on the CPU: this llama.cpp build has no GPU backend (see the README for Metal/CUDA)")
        return 0
    if hw.vram_free is None:
        reasons.append(f"{'/'.join(hw.offload_backends)}: GPU memory could not be read, so all layers are tried "
                       "on the GPU (the CPU takes over if that fails)")
        return -1
    budget = hw.vram_free - COMPUTE_RESERVE
    if info.size + info.kv_bytes_per_token * n_ctx <= budget:
        return -1
    n_layers = max(info.n_layers, 1)
    per_layer = info.size / (n_layers + 1) + info.kv_bytes_per_token * n_ctx / n_layers  # +1: the output layer
    layers = int(budget // per_layer) if budget > 0 else 0
    if layers <= 0:
        reasons.append(f"running on the CPU: {human_size(max(hw.vram_free, 0))} of GPU memory is free, "
                       "too little for even one layer")
        return 0
    layers = min(layers, n_layers)
    reasons.append(f"{layers} of {n_layers} layers on the GPU ({human_size(hw.vram_free)} of GPU memory free); "
                   "the rest on the CPU")
    return layers
