"""A GGUF with the default model's exact shape and quantisation, and random weights.

The default model (CodeActAgent-Mistral-7b-v0.1, q8_0, 7.7 GB) comes from the Hub, which
this machine cannot reach. Its speed does not depend on what its weights say: every token
multiplies the same matrices of the same type. So the llama.cpp benchmarks can measure
the default model's time per token on a file of the same architecture (llama, as
Mistral 7B v0.1 is in GGUF), the same sizes (32 layers, 4,096 wide, 14,336 feed-forward,
32 heads, 8 KV heads), the same 32,002-token vocabulary and the same q8_0 tensors.

The weights are random and small, so the text is nonsense; the rows of the end-of-text
tokens in the output matrix are zero so that greedy decoding never stops early.

    .venv/bin/python bench/default_model_shape.py build/codeact-mistral-7b-shape.q8_0.gguf
    .venv/bin/python bench/llama_native.py --model build/codeact-mistral-7b-shape.q8_0.gguf
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gguf
import numpy as np

# Mistral 7B v0.1 as CodeActAgent ships it (its config.json), with ChatML's two tokens added.
VOCAB, WIDTH, LAYERS, FEED_FORWARD, HEADS, KV_HEADS = 32002, 4096, 32, 14336, 32, 8
CONTEXT, ROPE_BASE, NORM_EPS = 32768, 10000.0, 1e-5
HEAD = WIDTH // HEADS
BLOCK = 32  # q8_0: 32 int8 values and one f16 scale in 34 bytes
Q8_0 = np.dtype([("scale", "<f2"), ("values", "i1", BLOCK)])
NO_END = (0, 1, 2, VOCAB - 2, VOCAB - 1)  # <unk>, <s>, </s>, <|im_start|>, <|im_end|>


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """SentencePiece-style tokens: the 3 specials, the 256 byte tokens, word pieces, ChatML."""
    normal, unknown, control, byte = (gguf.TokenType.NORMAL, gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL,
                                      gguf.TokenType.BYTE)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [unknown, control, control] + [byte] * 256
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    pieces = ["▁"] + letters + ["▁" + c for c in letters]
    pieces += [f"▁w{i}" for i in range(VOCAB - 2 - len(tokens) - len(pieces))]
    tokens += pieces + ["<|im_start|>", "<|im_end|>"]
    types += [normal] * len(pieces) + [control, control]
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))] + [0.0, 0.0]
    return tokens, scores, [int(t) for t in types]


def tensors() -> list[tuple[str, tuple[int, ...], bool]]:
    """(name, numpy shape as rows x columns, quantised?) in the order llama.cpp's converter writes."""
    kv = KV_HEADS * HEAD
    out = [("token_embd.weight", (VOCAB, WIDTH), True)]
    for i in range(LAYERS):
        out += [(f"blk.{i}.attn_norm.weight", (WIDTH,), False),
                (f"blk.{i}.attn_q.weight", (WIDTH, WIDTH), True),
                (f"blk.{i}.attn_k.weight", (kv, WIDTH), True),
                (f"blk.{i}.attn_v.weight", (kv, WIDTH), True),
                (f"blk.{i}.attn_output.weight", (WIDTH, WIDTH), True),
                (f"blk.{i}.ffn_norm.weight", (WIDTH,), False),
                (f"blk.{i}.ffn_gate.weight", (FEED_FORWARD, WIDTH), True),
                (f"blk.{i}.ffn_up.weight", (FEED_FORWARD, WIDTH), True),
                (f"blk.{i}.ffn_down.weight", (WIDTH, FEED_FORWARD), True)]
    return out + [("output_norm.weight", (WIDTH,), False), ("output.weight", (VOCAB, WIDTH), True)]


def random_q8_0(rng: np.random.Generator, rows: int, columns: int, name: str) -> np.ndarray:
    """Rows of q8_0 blocks whose values have a standard deviation of about 0.02."""
    blocks = np.empty((rows, columns // BLOCK), dtype=Q8_0)
    blocks["values"] = rng.integers(-127, 128, size=blocks["values"].shape, dtype=np.int8)
    blocks["scale"] = 0.02 / 73
    if name == "output.weight":
        blocks["scale"][list(NO_END)] = 0  # logit 0, below the random tokens' best: greedy never ends
    return blocks.view(np.uint8).reshape(rows, -1)


def write(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("CodeActAgent-Mistral-7b-v0.1 shape (random weights)")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(WIDTH)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_rope_dimension_count(HEAD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(NORM_EPS)
    writer.add_rope_freq_base(ROPE_BASE)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    tokens, scores, types = vocabulary()
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(VOCAB - 1)
    writer.add_unk_token_id(0)
    shapes = tensors()
    for name, shape, quantised in shapes:
        if quantised:
            byte_shape = (shape[0], shape[1] // BLOCK * Q8_0.itemsize)
            writer.add_tensor_info(name, byte_shape, np.dtype(np.uint8), byte_shape[0] * byte_shape[1],
                                   raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor_info(name, shape, np.dtype(np.float32), shape[0] * 4)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for name, shape, quantised in shapes:  # one tensor in memory at a time
        data = random_q8_0(rng, *shape, name) if quantised else np.ones(shape, dtype=np.float32)
        writer.write_tensor_data(data)
    writer.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path)
    args = parser.parse_args()
    write(args.path)
    print(f"{args.path}: {args.path.stat().st_size / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
