"""The default model's memory at 32k of context, measured instead of planned.

The load plan (``models.hardware.memory_needed``) decides whether the default model,
CodeActAgent-Mistral-7b q8_0, gets 32,768 tokens of context on a 16 GB laptop. This loads
a GGUF of that model's exact shape (``default_model_shape.py``: same tensors, same types,
random weights) with each setting, in a process of its own, runs a short prompt so that
every weight has been read, and reads what the process holds: its resident memory (the
mapped weights, the KV cache, which llama.cpp clears at load and so touches whole, and the
compute buffers) beside the plan's figure. The plan must not be below what was measured.

    .venv/bin/python bench/default_model_shape.py build/codeact-mistral-7b-shape.q8_0.gguf
    .venv/bin/python bench/default_model_memory.py build/codeact-mistral-7b-shape.q8_0.gguf
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GIB = 1 << 30
SETTINGS = [("q8_0", True), ("f16", True), ("f16", False)]

# One load per process, so each resident figure is that setting's alone.
_LOAD = r"""
import json, sys
sys.path.insert(0, "bench")
from llama_cpp import Llama
from codeact_desktop.models.hardware import KV_TYPES
from codeact_desktop.native import llama_log
from kv_cache_types import COMPUTE, KV_SIZE  # the lines llama.cpp logs its buffers' sizes on

path, kv_type, flash, n_ctx, threads = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4]), int(sys.argv[5])

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

before = rss()
with llama_log.watched() as lines:
    llm = Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, n_batch=512, flash_attn=flash,
                type_k=KV_TYPES[kv_type].ggml_type, type_v=KV_TYPES[kv_type].ggml_type, verbose=False)
log = "".join(lines)
loaded = rss()
llm.eval(llm.tokenize(b"Write a function that adds two numbers.", add_bos=True))  # every weight read once
mib = lambda pattern: sum(float(m) for m in pattern.findall(log))
print(json.dumps({"python_and_libraries": before, "after_load": loaded, "after_prompt": rss(),
                  "kv_mib": mib(KV_SIZE), "compute_mib": mib(COMPUTE)}))
"""


def measure(gguf: Path, kv_type: str, flash: bool, n_ctx: int, threads: int) -> dict:
    done = subprocess.run([sys.executable, "-c", _LOAD, str(gguf), kv_type, "1" if flash else "0", str(n_ctx),
                           str(threads)], capture_output=True, text=True, cwd=ROOT, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from codeact_desktop.models.gguf_file import inspect_gguf
    from codeact_desktop.models.hardware import memory_needed

    parser = argparse.ArgumentParser()
    parser.add_argument("gguf", type=Path)
    parser.add_argument("--ctx", type=int, default=32768)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    info = inspect_gguf(args.gguf)
    rows, runs = [], {}
    for kv_type, flash in SETTINGS:
        figures = measure(args.gguf, kv_type, flash, args.ctx, args.threads)
        planned = memory_needed(info, args.ctx, kv_type, flash)
        held = figures["after_prompt"]
        name = f"{kv_type}, flash attention {'on' if flash else 'off'}"
        runs[name] = {**figures, "planned": planned}
        rows.append([name, figures["kv_mib"] / 1024, figures["compute_mib"] / 1024, held / GIB, planned / GIB,
                     planned / held])
    report("default_model_memory", ["setting", "KV cache GiB", "compute buffers GiB", "resident GiB",
                                    "planned GiB", "planned / resident"], rows,
           {"gguf": args.gguf.name, "n_ctx": args.ctx, "runs": runs})


if __name__ == "__main__":
    main()
