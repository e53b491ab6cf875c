"""The app's in-process llama.cpp path against llama.cpp's own ``llama-bench``: prompt
processing of 512 tokens (pp512) and generation of 128 (tg128), on the same GGUF, the same
threads and the same build of the same source (the llama.cpp that the pinned
llama-cpp-python vendors, built by ``packaging/llama_libs.py`` as the bundle builds it; the
app's path loads those very libraries through ``LLAMA_CPP_LIB_PATH``).

"The app's path" is ``LlamaCppBackend.generate``, as a reply is written: the chat template,
tokenising, the prefix cache, streaming with stop strings, the worker thread and the queue.
Generation is timed from the first piece to the last, the prompt from the call to the first
piece less one generated token. Runs alternate between the two, so a machine that gets
busier or cooler treats both alike.

Also the ceiling: every generated token reads the weights once (and Gemma's tied embedding
table for the logits), so tokens/s cannot pass memory bandwidth ÷ weight bytes. Bandwidth
is measured here, with numpy reading a 1 GiB array on the same number of threads.

    python bench/llama_native.py [--model GGUF] [--build build/llama-cpu-*/out] [--threads 2] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _llama_bench import llama_bench  # noqa: E402
from _report import gguf_path, median, report  # noqa: E402

PROMPT_TOKENS, NEW_TOKENS = 512, 128

# One process for the app's path, fed a line per run; it answers a JSON line each time.
_APP = r"""
import json, sys, time
from codeact_desktop.llm.base import GenerationParams
from codeact_desktop.llm.llama_inprocess import LlamaCppBackend

model, threads, prompt_tokens, new_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
backend = LlamaCppBackend(model, n_ctx=2048, n_gpu_layers=0, n_threads=threads, flash_attention=True)
words = "the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing".split()

def prompt(run, n):
    # A different first word each run, so the prefix cache holds nothing of it.
    body, size = [f"run{run}"], 0
    while True:
        body.append(words[len(body) % len(words)])
        msgs = [{"role": "user", "content": " ".join(body)}]
        size = backend.count_tokens(msgs)
        if size >= n:
            return msgs, size

story = [{"role": "user", "content": "Write a very long story about a dragon who learns to count."}]
for line in sys.stdin:
    run = int(line)
    msgs, size = prompt(run, prompt_tokens)
    pp = backend.generate(msgs, GenerationParams(max_tokens=1, temperature=0.0), lambda piece: None)
    params = GenerationParams(max_tokens=new_tokens, temperature=0.0)
    stamps = []
    done = backend.generate([{"role": "user", "content": f"({run}) " + story[0]["content"]}], params,
                            lambda piece: stamps.append(time.monotonic()))
    tg_tokens = done.completion_tokens - 1  # those after the first piece
    tg = tg_tokens / (stamps[-1] - stamps[0])
    prompt_seconds = pp.first_piece_seconds - 1 / tg  # less the one token it generated
    print(json.dumps({"pp": size / prompt_seconds, "tg": tg, "prompt_tokens": size, "tg_tokens": tg_tokens}),
          flush=True)
"""


def find_build() -> Path:
    found = [p for p in sorted(ROOT.glob("build/llama-cpu*/out")) if (p / ".complete").exists()]
    if not found:
        raise SystemExit("no llama.cpp build with llama-bench: run python packaging/llama_libs.py --backends cpu")
    return found[0]


def native_once(model: Path, build: Path, threads: int) -> tuple[float, float]:
    return llama_bench(build, model, threads=threads, layers=0, prompt=PROMPT_TOKENS, generate=NEW_TOKENS,
                       flags=("-fa", "1"))  # flash attention, as the app's path has by default


def memory_bandwidth(threads: int, size: int = 1 << 30, rounds: int = 5) -> float:
    """Bytes per second read from memory by ``threads`` threads summing their part of one
    array (numpy releases the GIL in a reduction); the best of ``rounds``."""
    import numpy as np

    data = np.ones(size // 8, dtype=np.float64)
    parts = np.array_split(data, threads)
    best = 0.0
    for _ in range(rounds):
        workers = [threading.Thread(target=np.add.reduce, args=(p,)) for p in parts]
        started = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = max(best, data.nbytes / (time.perf_counter() - started))
    return best


def weight_bytes(model: Path) -> int:
    """Bytes of tensor data in the GGUF: what one generated token reads."""
    from codeact_desktop.models.gguf_file import inspect_gguf

    info = inspect_gguf(model)
    return getattr(info, "tensor_bytes", None) or model.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--build", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 2, 8))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    model = (args.model or gguf_path()).resolve()  # llama-bench runs in its build folder
    build = (args.build or find_build()).resolve()  # llama-bench runs in it
    app = subprocess.Popen([sys.executable, "-c", _APP, str(model), str(args.threads), str(PROMPT_TOKENS),
                            str(NEW_TOKENS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                           env={**os.environ, "LLAMA_CPP_LIB_PATH": str(build)})
    ours, theirs = [], []
    try:
        for run in range(args.runs + 1):  # the first round warms both up and is not counted
            app.stdin.write(f"{run}\n")
            app.stdin.flush()
            line = app.stdout.readline()
            if not line:
                raise SystemExit("the app's path ended early")
            figures = json.loads(line)
            native = native_once(model, build, args.threads)
            if run:
                ours.append(figures)
                theirs.append(native)
    finally:
        app.stdin.close()
        app.wait(60)
    pp, tg = median([f["pp"] for f in ours]), median([f["tg"] for f in ours])
    npp, ntg = median([t[0] for t in theirs]), median([t[1] for t in theirs])
    bandwidth = memory_bandwidth(args.threads)
    weights = weight_bytes(model)
    ceiling = bandwidth / weights
    rows = [
        ["prompt, pp512 (tok/s)", pp, npp, pp / npp],
        [f"generation, tg{NEW_TOKENS} (tok/s)", tg, ntg, tg / ntg],
    ]
    name = "llama_native" if args.model is None else f"llama_native-{model.stem}"  # one results file per GGUF
    report(name, ["", "app (in-process)", "llama-bench", "app / native"], rows,
           {"model": model.name, "build": str(build), "threads": args.threads, "runs": args.runs,
            "memory_bandwidth_gb_s": bandwidth / 1e9, "weight_bytes": weights,
            "generation_ceiling_tok_s": ceiling,
            "fraction_of_ceiling": {"app": tg / ceiling, "llama-bench": ntg / ceiling},
            "app_runs": ours, "native_runs": theirs})
    print(f"\nmemory bandwidth {bandwidth / 1e9:.1f} GB/s ({args.threads} threads), weights {weights / 1e6:.0f} MB: "
          f"ceiling {ceiling:.1f} tok/s; app reaches {tg / ceiling:.0%}, llama-bench {ntg / ceiling:.0%}")


if __name__ == "__main__":
    main()
