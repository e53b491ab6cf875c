"""The KV state cache: its budgets, its files, and real llama.cpp states going out and back
in with the same greedy tokens after as before."""

from __future__ import annotations

import numpy as np
import pytest

from codeact_desktop.llm.prompt_cache import PromptCache, restore_sequence, save_sequence


def blob(n: int, fill: int = 1) -> bytearray:
    return bytearray([fill % 256]) * n


def test_longest_prefix_and_growing_conversations_replace_their_past():
    cache = PromptCache("m", ram_bytes=1000)
    cache.put([1, 2, 3], blob(10))
    cache.put([7, 8], blob(10))
    entry, n = cache.longest_prefix([1, 2, 3, 4, 5])
    assert n == 3 and list(entry.tokens) == [1, 2, 3]
    assert cache.longest_prefix([9])[1] == 0
    cache.put([1, 2, 3, 4], blob(12))  # the same conversation, further on
    assert len(cache) == 2 and cache.ram_used == 22


def test_memory_budget_spills_the_oldest_to_disk_and_disk_budget_drops_oldest(tmp_path):
    cache = PromptCache("m", ram_bytes=100, folder=tmp_path, disk_bytes=150)
    cache.put([1], blob(60, 1))
    cache.put([2], blob(60, 2))  # over 100: [1] goes to disk
    assert cache.ram_used == 60 and cache.disk_used == 60
    assert len(list(tmp_path.glob("*.kv"))) == 1
    cache.put([3], blob(60, 3))  # [2] to disk
    cache.put([4], blob(60, 4))  # [3] to disk; 180 > 150, so [1] (oldest) is deleted
    assert cache.disk_used == 120 and len(list(tmp_path.glob("*.kv"))) == 2
    assert cache.longest_prefix([1])[1] == 0
    entry, n = cache.longest_prefix([2, 5])
    assert n == 1 and entry.data is None and cache.state(entry) == blob(60, 2)


def test_files_survive_a_restart_for_the_same_model_only(tmp_path):
    first = PromptCache("model-a", ram_bytes=1000, folder=tmp_path, disk_bytes=1000)
    first.put([5, 6, 7], blob(40, 9))
    first.persist()
    again = PromptCache("model-a", ram_bytes=1000, folder=tmp_path, disk_bytes=1000)
    entry, n = again.longest_prefix([5, 6, 7, 8])
    assert n == 3 and again.state(entry) == blob(40, 9)
    other = PromptCache("model-b", ram_bytes=1000, folder=tmp_path, disk_bytes=1000)
    assert other.longest_prefix([5, 6, 7, 8])[1] == 0
    assert list(tmp_path.glob("*.kv"))  # kept: the user may load model-a again


def test_a_damaged_or_foreign_file_is_never_handed_to_llama_cpp(tmp_path):
    cache = PromptCache("m", ram_bytes=1000, folder=tmp_path, disk_bytes=1000)
    cache.put([1, 2], blob(64, 3))
    cache.persist()
    (path,) = tmp_path.glob("*.kv")
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF  # one bit of the state flipped
    path.write_bytes(raw)
    (tmp_path / "junk.kv").write_bytes(b"not a state at all")
    again = PromptCache("m", ram_bytes=1000, folder=tmp_path, disk_bytes=1000)
    assert not (tmp_path / "junk.kv").exists()
    entry, n = again.longest_prefix([1, 2])
    assert n == 2 and again.state(entry) is None  # the checksum fails: forgotten
    assert again.longest_prefix([1, 2])[1] == 0 and not path.exists()


@pytest.mark.model
def test_a_state_saved_and_restored_gives_the_same_greedy_tokens(gguf_path):
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(gguf_path), n_ctx=1024, n_batch=256, verbose=False)
    try:
        text = b"Alice has three apples and Bob has five pears. " * 12
        first = llm.tokenize(text)
        other = llm.tokenize(b"An entirely different conversation about the weather in Oslo. " * 10)

        def greedy(n=24):
            out = []
            for _ in range(n):
                token = llm.sample(temp=0.0)
                out.append(token)
                llm.eval([token])
            return out

        llm.reset()
        llm.eval(first)
        expected = greedy()

        llm.reset()
        llm.eval(first)
        saved = save_sequence(llm)
        assert len(saved) > 0
        llm.reset()
        llm.eval(other)  # the context now holds another conversation
        assert restore_sequence(llm, np.asarray(first[:-1], dtype=np.int32), _without_last(llm, saved, first))
        llm.eval(first[-1:])  # the last token again, for its logits
        assert greedy() == expected
    finally:
        llm.close()


def _without_last(llm, saved, tokens):
    """A state whose last cell is dropped, as the backend keeps it (so one token is read
    again and gives the logits the state does not hold)."""
    restore_sequence(llm, np.asarray(tokens, dtype=np.int32), saved)
    llm._ctx.kv_cache_seq_rm(0, len(tokens) - 1, -1)
    llm.n_tokens = len(tokens) - 1
    return save_sequence(llm)


def _long_conversation(backend, topic: str, tokens: int = 700) -> list[dict]:
    rows = []
    while True:
        rows.append(f"{topic} {len(rows)} costs {len(rows) * 7 % 31} euros.")
        msgs = [{"role": "user", "content": " ".join(rows) + f"\nWhich {topic} is the cheapest?"}]
        if backend.count_tokens(msgs) >= tokens:
            return msgs


@pytest.mark.model
def test_going_back_to_a_conversation_restores_it_and_answers_the_same(gguf_path, tmp_path):
    from codeact_desktop.llm.base import GenerationParams
    from codeact_desktop.llm.llama_inprocess import LlamaCppBackend

    params = GenerationParams(max_tokens=12, temperature=0.0)
    cached = LlamaCppBackend(gguf_path, n_ctx=2048, kv_cache_ram=256 << 20, kv_cache_folder=tmp_path,
                             kv_cache_disk=256 << 20)
    plain = LlamaCppBackend(gguf_path, n_ctx=2048)
    try:
        a, b = _long_conversation(cached, "apple"), _long_conversation(cached, "pear")
        cached.generate(a, params, lambda piece: None)
        cached.generate(b, params, lambda piece: None)  # another conversation in between
        back = cached.generate(a, params, lambda piece: None)
        assert back.prompt_tokens_evaluated < 20, back  # restored, not read again
        fresh = plain.generate(a, params, lambda piece: None)
        assert fresh.prompt_tokens_evaluated > 600  # the peer reads it all
        assert back.text == fresh.text  # greedy: token for token the same
    finally:
        cached.close()
        plain.close()
    assert list(tmp_path.glob("*.kv"))  # kept for the next start
    again = LlamaCppBackend(gguf_path, n_ctx=2048, kv_cache_ram=256 << 20, kv_cache_folder=tmp_path,
                            kv_cache_disk=256 << 20)
    try:
        after_restart = again.generate(a, params, lambda piece: None)
        assert after_restart.prompt_tokens_evaluated < 20 and after_restart.text == fresh.text
    finally:
        again.close()


def test_a_deleted_conversations_states_go_and_the_others_stay(tmp_path):
    cache = PromptCache("m", ram_bytes=100, folder=tmp_path, disk_bytes=1000)
    system = [1, 2, 3]
    cache.put(system + [10, 11, 12, 13], blob(60))  # conversation A, spilled to disk next
    cache.put(system + [20, 21, 22], blob(60))  # conversation B
    cache.put(system + [10, 11, 12, 13, 14, 15], blob(60))  # A, further on
    assert len(cache) == 3 and len(list(tmp_path.glob("*.kv"))) == 2
    assert cache.forget(system + [10, 11], shared=len(system)) == 2
    assert cache.longest_prefix(system + [10, 11])[1] == len(system)  # only B's system prompt matches
    assert cache.longest_prefix(system + [20, 21, 22])[1] == 6
    assert len(list(tmp_path.glob("*.kv"))) == 1  # B's file; A's is gone from the disk
