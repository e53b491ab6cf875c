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
                      tensor_count=291, n_layers=32, kv_bytes_per_token=32 * 8 * (128 + 128) * 2,
                      metadata={"llama.attention.head_count": 32})


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


def laptop_16gb():
    """A 16 GB laptop with the desktop and a browser open: about 11.5 GB free."""
    return Hardware(ram_total=16 * GB, ram_available=int(11.5 * GB))


def test_the_default_model_gets_32k_of_context_on_a_16gb_laptop():
    """Issue 15: f16 keys and values for 32,768 tokens take 4 GB, which with the 7.7 GB of
    weights does not fit; q8_0 (2.1 GB) does, so the plan takes it and says why."""
    assert choose_plan(MISTRAL_Q8, laptop_16gb(), 32768, kv_type="f16").n_ctx == 16384
    plan = choose_plan(MISTRAL_Q8, laptop_16gb(), 32768)
    assert (plan.n_ctx, plan.kv_type, plan.flash_attention, plan.fits) == (32768, "q8_0", True, True)
    assert plan.memory_needed <= 11.5 * GB
    assert any("kept as q8_0" in r and "32768 tokens" in r for r in plan.reasons)


def test_f16_stays_where_the_context_fits_with_it():
    plan = choose_plan(MISTRAL_Q8, cpu_only(), 8192)
    assert plan.kv_type == "f16" and not any("q8_0" in r for r in plan.reasons)


def test_without_flash_attention_the_scores_count_and_q8_0_is_not_offered():
    """llama.cpp keeps a q8_0 V cache only with flash attention; without it, every head's
    scores for a prompt step over the whole context (2 GB at 32k for 32 heads) count too."""
    off = choose_plan(MISTRAL_Q8, laptop_16gb(), 32768, flash_attention=False)
    on = choose_plan(MISTRAL_Q8, laptop_16gb(), 32768, kv_type="f16")
    assert off.kv_type == "f16" and off.n_ctx == on.n_ctx == 16384 and not off.flash_attention
    assert off.memory_needed - on.memory_needed == 32 * 512 * 16384 * 4
    forced = choose_plan(MISTRAL_Q8, laptop_16gb(), 32768, kv_type="q8_0", flash_attention=False)
    assert forced.flash_attention and any("flash attention turned on" in r for r in forced.reasons)


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


@pytest.mark.model
def test_a_real_load_keeps_keys_and_values_as_the_plan_chose(gguf_path):
    """Memory for 32k tokens as q8_0 but not as f16: llama.cpp is given q8_0 with flash
    attention, reports a KV cache of that size, and the model still answers."""
    from codeact_desktop.llm.base import GenerationParams
    from codeact_desktop.llm.llama_inprocess import LlamaCppBackend
    from codeact_desktop.models.hardware import COMPUTE_RESERVE, kv_bytes_per_token

    info = inspect_gguf(gguf_path)
    between = info.size + COMPUTE_RESERVE + (kv_bytes_per_token(info, "q8_0") + kv_bytes_per_token(info)) // 2 * 32768
    backend = LlamaCppBackend(gguf_path, n_ctx=32768, hardware=Hardware(ram_total=4 * GB, ram_available=between))
    try:
        assert (backend.plan.kv_type, backend.plan.flash_attention, backend.info.n_ctx) == ("q8_0", True, 32768)
        params = backend._llm.context_params
        assert (params.type_k, params.type_v) == (8, 8)  # GGML_TYPE_Q8_0
        reply = backend.generate([{"role": "user", "content": "Say hello."}],
                                 GenerationParams(max_tokens=8, temperature=0.0), lambda piece: None)
        assert reply.text.strip()
    finally:
        backend.close()
