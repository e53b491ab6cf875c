"""Real llama.cpp loading the real test GGUF (Gemma 3 270M, from PyPI)."""

import threading

import pytest

from codeact_desktop.llm.base import BackendError, GenerationParams
from codeact_desktop.llm.llama_inprocess import LlamaCppBackend
from codeact_desktop.models.hardware import Hardware
from codeact_desktop.resources import prompt_text

pytestmark = pytest.mark.model


def one_shot(question="What is 12 times 11?"):
    """A worked example makes even a 270M model answer in CodeAct's format."""
    return [
        {"role": "system", "content": prompt_text("system.txt")},
        {"role": "user", "content": "What is 6 times 7?"},
        {"role": "assistant", "content": "<execute>\nprint(6*7)\n</execute>"},
        {"role": "user", "content": "Execution Output:\n42\n"},
        {"role": "assistant", "content": "6 times 7 is 42."},
        {"role": "user", "content": question},
    ]


def test_loads_on_cpu_with_the_files_own_chat_format(llama_backend):
    info = llama_backend.info
    assert info.kind == "llama.cpp" and info.n_ctx == 4096 and info.device == "cpu"
    assert info.chat_format == "llama.cpp:gemma"  # the file has no template: llama.cpp's own


def test_streams_pieces_and_stops_at_end_of_action(llama_backend):
    pieces = []
    result = llama_backend.generate(one_shot(), GenerationParams(max_tokens=48), pieces.append)
    assert len(pieces) > 3 and "".join(pieces) == result.text
    assert result.finish_reason == "stop"
    assert result.text.strip().startswith("<execute>") and "</execute>" not in result.text
    assert "12" in result.text and "11" in result.text
    assert result.completion_tokens >= len(pieces) - 1 and result.tokens_per_second > 0


def test_cancel_takes_effect_within_one_token(llama_backend):
    cancel = threading.Event()
    pieces = []

    def on_piece(piece):
        pieces.append(piece)
        cancel.set()

    messages = [{"role": "user", "content": "Write a long story about a lighthouse."}]
    result = llama_backend.generate(messages, GenerationParams(max_tokens=200, stop=()), on_piece, cancel)
    assert result.finish_reason == "cancelled"
    # the worker may already be one token ahead of the consumer when cancel is set
    assert len(pieces) <= 2 and result.completion_tokens <= 3


def test_a_new_turn_evaluates_only_the_new_tokens(llama_backend):
    messages = one_shot()
    first = llama_backend.generate(messages, GenerationParams(max_tokens=32), lambda p: None)
    messages += [{"role": "assistant", "content": first.text + "</execute>"},
                 {"role": "user", "content": "Execution Output:\n132\n"}]
    second = llama_backend.generate(messages, GenerationParams(max_tokens=16), lambda p: None)
    assert second.prompt_tokens > first.prompt_tokens
    # only the tokens after the shared prefix are evaluated again
    assert second.prompt_tokens_evaluated < (second.prompt_tokens - first.prompt_tokens) + 12


def test_prompt_longer_than_the_context_is_refused_clearly(llama_backend):
    messages = [{"role": "user", "content": "hello " * 5000}]
    with pytest.raises(BackendError, match="context holds 4096"):
        llama_backend.generate(messages, GenerationParams(max_tokens=8), lambda p: None)
    # still usable afterwards
    assert llama_backend.count_tokens([{"role": "user", "content": "hi"}]) > 0


def _first_bytes(gguf_path, n):
    with open(gguf_path, "rb") as fh:
        return fh.read(n)


@pytest.mark.parametrize("name, content, message", [
    ("missing.gguf", None, "No model file"),
    ("empty.gguf", lambda g: b"", "empty"),
    ("notes.gguf", lambda g: b"hello, not a model", "not a GGUF"),
    ("cut.gguf", lambda g: _first_bytes(g, 50_000_000), "truncated"),
    ("head.gguf", lambda g: _first_bytes(g, 1000), "truncated"),
])
def test_bad_model_files_give_a_clear_message(tmp_path, gguf_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content(gguf_path))
    with pytest.raises(BackendError, match=message):
        LlamaCppBackend(path)


def test_context_is_capped_by_the_trained_context(gguf_path, tmp_path):
    backend = LlamaCppBackend(gguf_path, n_ctx=40_000)
    try:
        assert backend.info.n_ctx == 32768
        assert any("trained 32768" in note for note in backend.info.notes)
    finally:
        backend.close()


def test_gpu_load_failure_falls_back_to_cpu_with_the_reason(gguf_path, monkeypatch):
    real_load = LlamaCppBackend._load

    def load(self, n_ctx, n_gpu_layers, seed):
        if n_gpu_layers != 0:
            raise ValueError("simulated: out of device memory")
        return real_load(self, n_ctx, n_gpu_layers, seed)

    monkeypatch.setattr(LlamaCppBackend, "_load", load)
    cuda = Hardware(ram_total=16 << 30, ram_available=8 << 30, offload_backends=["CUDA"],
                    vram_total=8 << 30, vram_free=8 << 30)
    backend = LlamaCppBackend(gguf_path, n_ctx=1024, n_gpu_layers=None, hardware=cuda)
    try:
        assert backend.info.device == "cpu"
        assert any("GPU offload failed" in n and "out of device memory" in n for n in backend.info.notes)
    finally:
        backend.close()


def test_path_with_spaces_and_accents(gguf_path, tmp_path):
    folder = tmp_path / "mes modèles ü"
    folder.mkdir()
    target = folder / "petit modèle.gguf"
    target.symlink_to(gguf_path)
    backend = LlamaCppBackend(target, n_ctx=512)
    backend.close()
