"""Prompt speed and generation speed on the CPU against a Vulkan device, on the same GGUF
and threads, through llama.cpp built as the bundle builds it (every backend a module), and
llama.cpp's own ``llama-bench`` from that build as the native figure for each.

On this machine the Vulkan device is Mesa's llvmpipe, a software renderer on the same two
cores: it is slower than the CPU backend, and the figures show that the path works, not that
it is fast. On a machine with a GPU the same script measures the real thing.

    python bench/gpu_offload.py [--model GGUF] [--build build/llama-cpu-vulkan-*/out] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _llama_bench import llama_bench  # noqa: E402
from _report import gguf_path, median, report  # noqa: E402

PROMPT_TOKENS, NEW_TOKENS = 256, 64

# One configuration in its own process: llama.cpp's devices are chosen at load.
_ONE = r"""
import json, sys, time
import llama_cpp
from codeact_desktop.native import ggml_backends
ggml_backends.load()
llm = llama_cpp.Llama(model_path=sys.argv[1], n_gpu_layers=int(sys.argv[2]), n_ctx=1024, n_threads=2,
                      n_batch=512, verbose=False)
prompt = (llm.tokenize(b"The quick brown fox jumps over the lazy dog. ") * 64)[:int(sys.argv[3])]
llm.eval(prompt[:8]); llm.reset()  # the first evaluation compiles the device's pipelines
pp, tg = [], []
for _ in range(int(sys.argv[5])):
    llm.reset()
    t = time.perf_counter(); llm.eval(prompt); pp.append(len(prompt) / (time.perf_counter() - t))
    t = time.perf_counter()
    for _ in range(int(sys.argv[4])):  # greedy, one token at a time, as a reply is written
        llm.eval([llm.sample(temp=0.0)])
    tg.append(int(sys.argv[4]) / (time.perf_counter() - t))
print(json.dumps({"pp": pp, "tg": tg}))
"""


def _env(layers: int) -> dict:
    """The CPU figures with the Vulkan device hidden (llama.cpp's default for llvmpipe): with it
    visible, ggml sends large batches to it even with no layers there."""
    env = {k: v for k, v in os.environ.items() if k != "GGML_VK_VISIBLE_DEVICES"}
    if layers:
        env["GGML_VK_VISIBLE_DEVICES"] = "0"
    return env


def in_process(model: Path, build: Path, layers: int, runs: int) -> tuple[float, float]:
    env = {**_env(layers), "LLAMA_CPP_LIB_PATH": str(build)}
    done = subprocess.run([sys.executable, "-c", _ONE, str(model), str(layers), str(PROMPT_TOKENS), str(NEW_TOKENS),
                           str(runs)], env=env, capture_output=True, text=True, timeout=3600, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return median(found["pp"]), median(found["tg"])


def native(model: Path, build: Path, layers: int, runs: int) -> tuple[float, float]:
    return llama_bench(build, model, threads=2, layers=layers, prompt=PROMPT_TOKENS, generate=NEW_TOKENS,
                       runs=runs, env=_env(layers))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--build", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    model = args.model or gguf_path()
    build = args.build or next(p for p in sorted(ROOT.glob("build/llama-*vulkan*/out")) if (p / ".complete").exists())
    rows = []
    figures = {}
    for name, layers in (("CPU", 0), ("Vulkan0, all layers", 99)):
        pp, tg = in_process(model, build, layers, args.runs)
        npp, ntg = native(model, build, layers, args.runs)
        figures[name] = (pp, tg)
        rows.append([name, pp, npp, pp / npp, tg, ntg, tg / ntg])
    cpu_pp, cpu_tg = figures["CPU"]
    gpu_pp, gpu_tg = figures["Vulkan0, all layers"]
    report("gpu_offload",
           ["device", "prompt tok/s (app)", "prompt tok/s (llama-bench)", "app/native",
            "gen tok/s (app)", "gen tok/s (llama-bench)", "app/native"], rows,
           {"model": model.name, "build": str(build), "prompt_tokens": PROMPT_TOKENS, "new_tokens": NEW_TOKENS,
            "vulkan_over_cpu": {"prompt": gpu_pp / cpu_pp, "generation": gpu_tg / cpu_tg}})
    print(f"\nVulkan0 / CPU: prompt {gpu_pp / cpu_pp:.2f}x, generation {gpu_tg / cpu_tg:.2f}x")


if __name__ == "__main__":
    main()
