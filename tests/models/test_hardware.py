"""Choosing GPU layers and a context that fit: the offload and no-offload cases, the
user's override, too little memory; and a real load that follows the plan."""

from pathlib import Path

import pytest

from codeact_desktop.models.gguf_file import GGUFInfo, inspect_gguf
from codeact_desktop.models.hardware import Hardware, choose_plan, detect_hardware, llama_offload_backends

GB = 1 << 30
# CodeActAgent-Mistral-7b q8_0 as its header describes it: 32 layers, 8 KV heads of 128.
MISTRAL_Q8 = GGUFInfo(path=Path("CodeActAgent-Mistral-7b-v0.1.q8_0.gguf"), size=7_695_857_984, version=3,
                      architecture="llama", name="CodeActAgent", context_length=32768, chat_template=None,
                      tensor_count=291, n_layers=32, kv_bytes_per_token=32 * 8 * (128 + 128) * 2)


def cpu_only(ram_free=20 * GB):
    return Hardware(ram_total=24 * GB, ram_available=ram_free)


def cuda(vram_free):
    return Hardware(ram_total=32 * GB, ram_available=28 * GB, offload_backends=["CUDA"], gpu_name="RTX",
                    vram_total=vram_free, vram_free=vram_free)


def test_cpu_only_build_runs_on_the_cpu_and_says_why():
    plan = choose_plan(MISTRAL_Q8, cpu_only(), 8192)
    assert plan.n_gpu_layers == 0 and plan.device == "cpu" and plan.n_ctx == 8192 and plan.fits
    assert any("found no GPU" in r for r in plan.reasons)


def test_a_gpu_with_room_takes_every_layer():
    plan = choose_plan(MISTRAL_Q8, cuda(24 * GB), 8192)
    assert plan.n_gpu_layers == -1 and plan.reasons == []


def test_a_small_gpu_takes_the_layers_that_fit():
    plan = choose_plan(MISTRAL_Q8, cuda(4 * GB), 8192)
    assert 0 < plan.n_gpu_layers < 32
    per_layer = MISTRAL_Q8.size / 33 + MISTRAL_Q8.kv_bytes_per_token * 8192 / 32
    assert plan.n_gpu_layers * per_layer <= 4 * GB
    assert any(f"{plan.n_gpu_layers} of 32 layers on the GPU" in r for r in plan.reasons)


def test_a_full_gpu_falls_back_to_the_cpu():
    plan = choose_plan(MISTRAL_Q8, cuda(300 << 20), 8192)
    assert plan.n_gpu_layers == 0 and any("too little for even one layer" in r for r in plan.reasons)


def test_unreadable_gpu_memory_tries_all_layers():
    hw = Hardware(ram_total=16 * GB, ram_available=12 * GB, offload_backends=["VULKAN"])
    plan = choose_plan(MISTRAL_Q8, hw, 8192)
    assert plan.n_gpu_layers == -1 and any("could not be read" in r for r in plan.reasons)


def test_the_users_setting_wins_where_it_can():
    assert choose_plan(MISTRAL_Q8, cuda(24 * GB), 8192, wanted_gpu_layers=10).n_gpu_layers == 10
    assert choose_plan(MISTRAL_Q8, cuda(24 * GB), 8192, wanted_gpu_layers=0).n_gpu_layers == 0
    plan = choose_plan(MISTRAL_Q8, cpu_only(), 8192, wanted_gpu_layers=10)
    assert plan.n_gpu_layers == 0 and any("found no GPU" in r for r in plan.reasons)


def test_context_is_capped_by_training_and_lowered_to_fit_memory():
    assert choose_plan(MISTRAL_Q8, cpu_only(), 65536).n_ctx == 32768
    plan = choose_plan(MISTRAL_Q8, cpu_only(ram_free=9 * GB), 32768)
    assert 2048 <= plan.n_ctx < 32768 and plan.fits
    assert any(f"context lowered to {plan.n_ctx}" in r for r in plan.reasons)
    starved = choose_plan(MISTRAL_Q8, cpu_only(ram_free=4 * GB), 8192)
    assert not starved.fits and starved.n_ctx == 2048 and any("may be very slow" in r for r in starved.reasons)


def test_detects_this_machine():
    import llama_cpp

    hw = detect_hardware()
    assert hw.ram_total > hw.ram_available > 0
    assert hw.can_offload == bool(llama_cpp.llama_supports_gpu_offload())
    assert hw.offload_backends == llama_offload_backends() and "RAM" in hw.describe()


@pytest.mark.model
def test_a_real_load_follows_the_plan(gguf_path):
    from codeact_desktop.llm.llama_inprocess import LlamaCppBackend

    info = inspect_gguf(gguf_path)
    tight = Hardware(ram_total=1 * GB, ram_available=info.size + (600 << 20))
    backend = LlamaCppBackend(gguf_path, n_ctx=32768, hardware=tight)
    try:
        assert backend.info.n_ctx == backend.plan.n_ctx < 32768 and backend.info.device == "cpu"
        assert any("context lowered" in n for n in backend.info.notes)
    finally:
        backend.close()
