"""In-process llama.cpp tokens/s against llama.cpp's OpenAI-compatible server
(llama-cpp-python's ``llama_cpp.server``) on the same GGUF, threads and prompt.

    python bench/tokens_per_second.py [--model GGUF] [--tokens 128] [--runs 3]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import gguf_path, median, report  # noqa: E402

from codeact_desktop.llm.base import GenerationParams  # noqa: E402
from codeact_desktop.llm.llama_inprocess import LlamaCppBackend  # noqa: E402
from codeact_desktop.llm.openai_http import OpenAIBackend  # noqa: E402

PROMPT = [{"role": "user", "content": "Write a long, detailed story about a lighthouse keeper."}]


def measure(backend, params, runs):
    rates, firsts = [], []
    for _ in range(runs):
        result = backend.generate(PROMPT, params, lambda p: None)
        rates.append(result.tokens_per_second)
        firsts.append(result.first_piece_seconds)
    return median(rates), median(firsts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = args.model or gguf_path()
    params = GenerationParams(max_tokens=args.tokens, stop=())

    ours = LlamaCppBackend(model, n_ctx=2048, n_threads=args.threads)
    ours_rate, ours_first = measure(ours, params, args.runs)
    ours.close()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--n_threads", str(args.threads),
         "--chat_format", "gemma"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        peer = OpenAIBackend(url)
        peer_rate, peer_first = measure(peer, params, args.runs)
        peer.close()
    finally:
        server.terminate()
        server.wait(10)

    report(
        "tokens_per_second",
        ["path", "decode tokens/s", "first piece s", "ratio vs server"],
        [["in-process (ours)", round(ours_rate, 2), round(ours_first, 3), round(ours_rate / peer_rate, 3)],
         ["llama_cpp.server over HTTP", round(peer_rate, 2), round(peer_first, 3), 1.0]],
        {"model": model.name, "threads": args.threads, "max_tokens": args.tokens, "runs": args.runs},
    )


if __name__ == "__main__":
    main()
