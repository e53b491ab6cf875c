"""The HTTP backend against a real OpenAI-compatible server: llama.cpp's own, serving
the test GGUF on 127.0.0.1."""

import threading
import time

import pytest

from codeact_desktop.llm.base import BackendError, GenerationParams
from codeact_desktop.llm.openai_http import OpenAIBackend

from ..conftest import free_port

pytestmark = pytest.mark.model


def test_lists_the_model_and_streams(server_url):
    backend = OpenAIBackend(server_url)
    assert backend.info.model == "gemma-test" and backend.info.device == "remote"
    pieces = []
    result = backend.generate([{"role": "user", "content": "Say hello."}], GenerationParams(max_tokens=24), pieces.append)
    assert len(pieces) > 2 and "".join(pieces) == result.text
    assert result.finish_reason in ("stop", "length") and result.completion_tokens > 0
    backend.close()


def test_stop_sequence_is_honoured_and_stripped(server_url):
    backend = OpenAIBackend(server_url, "gemma-test")
    messages = [{"role": "user", "content": "Repeat exactly: alpha beta gamma delta"}]
    params = GenerationParams(max_tokens=32, stop=("gamma",))
    result = backend.generate(messages, params, lambda p: None)
    assert "gamma" not in result.text and "delta" not in result.text
    backend.close()


def test_cancel_closes_the_stream(server_url):
    backend = OpenAIBackend(server_url)
    cancel = threading.Event()
    pieces = []

    def on_piece(piece):
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()

    result = backend.generate([{"role": "user", "content": "Write a long story."}],
                              GenerationParams(max_tokens=300, stop=()), on_piece, cancel)
    assert result.finish_reason == "cancelled" and len(pieces) <= 4
    backend.close()


def test_unreachable_server_is_a_clear_message_at_once():
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="Cannot reach the server"):
        OpenAIBackend(f"http://127.0.0.1:{free_port()}/v1")
    assert time.monotonic() - t0 < 6
