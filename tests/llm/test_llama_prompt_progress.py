"""A long prompt read batch by batch: progress, Stop before the first token, and the same
reply as llama.cpp reading it in one go. Real llama.cpp, the real test GGUF, with small
batches so that a short prompt is several of them."""

import threading

import llama_cpp
import pytest

from codeact_desktop.llm.base import GenerationParams
from codeact_desktop.llm.llama_inprocess import LlamaCppBackend

pytestmark = pytest.mark.model

N_BATCH = 32


@pytest.fixture(scope="module")
def small_batches(gguf_path):
    backend = LlamaCppBackend(gguf_path, n_ctx=2048, n_batch=N_BATCH)
    yield backend
    backend.close()


def long_prompt(topic="the items"):
    table = " ".join(f"Item {i} weighs {i * 7 % 13} kg." for i in range(40))
    return [{"role": "user", "content": f"Here is a list of {topic}. {table}\nHow much does item 5 weigh?"}]


def forget_cache(backend):
    backend._worker.submit(backend._llm.reset).result()


def prompt_tokens_decoded(backend, run):
    """Prompt tokens llama.cpp itself counts as evaluated (its perf counters) during ``run``."""
    ctx = backend._llm._ctx.ctx
    backend._worker.submit(llama_cpp.llama_perf_context_reset, ctx).result()
    result = run()
    return result, backend._worker.submit(llama_cpp.llama_perf_context, ctx).result().n_p_eval


def test_a_long_prompt_reports_progress_and_is_evaluated_once(small_batches, monkeypatch):
    messages = long_prompt()
    params = GenerationParams(max_tokens=16)
    progress, threads = [], set()

    def on_progress(done, total):
        progress.append((done, total))
        threads.add(threading.current_thread())

    forget_cache(small_batches)
    chunked, decoded = prompt_tokens_decoded(
        small_batches, lambda: small_batches.generate(messages, params, lambda p: None, on_progress=on_progress))
    total = chunked.prompt_tokens
    assert total > 5 * N_BATCH and chunked.prompt_tokens_evaluated == total
    # from nothing to all of it, step by step, on the caller's thread
    assert progress[0] == (0, total) and progress[-1] == (total, total)
    dones = [done for done, _ in progress]
    assert dones == sorted(dones) and len(progress) >= total // N_BATCH
    assert all(t == total for _, t in progress) and threads == {threading.current_thread()}
    # create_completion found the prompt in the cache: llama.cpp evaluated it once, not twice
    assert decoded == total

    # the same prompt read by create_completion alone gives the same reply
    forget_cache(small_batches)
    with monkeypatch.context() as patch:
        patch.setattr(small_batches, "_read_prompt", lambda *args: True)  # the path before chunking
        unchunked, decoded_once = prompt_tokens_decoded(
            small_batches, lambda: small_batches.generate(messages, params, lambda p: None))
    assert decoded_once == total
    assert unchunked.text == chunked.text and unchunked.text.strip()


def test_a_prompt_already_in_the_cache_is_not_read_again(small_batches):
    messages = long_prompt("the boxes")
    params = GenerationParams(max_tokens=12)
    first = small_batches.generate(messages, params, lambda p: None)
    progress = []
    again = small_batches.generate(messages, params, lambda p: None, on_progress=lambda *p: progress.append(p))
    assert again.prompt_tokens_evaluated <= 1 and progress == []
    assert again.text == first.text and again.finish_reason == first.finish_reason


def test_stop_while_the_prompt_is_read_ends_before_the_first_token(small_batches):
    messages = long_prompt("the crates")
    cancel = threading.Event()
    pieces, progress = [], []

    def on_progress(done, total):
        progress.append(done)
        if done > 0:
            cancel.set()

    forget_cache(small_batches)
    result = small_batches.generate(messages, GenerationParams(max_tokens=16), pieces.append, cancel,
                                    on_progress=on_progress)
    assert result.finish_reason == "cancelled" and result.text == "" and pieces == []
    # the worker may have started one more batch before it saw the cancel
    assert 0 < result.prompt_tokens_evaluated <= 3 * N_BATCH < result.prompt_tokens
    assert progress[-1] < result.prompt_tokens

    # what was read stays cached: the next request reads only the rest, and answers as usual
    rest = small_batches.generate(messages, GenerationParams(max_tokens=16), lambda p: None)
    assert rest.prompt_tokens_evaluated == rest.prompt_tokens - result.prompt_tokens_evaluated
    forget_cache(small_batches)
    fresh = small_batches.generate(messages, GenerationParams(max_tokens=16), lambda p: None)
    assert rest.text == fresh.text and fresh.text.strip()
