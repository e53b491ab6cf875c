"""Where a generated token's time goes beyond llama.cpp's decode: the same GGUF and threads,
128 greedy tokens, three ways in one process: decoding alone (llama-bench's tg, the peer),
decoding with llama.cpp's sampler between tokens, and llama-cpp-python's streaming
``create_completion`` (the sampler, detokenising, stop strings), which the app's reply uses.

    python bench/generation_overhead.py [--model GGUF] [--threads 2] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import gguf_path, median, report  # noqa: E402

NEW_TOKENS = 128


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 2, 8))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from llama_cpp import Llama

    llm = Llama(str(args.model or gguf_path()), n_ctx=2048, n_threads=args.threads, n_gpu_layers=0,
                flash_attn=True, verbose=False)
    prompt = llm.tokenize(b"Write a very long story about a dragon who learns to count.")

    def decode_only() -> tuple[float, float]:
        llm.reset()
        llm.eval(prompt)
        started = time.perf_counter()
        for _ in range(NEW_TOKENS):
            llm.eval([prompt[-1]])
        return (time.perf_counter() - started) / NEW_TOKENS, 0.0

    def decode_and_sample() -> tuple[float, float]:
        llm.reset()
        llm.eval(prompt)
        sampler = llm._init_sampler(temp=0.0, repeat_penalty=1.0)  # what create_completion builds for greedy
        sampling = 0.0
        started = time.perf_counter()
        for _ in range(NEW_TOKENS):
            before = time.perf_counter()
            token = sampler.sample(llm._ctx, -1)
            sampling += time.perf_counter() - before
            llm.eval([token])
        return (time.perf_counter() - started) / NEW_TOKENS, sampling / NEW_TOKENS

    def completion() -> tuple[float, float]:
        llm.reset()
        first, count = None, 0
        for _chunk in llm.create_completion(prompt, max_tokens=NEW_TOKENS, temperature=0.0, stream=True):
            first = first or time.perf_counter()
            count += 1
        return (time.perf_counter() - first) / max(count - 1, 1), 0.0

    ways = {"decode only (the peer)": decode_only, "decode + sampler": decode_and_sample,
            "create_completion, streamed": completion}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    for _ in range(args.runs):  # alternating, so a machine that gets busier treats all alike
        for name, way in ways.items():
            times[name].append(way())
    peer = median([t for t, _ in times["decode only (the peer)"]])
    rows = []
    for name, runs in times.items():
        per_token = median([t for t, _ in runs])
        sampler = median([s for _, s in runs])
        rows.append([name, round(per_token * 1000, 2), round(sampler * 1000, 2) if sampler else "",
                     round(peer / per_token, 3)])
    report("generation_overhead", ["path", "ms a token", "of it the sampler, ms", "peer / path"], rows)


if __name__ == "__main__":
    main()
