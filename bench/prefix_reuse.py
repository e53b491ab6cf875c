"""Prompt tokens llama.cpp evaluates per turn across a six-turn CodeAct episode: ours
(append-only prompts, KV cache prefix reused) against re-evaluating the whole prompt,
which is what a stateless prompt rebuild costs.

    python bench/prefix_reuse.py [--model GGUF]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import gguf_path, report  # noqa: E402

from codeact_desktop.llm.base import GenerationParams  # noqa: E402
from codeact_desktop.llm.llama_inprocess import LlamaCppBackend  # noqa: E402
from codeact_desktop.resources import prompt_text  # noqa: E402

QUESTIONS = ["What is 12 times 11?", "And 13 times 17?", "What is 2 to the power 20?",
             "What is the square root of 1764?", "What is 100 factorial's number of digits?",
             "What is 7 to the power 7?"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    backend = LlamaCppBackend(args.model or gguf_path(), n_ctx=4096)
    messages = [
        {"role": "system", "content": prompt_text("system.txt")},
        {"role": "user", "content": "What is 6 times 7?"},
        {"role": "assistant", "content": "<execute>\nprint(6*7)\n</execute>"},
        {"role": "user", "content": "Execution Output:\n42\n"},
        {"role": "assistant", "content": "6 times 7 is 42."},
    ]
    rows = []
    total_prompt = total_eval = 0
    for turn, question in enumerate(QUESTIONS, 1):
        messages.append({"role": "user", "content": question})
        t0 = time.monotonic()
        result = backend.generate(messages, GenerationParams(max_tokens=32), lambda p: None)
        first = result.first_piece_seconds or (time.monotonic() - t0)
        messages.append({"role": "assistant", "content": result.text + "</execute>"})
        messages.append({"role": "user", "content": f"Execution Output:\n{turn * 1000}\n"})
        total_prompt += result.prompt_tokens
        total_eval += result.prompt_tokens_evaluated
        rows.append([turn, result.prompt_tokens, result.prompt_tokens_evaluated,
                     round(result.prompt_tokens_evaluated / result.prompt_tokens, 3), round(first, 3)])
    backend.close()
    rows.append(["all", total_prompt, total_eval, round(total_eval / total_prompt, 3), ""])
    report("prefix_reuse",
           ["turn", "prompt tokens (full re-evaluation)", "evaluated (ours)", "ratio", "first piece s"],
           rows)


if __name__ == "__main__":
    main()
