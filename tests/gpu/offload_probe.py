"""Loads the test GGUF through the app's own backend (the plan, the load, llama.cpp's log)
and prints, as one JSON line, where the layers went and the next-token logits for a fixed
set of prompts. Run in a subprocess, so each case gets its own llama.cpp and environment
(the library folder, a lowered GPU memory budget, a missing driver).

    python tests/gpu/offload_probe.py MODEL.gguf plan|N
"""

import json
import sys
import time

import llama_cpp
import numpy as np

from codeact_desktop.llm.llama_inprocess import LlamaCppBackend

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    if n <",
    "import pandas as pd\ndf = pd.read_csv(",
    "1, 2, 3, 4, 5,",
    "The opposite of hot is",
]


def main() -> None:
    model, layers = sys.argv[1], sys.argv[2]
    options = {} if layers == "plan" else {"n_gpu_layers": int(layers)}
    started = time.monotonic()
    backend = LlamaCppBackend(model, n_ctx=512, n_threads=2, **options)
    loaded = time.monotonic() - started
    llm = backend._llm
    out = {"planned": backend.plan.n_gpu_layers, "reasons": backend.plan.reasons, "device": backend.info.device,
           "device_name": backend.info.device_name, "notes": backend.info.notes,
           "on_gpu": backend.placement.layers_on_gpu, "total": backend.placement.layers_total,
           "buffers": backend.placement.buffers, "load_s": loaded, "logits": []}
    started = time.monotonic()
    for prompt in PROMPTS:
        llm.reset()
        llm.eval(llm.tokenize(prompt.encode(), add_bos=True))
        row = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        logits = np.ctypeslib.as_array(row, shape=(llm.n_vocab(),)).astype(np.float64)
        top = np.argsort(-logits)[:10]
        out["logits"].append({"top": top.tolist(), "values": logits[top].tolist(),
                              "all": logits.tolist() if len(sys.argv) > 3 else None})
    out["eval_s"] = time.monotonic() - started
    backend.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
