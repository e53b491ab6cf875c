"""A dropped GGUF's chat template is Jinja from the file, rendered for every prompt. Jinja's
sandbox held against a dozen escapes in stop 30's third independent run, but not against
loops and sizes: two nested ``range(100000)`` loops held the model's worker for about seven
minutes (Stop did nothing, and quitting hung on the worker), and ``'x' * 3000000000`` took
2.9 GB in 1.4 s. Real llama.cpp loading a real GGUF (the test model with the template
swapped by gguf's own tool); each check fails if the attack gets through."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codeact_desktop.llm.base import BackendError, GenerationParams
from codeact_desktop.llm.chat_template import TemplateTooCostly, bounded_formatter, bounded_render
from codeact_desktop.llm.llama_inprocess import LlamaCppBackend

HOSTILE = {
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x",
    "one big string": "{{ ('x' * 3000000000) | length }}",
    "doubling": "{% set ns = namespace(s='x' * 1000000) %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                "{% endfor %}{{ ns.s | length }}",
}
FAIR = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _with_template(gguf_path, folder: Path, template: str) -> str:
    out = folder / "hostile.gguf"
    tool = Path(sys.executable).with_name("gguf-new-metadata")
    subprocess.run([str(tool), "--chat-template", template, "--force", str(gguf_path), str(out)], check=True,
                   capture_output=True, timeout=120)
    return str(out)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_model_whose_template_loops_answers_with_a_message_in_seconds(gguf_path, tmp_path):
    """The whole path once: the real model file, loaded, asked for a reply."""
    backend = LlamaCppBackend(_with_template(gguf_path, tmp_path, HOSTILE["nested loops"]), n_ctx=1024,
                              n_gpu_layers=0, chat_format="auto")
    try:
        assert backend.info.chat_format == "gguf"
        started = time.monotonic()
        with pytest.raises(BackendError, match="chat template took more than 2 s"):
            backend.generate([{"role": "user", "content": "hi"}], GenerationParams(max_tokens=4), lambda p: None)
        assert time.monotonic() - started < 10
    finally:
        backend.close()  # returns: the worker is free again (it hung at quitting before)


@pytest.mark.parametrize("attack", HOSTILE)
def test_each_costly_template_is_stopped_by_its_bound(attack):
    """The same formatter the backend builds (llama-cpp-python's, with Jinja's sandbox)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = bounded_formatter(Jinja2ChatFormatter(template=HOSTILE[attack], eos_token="", bos_token=""))
    before, started = _peak_mb(), time.monotonic()
    with pytest.raises(TemplateTooCostly):
        bounded_render(lambda: formatter(messages=[{"role": "user", "content": "hi"}]))
    assert time.monotonic() - started < 5 and _peak_mb() - before < 1200, (time.monotonic() - started,
                                                                          _peak_mb() - before)


def test_a_fair_template_builds_the_prompt_as_before():
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    plain = Jinja2ChatFormatter(template=FAIR, eos_token="", bos_token="")
    bounded = bounded_formatter(Jinja2ChatFormatter(template=FAIR, eos_token="", bos_token=""))
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x" * 3 * 1000}]
    assert bounded_render(lambda: bounded(messages=messages)).prompt == plain(messages=messages).prompt
