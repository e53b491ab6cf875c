"""GGUF inspection on the real test model, on files written by the ``gguf`` package
(ChatML special tokens, a chat template), and on damaged copies."""

import struct
import time

import numpy as np
import pytest

from codeact_desktop.models.gguf_file import GGUFError, inspect_gguf


def _write_tiny(path, *, im_end_type, template=None, name="Tiny ChatML"):
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(4096)
    writer.add_block_count(2)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["<s>", "</s>", "hello", "<|im_start|>", "<|im_end|>"])
    writer.add_token_types([gguf.TokenType.CONTROL, gguf.TokenType.CONTROL, gguf.TokenType.NORMAL,
                            gguf.TokenType.CONTROL, im_end_type])
    if template:
        writer.add_chat_template(template)
    writer.add_tensor("token_embd.weight", np.zeros((5, 64), dtype=np.float16))
    writer.add_tensor("output.weight", np.zeros((5, 64), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_the_real_model_is_described(gguf_path):
    info = inspect_gguf(gguf_path)
    assert (info.version, info.architecture, info.quantisation) == (3, "gemma3", "Q4_K_M")
    assert 260e6 < info.parameter_count < 280e6 and info.n_layers == 18 and info.context_length == 32768
    assert info.im_end == "absent" and info.kv_bytes_per_token == 18 * 1 * (256 + 256) * 2
    rows = dict(info.describe())
    assert rows["Parameters"] == "268.1 M" and rows["Quantisation"] == "Q4_K_M"
    assert rows["Trained context"] == "32,768 tokens" and "not in the vocabulary" in rows["<|im_end|>"]


def test_chatml_special_token_and_template_are_found(tmp_path):
    import gguf

    special = inspect_gguf(_write_tiny(tmp_path / "a.gguf", im_end_type=gguf.TokenType.CONTROL))
    assert special.im_end == "special" and special.chat_format_summary() == "ChatML"
    assert special.quantisation == "F16" and special.parameter_count == 2 * 5 * 64
    assert special.kv_bytes_per_token == 2 * 2 * (16 + 16) * 2
    plain = inspect_gguf(_write_tiny(tmp_path / "b.gguf", im_end_type=gguf.TokenType.NORMAL,
                                     template="{{ messages }}"))
    assert plain.im_end == "text" and plain.chat_template == "{{ messages }}"
    assert "not special" in dict(plain.describe())["<|im_end|>"]
    assert plain.chat_format_summary() == "the file's own chat template"


@pytest.mark.parametrize("make, message", [
    (lambda p, g: p.write_bytes(b""), "empty"),
    (lambda p, g: p.write_bytes(b"PK\x03\x04 a zip file"), "not a GGUF"),
    (lambda p, g: p.write_bytes(g.read_bytes()[:4000]), "truncated"),
    (lambda p, g: p.write_bytes(g.read_bytes()[:100_000_000]), "truncated"),
    (lambda p, g: p.write_bytes(b"GGUF" + (99).to_bytes(4, "little") + b"\0" * 64), "version 99"),
    (lambda p, g: p.mkdir(), "folder"),
])
def test_bad_files_get_a_clear_message(tmp_path, gguf_path, make, message):
    path = tmp_path / "mon modèle é.gguf"
    make(path, gguf_path)
    with pytest.raises(GGUFError, match=message):
        inspect_gguf(path)


def test_a_token_past_the_first_megabyte_of_the_vocabulary_is_found(tmp_path):
    """The header is read a megabyte at a time: the token's index must survive the refills,
    and a file cut inside the vocabulary is still called truncated."""
    import gguf

    tokens = [f"token-{i:06d}-{'x' * (i % 23)}" for i in range(300_000)]
    tokens[250_001] = "<|im_end|>"
    types = [gguf.TokenType.NORMAL] * len(tokens)
    types[250_001] = gguf.TokenType.CONTROL
    path = tmp_path / "big-vocabulary.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_tensor("output.weight", np.zeros((4, 64), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    info = inspect_gguf(path)
    assert info.metadata["GGUF.im_end_index"] == 250_001 and info.im_end == "special"
    assert info.parameter_count == 4 * 64
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(path.read_bytes()[:3_000_000])  # inside the token list
    with pytest.raises(GGUFError, match="truncated"):
        inspect_gguf(cut)


def _header(*entries: bytes, n_kv: int = 1) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, 0, n_kv) + b"".join(entries)


def _key(name: str) -> bytes:
    return struct.pack("<Q", len(name)) + name.encode()


def _sparse(path, header: bytes):
    """``header``, then zeros to a gigabyte, sparse: no disk used."""
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(1 << 30)
    return path


@pytest.mark.parametrize("body, message", [
    # a vocabulary of 2^40 empty strings: 8 bytes each, minutes to walk
    (lambda s: _header(_key("tokenizer.ggml.tokens") + s.pack("<IIQ", 9, 8, 1 << 40)), "entries"),
    (lambda s: _header(_key("tokenizer.ggml.merges") + s.pack("<IIQ", 9, 8, 1 << 40)), "entries"),
    (lambda s: _header(n_kv=1 << 50), "keys"),
    (lambda s: b"GGUF" + s.pack("<IQQ", 3, 1 << 24, 0), "tensors"),
    # arrays of arrays, 5,000 deep: the stack, not the file, would run out
    (lambda s: _header(_key("general.nested") + s.pack("<I", 9) + s.pack("<IQ", 9, 1) * 5000), "nested"),
], ids=["vocabulary", "merges", "keys", "tensors", "nested arrays"])
def test_a_hostile_header_is_refused_at_once(tmp_path, body, message):
    """A dropped .gguf is read before anything asks the user: what its header claims is
    bounded, so a small file cannot hold a worker (and the GIL) for minutes."""
    path = _sparse(tmp_path / "hostile.gguf", body(struct))
    started = time.monotonic()
    with pytest.raises(GGUFError, match=message):
        inspect_gguf(path)
    assert time.monotonic() - started < 1


def _kv(key: str, vtype: int, value: bytes) -> bytes:
    return _key(key) + struct.pack("<I", vtype) + value


def _u32(x):
    return struct.pack("<I", x)


def _u64(x):
    return struct.pack("<Q", x)


def _f64(x):
    return struct.pack("<d", x)


def _text(x: str) -> bytes:
    return _u64(len(x)) + x.encode()


_ARCH = _kv("general.architecture", 8, _text("llama"))
# From an independent attack on the reader (stop 26): each once let another exception out.
_WRONGLY_TYPED = {
    "alignment 0": [_kv("general.alignment", 4, _u32(0))],
    "alignment a string": [_kv("general.alignment", 8, _text("x"))],
    "alignment NaN": [_kv("general.alignment", 12, _f64(float("nan")))],
    "alignment inf": [_kv("general.alignment", 12, _f64(float("inf")))],
    "alignment 3": [_kv("general.alignment", 4, _u32(3))],
    "block count a string": [_ARCH, _kv("llama.block_count", 8, _text("abc"))],
    "block count inf": [_ARCH, _kv("llama.block_count", 12, _f64(float("inf")))],
    "context an array": [_ARCH, _kv("llama.context_length", 9, _u32(4) + _u64(0))],
    "heads NaN": [_ARCH, _kv("llama.attention.head_count", 12, _f64(float("nan")))],
    "heads negative": [_ARCH, _kv("llama.attention.head_count", 5, b"\xff\xff\xff\xff")],
    "file type inf": [_kv("general.file_type", 12, _f64(float("inf")))],
    "the reader's own im_end index": [_kv("GGUF.im_end_index", 8, _text("x"))],
    "the reader's own token types": [_kv("GGUF.im_end_index", 4, _u32(0)), _kv("GGUF.token_types", 4, _u32(0))],
    "the reader's own version": [_kv("GGUF.version", 8, _text("99"))],
    "a template that is an array": [_kv("tokenizer.chat_template", 9, _u32(8) + _u64(0))],
    "a template that is a number": [_kv("tokenizer.chat_template", 4, _u32(5))],
    "token types of int8": [_kv("tokenizer.ggml.token_type", 9, _u32(1) + _u64(2) + b"\x01\x03"),
                            _kv("general.name", 8, _text("after"))],
    "a 600 MB template": [_kv("tokenizer.chat_template", 8, _u64(600 << 20))],
    "2^28 token types": [_kv("tokenizer.ggml.token_type", 9, _u32(5) + _u64(1 << 28))],
    "2^24 empty arrays": [_kv("a", 9, _u32(9) + _u64(1 << 24))],
}


@pytest.mark.parametrize("entries", _WRONGLY_TYPED.values(), ids=_WRONGLY_TYPED.keys())
def test_a_wrongly_typed_header_gets_a_message_or_a_description(tmp_path, entries):
    """Whatever the header holds: a GGUFError, or a description of plain types, at once and
    without holding the file in memory."""
    path = _sparse(tmp_path / "odd.gguf", _header(*entries, n_kv=len(entries)))
    started = time.monotonic()
    try:
        info = inspect_gguf(path)
    except GGUFError:
        pass
    else:
        assert info.version == 3 and isinstance(info.name, str) and isinstance(info.quantisation, str)
        assert info.chat_template is None or isinstance(info.chat_template, str)
        assert all(isinstance(v, int) and v >= 0 for v in (info.n_layers, info.kv_bytes_per_token))
        assert info.context_length is None or isinstance(info.context_length, int)
        dict(info.describe()), info.chat_format_summary()
        if "after" in str(entries):
            assert info.name == "after"  # the reader kept its place past the int8 array
    assert time.monotonic() - started < 2


def test_an_unreadable_file_gets_a_message(tmp_path, monkeypatch):
    path = tmp_path / "locked.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 64)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(GGUFError, match="could not be read: Permission denied"):
        inspect_gguf(path)


def test_many_arrays_within_each_bound_are_bounded_together(tmp_path):
    """Keys may each hold an array under the bound; their total is bounded too: five keys
    of 2^21 empty strings each (16 MB apiece, written out) are refused at the fifth."""
    empty_strings = _u32(8) + _u64(1 << 21) + bytes(8 << 21)
    path = tmp_path / "many.gguf"
    with open(path, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, 5))
        for i in range(5):
            f.write(_key(f"k{i}") + _u32(9) + empty_strings)
    with pytest.raises(GGUFError, match="more than any model has"):
        inspect_gguf(path)
