"""What this machine can give a model, and how to load one so that it fits.

``detect_hardware`` reads the memory (psutil), and from ggml's own device list
(``llm.ggml_backends``) which GPU backends found a device and how much memory it has
free (Apple silicon shares the RAM with its GPU). ``choose_plan``
turns that and a GGUF's header into GPU layers and a context that fit, with the
reasons in words a user can read. Plain Python, no Qt.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from ..sizes import human_size
from .gguf_file import GGUFInfo

MIN_CTX = 2048
COMPUTE_RESERVE = 512 << 20  # llama.cpp's scratch buffers and the rest of the app
N_UBATCH = 512  # llama.cpp's default: the prompt tokens of one compute step


@dataclass(frozen=True)
class KVType:
    """How the KV cache stores keys and values: ggml's type number, bytes per value."""

    ggml_type: int
    bytes_per_value: float


# f16: 2 bytes; q8_0: blocks of 32 values in 34 bytes (a scale and 32 int8). llama.cpp
# stores quantised values only with flash attention. Measured in bench/kv_cache_types.py.
KV_TYPES = {"f16": KVType(1, 2.0), "q8_0": KVType(8, 34 / 32)}
# Metal may use about three quarters of the unified memory before macOS pushes back.
UNIFIED_GPU_SHARE = 0.75


@dataclass
class Hardware:
    """The memory and GPU devices this machine has now, as the load plan sees them."""

    ram_total: int
    ram_available: int
    offload_backends: list[str] = field(default_factory=list)  # empty: no GPU device found (the CPU is used)
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
            parts.append("no GPU in use: running on the CPU")
        elif self.unified_memory:
            parts.append(f"{'/'.join(self.offload_backends)} GPU sharing the RAM")
        elif self.vram_free is not None:
            parts.append(f"{self.gpu_name or '/'.join(self.offload_backends)}: {human_size(self.vram_free)} "
                         f"of {human_size(self.vram_total or 0)} GPU memory free")
        else:
            parts.append(f"{'/'.join(self.offload_backends)} GPU (its memory could not be read)")
        return " · ".join(parts)


def _gpu_devices() -> list:
    """ggml's GPU devices (Vulkan, CUDA, Metal...); none where llama.cpp cannot be loaded."""
    from ..native import ggml_backends

    try:
        return ggml_backends.load().gpus
    except (ImportError, OSError, AttributeError):
        return []


def _backends_of(gpus: list) -> list[str]:
    return list(dict.fromkeys(d.backend for d in gpus))


def llama_offload_backends() -> list[str]:
    """The GPU backends that found a device (ggml's own device list: Vulkan, CUDA, Metal...)."""
    return _backends_of(_gpu_devices())


def detect_hardware() -> Hardware:
    import psutil

    memory = psutil.virtual_memory()
    gpus = _gpu_devices()
    hw = Hardware(ram_total=memory.total, ram_available=memory.available,
                  offload_backends=_backends_of(gpus))
    if gpus:
        gpu = max(gpus, key=lambda d: d.memory_free)  # llama.cpp splits over all; plan for the largest
        hw.gpu_name = gpu.description or gpu.name
        hw.vram_total, hw.vram_free = gpu.memory_total or None, gpu.memory_free or None
    cap = os.environ.get("CODEACT_GPU_MEMORY")  # bytes: a budget below what the GPU has free
    if cap and hw.vram_free is not None:
        hw.vram_free = min(hw.vram_free, int(cap))
    if "Metal" in hw.offload_backends and sys.platform == "darwin":
        hw.unified_memory = True
        hw.vram_total = hw.vram_total or int(memory.total * UNIFIED_GPU_SHARE)
        hw.vram_free = min(hw.vram_free or hw.vram_total, memory.available)
    return hw


@dataclass
class LoadPlan:
    """How a model will be loaded (layers on the GPU, context, KV cache type), with the reasons shown to the user."""

    n_gpu_layers: int  # -1 all, 0 none
    n_ctx: int
    memory_needed: int
    fits: bool
    reasons: list[str] = field(default_factory=list)
    kv_type: str = "f16"  # a key of KV_TYPES
    flash_attention: bool = True

    @property
    def device(self) -> str:
        return "cpu" if self.n_gpu_layers == 0 else "gpu"


def kv_bytes_per_token(info: GGUFInfo, kv_type: str = "f16") -> int:
    """The KV cache's bytes per token of context (all layers, keys and values)."""
    return int(info.kv_bytes_per_token / 2 * KV_TYPES[kv_type].bytes_per_value)


def memory_needed(info: GGUFInfo, n_ctx: int, kv_type: str = "f16", flash_attention: bool = True) -> int:
    """Weights (about the file's size) + the KV cache for n_ctx tokens + scratch; without
    flash attention the scratch also holds one layer's attention scores, every head's
    score for every context token of a prompt step (2 GB for a 7B at 32k tokens)."""
    heads = int(info.metadata.get(f"{info.architecture}.attention.head_count") or 0)
    scores = 0 if flash_attention else heads * N_UBATCH * n_ctx * 4
    return info.size + kv_bytes_per_token(info, kv_type) * n_ctx + COMPUTE_RESERVE + scores


def choose_plan(info: GGUFInfo, hw: Hardware, wanted_ctx: int, wanted_gpu_layers: int = -1,
                kv_type: str = "auto", flash_attention: bool = True) -> LoadPlan:
    """GPU layers, a context and a KV cache type that fit this machine; wanted_gpu_layers >= 0
    and a kv_type other than "auto" are the user's overrides. "auto" keeps f16 when the
    context fits with it, and takes q8_0 (about half the memory; greedy output nearly the
    same in bench/kv_cache_types.py) when that lets more of the wanted context fit."""
    reasons: list[str] = []
    n_ctx = min(wanted_ctx, info.context_length or wanted_ctx)
    if n_ctx < wanted_ctx:
        reasons.append(f"context capped at the model's trained {info.context_length} tokens")
    if kv_type == "q8_0" and not flash_attention:
        flash_attention = True
        reasons.append("flash attention turned on: llama.cpp keeps a q8_0 KV cache only with it")
    target = n_ctx
    choices = [kv_type] if kv_type in KV_TYPES else (["f16", "q8_0"] if flash_attention else ["f16"])
    # The weights are memory-mapped from the file, so RAM bounds the whole model on the CPU.
    fitted = {t: _fitting_ctx(info, hw, target, t, flash_attention) for t in choices}
    kv_type = next((t for t in choices if fitted[t] == target), max(choices, key=lambda t: fitted[t]))
    n_ctx = fitted[kv_type]
    if kv_type != "f16" and len(choices) > 1:
        reasons.append(f"keys and values kept as {kv_type} (about half of f16's memory), so that {n_ctx} tokens "
                       f"of context fit in {human_size(hw.ram_available)} of free memory")
    if n_ctx < target:
        reasons.append(f"context lowered to {n_ctx} tokens to fit the {human_size(hw.ram_available)} of free memory")
    needed = memory_needed(info, n_ctx, kv_type, flash_attention)
    fits = needed <= hw.ram_available
    if not fits:
        reasons.append(f"the model needs about {human_size(needed)} of memory and {human_size(hw.ram_available)} "
                       "is free: it may be very slow or fail to load")
    layers = _gpu_layers(info, hw, n_ctx, wanted_gpu_layers, reasons, kv_bytes_per_token(info, kv_type))
    return LoadPlan(n_gpu_layers=layers, n_ctx=n_ctx, memory_needed=needed, fits=fits, reasons=reasons,
                    kv_type=kv_type, flash_attention=flash_attention)


def _fitting_ctx(info: GGUFInfo, hw: Hardware, n_ctx: int, kv_type: str, flash_attention: bool) -> int:
    while memory_needed(info, n_ctx, kv_type, flash_attention) > hw.ram_available and n_ctx > MIN_CTX:
        n_ctx = max(MIN_CTX, n_ctx // 2)
    return n_ctx


def _gpu_layers(info: GGUFInfo, hw: Hardware, n_ctx: int, wanted: int, reasons: list[str], kv_per_token: int) -> int:
    if wanted >= 0:
        if wanted and not hw.can_offload:
            reasons.append("GPU layers are set in Settings, but llama.cpp found no GPU: running on the CPU only")
            return 0
        reasons.append(f"GPU layers set in Settings: {wanted}")
        return wanted
    if not hw.can_offload:
        reasons.append("running on the CPU: llama.cpp found no GPU it can use (doctor says which backends loaded)")
        return 0
    if hw.vram_free is None:
        reasons.append(f"{'/'.join(hw.offload_backends)}: GPU memory could not be read, so all layers are tried "
                       "on the GPU (the CPU takes over if that fails)")
        return -1
    budget = hw.vram_free - COMPUTE_RESERVE
    if info.size + kv_per_token * n_ctx <= budget:
        return -1
    n_layers = max(info.n_layers, 1)
    per_layer = info.size / (n_layers + 1) + kv_per_token * n_ctx / n_layers  # +1: the output layer
    layers = int(budget // per_layer) if budget > 0 else 0
    if layers <= 0:
        reasons.append(f"running on the CPU: {human_size(max(hw.vram_free, 0))} of GPU memory is free, "
                       "too little for even one layer")
        return 0
    layers = min(layers, n_layers)
    reasons.append(f"{layers} of {n_layers} layers on the GPU ({human_size(hw.vram_free)} of GPU memory free); "
                   "the rest on the CPU")
    return layers
