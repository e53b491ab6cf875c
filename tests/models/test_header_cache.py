"""A model's header is read once per version of the file: later loads take it from the
app's cache, and any change to the file (or to the cache) means reading the file again."""

import dataclasses
import os

import pytest

from codeact_desktop.models import gguf_file, header_cache
from codeact_desktop.models.gguf_file import GGUFError, inspect_gguf
from codeact_desktop.models.header_cache import cached_inspect

from .test_gguf_file import _write_tiny


def _fields(info):
    return {f.name: getattr(info, f.name) for f in dataclasses.fields(info) if f.name != "metadata"}


@pytest.fixture
def reads(monkeypatch):
    """How many times the file itself was read."""
    counted = []
    real = gguf_file._read_header
    monkeypatch.setattr(gguf_file, "_read_header", lambda r: counted.append(1) or real(r))
    return counted


def test_the_real_model_is_read_once_and_described_the_same_from_the_cache(gguf_path, tmp_path, reads):
    folder = tmp_path / "headers"
    first = cached_inspect(gguf_path, folder)
    again = cached_inspect(gguf_path, folder)
    assert len(reads) == 1
    assert _fields(again) == _fields(inspect_gguf(gguf_path)) == _fields(first)
    assert again.metadata["general.architecture"] == "gemma3" and again.describe() == first.describe()
    assert len(list(folder.glob("*.json"))) == 1


def test_a_changed_file_is_read_again(tmp_path, reads):
    import gguf

    folder, model = tmp_path / "headers", tmp_path / "tiny.gguf"
    _write_tiny(model, im_end_type=gguf.TokenType.NORMAL, name="Before")
    assert cached_inspect(model, folder).im_end == "text"
    was = model.stat()
    _write_tiny(model, im_end_type=gguf.TokenType.CONTROL, name="After!")
    os.utime(model, ns=(was.st_atime_ns, was.st_mtime_ns))  # same path, size, date and inode
    assert (model.stat().st_size, model.stat().st_ino) == (was.st_size, was.st_ino)
    after = cached_inspect(model, folder)
    assert (after.name, after.im_end) == ("After!", "special") and len(reads) == 2
    model.write_bytes(model.read_bytes()[:100])  # cut short: the clear message, not the kept header
    with pytest.raises(GGUFError, match="truncated|ends early"):
        cached_inspect(model, folder)


def test_a_damaged_or_unwritable_cache_costs_only_a_read(tmp_path, reads):
    import gguf

    folder, model = tmp_path / "headers", tmp_path / "tiny.gguf"
    _write_tiny(model, im_end_type=gguf.TokenType.CONTROL)
    cached_inspect(model, folder)
    for entry in folder.glob("*.json"):
        entry.write_text('{"version": {"path": 1}, "info": [')
    assert cached_inspect(model, folder).im_end == "special" and len(reads) == 2
    assert cached_inspect(model, folder).im_end == "special" and len(reads) == 2  # kept again
    blocked = tmp_path / "a-file-not-a-folder"
    blocked.write_text("")
    assert cached_inspect(model, blocked).name == "Tiny ChatML" and len(reads) == 3


def test_the_cache_keeps_a_bounded_number_of_headers(tmp_path, monkeypatch):
    import gguf

    monkeypatch.setattr(header_cache, "KEPT", 3)
    folder = tmp_path / "headers"
    for i in range(5):
        cached_inspect(_write_tiny(tmp_path / f"m{i}.gguf", im_end_type=gguf.TokenType.CONTROL), folder)
    assert len(list(folder.glob("*.json"))) == 3


def test_the_app_keeps_the_header_of_the_model_it_loads(gguf_path, app_paths, reads):
    from codeact_desktop.engine import open_backend

    for _ in range(2):
        backend = open_backend(model_path=str(gguf_path))
        assert backend.info.quantisation == "Q4_K_M"
        backend.close()
    assert len(reads) <= 1  # none where an earlier test kept it already
    assert list(app_paths.gguf_headers.glob("*.json"))
