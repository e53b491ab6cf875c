"""Going back to a long conversation: time to the first token of the next reply after
another conversation used the model in between, with the KV state cache (the app) and
without it (the peer: today's re-evaluation of the whole conversation), against continuing
the same conversation with no switch at all.

Goal (issue 15): switching back ≤ 1.2× continuing. Also after a restart of the app (a new
backend, the state read back from its file), and the greedy replies compared token for
token with and without a restore.

    python bench/conversation_switch.py [--model GGUF] [--tokens 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import gguf_path, median, report  # noqa: E402

from codeact_desktop.llm.base import GenerationParams  # noqa: E402
from codeact_desktop.llm.llama_inprocess import LlamaCppBackend  # noqa: E402

PARAMS = GenerationParams(max_tokens=16, temperature=0.0)


def conversation(backend, topic: str, tokens: int) -> list[dict]:
    """A conversation of about ``tokens`` tokens: the user's table and two exchanges."""
    rows, msgs = [], []
    while True:
        rows.append(f"{topic} {len(rows)} costs {len(rows) * 7 % 31} euros.")
        msgs = [{"role": "user", "content": " ".join(rows) + f"\nWhich {topic} is the cheapest?"},
                {"role": "assistant", "content": f"The cheapest {topic} is number 0."}]
        if backend.count_tokens(msgs) >= tokens:
            return msgs


def first_token(backend, msgs) -> tuple[float, str]:
    started = time.monotonic()
    firsts = []
    result = backend.generate(msgs, PARAMS, lambda piece: firsts.append(time.monotonic()))
    return (firsts[0] if firsts else time.monotonic()) - started, result.text


def one_round(backend, a, b, run: int) -> dict:
    ask = {"role": "user", "content": f"And the most expensive one? ({run})"}
    backend.generate(a, PARAMS, lambda p: None)  # A read once
    same, _ = first_token(backend, [*a, ask])  # continuing A, no switch
    backend.generate(a, PARAMS, lambda p: None)
    backend.generate(b, PARAMS, lambda p: None)  # another conversation in between
    back, text = first_token(backend, [*a, ask])
    return {"continue": same, "switch_back": back, "text": text}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    model = args.model or gguf_path()
    folder = Path(tempfile.mkdtemp(prefix="kv-bench-"))
    with_cache = LlamaCppBackend(model, n_ctx=4096, kv_cache_ram=1 << 30, kv_cache_folder=folder,
                                 kv_cache_disk=2 << 30)
    without = LlamaCppBackend(model, n_ctx=4096, kv_cache_ram=0)
    a, b = conversation(with_cache, "apple", args.tokens), conversation(with_cache, "pear", args.tokens)
    ours, peer = [], []
    for run in range(args.runs):
        ours.append(one_round(with_cache, a, b, run))
        peer.append(one_round(without, a, b, run))
    same_text = all(o["text"] == p["text"] for o, p in zip(ours, peer))
    # After a restart: the state comes back from its file.
    with_cache.close()
    restarted = LlamaCppBackend(model, n_ctx=4096, kv_cache_ram=1 << 30, kv_cache_folder=folder,
                                kv_cache_disk=2 << 30)
    ask = {"role": "user", "content": "And the most expensive one? (0)"}
    after_restart, restart_text = first_token(restarted, [*a, ask])
    cold = LlamaCppBackend(model, n_ctx=4096, kv_cache_ram=0)
    cold_first, _ = first_token(cold, [*a, ask])
    cont = median([o["continue"] for o in ours])
    rows = [
        ["continue the conversation (no switch)", cont, 1.0],
        ["switch back, with the KV state cache", median([o["switch_back"] for o in ours]),
         median([o["switch_back"] for o in ours]) / cont],
        ["switch back, re-evaluated (peer)", median([p["switch_back"] for p in peer]),
         median([p["switch_back"] for p in peer]) / cont],
        ["after an app restart, state from disk", after_restart, after_restart / cont],
        ["after an app restart, re-evaluated (peer)", cold_first, cold_first / cont],
    ]
    report("conversation_switch", ["", "first token (s)", "× continuing"], rows,
           {"model": model.name, "conversation_tokens": args.tokens, "runs": args.runs,
            "same_greedy_text_with_and_without_restore": same_text and restart_text == ours[0]["text"]})
    print(f"\ngreedy replies identical with and without a restore: {same_text and restart_text == ours[0]['text']}")


if __name__ == "__main__":
    main()
