"""The diagnostic report: versions, machine, backend, kernel restrictions and the log's
tail are in; the conversation is not; PySide6 is named without being imported."""

from __future__ import annotations

import logging
import platform
import subprocess
import sys
import uuid
from importlib import metadata

import pytest

from codeact_desktop import app_log
from codeact_desktop.diagnostics import diagnostic_report
from codeact_desktop.llm.scripted import ScriptedBackend
from codeact_desktop.paths import AppPaths
from codeact_desktop.store.history import HistoryStore


@pytest.fixture
def paths(tmp_path):
    paths = AppPaths(data=tmp_path / "data", cache=tmp_path / "cache")
    app_log.setup(paths)
    return paths


def test_versions_machine_and_log_tail_are_in(paths):
    logging.getLogger("codeact_desktop.tests").warning("a figure for the report: %d", 4242)
    report = diagnostic_report(paths)
    for name in ("jupyter_client", "ipykernel", "numpy", "llama_cpp_python"):
        assert f"{name}: {metadata.version(name)}" in report
    assert "PySide6: " in report and "PySide6: not installed" not in report
    assert f"Python: {platform.python_version()}" in report and "CPUs: " in report and "memory: " in report
    assert "a figure for the report: 4242" in report
    assert f"logs: {paths.logs}" in report and "backend: none loaded" in report


def test_backend_and_kernel_restrictions_are_in_and_the_conversation_is_not(paths, tmp_path, make_kernel):
    marker = f"MARKER-{uuid.uuid4().hex}"
    store = HistoryStore(paths.history_db)
    conversation = store.create_conversation(paths.workspaces, title=f"about {marker}")
    conversation.add_message("user", "user", f"My secret plan: {marker}")
    kernel = make_kernel(conversation.workspace)
    report = diagnostic_report(paths, backend=ScriptedBackend([]), kernel=kernel, log_lines=500)
    store.close()
    assert marker not in report
    assert "kind: scripted" in report and "state: ready" in report
    for layer in kernel.sandbox.layers:
        assert f"layer: {layer}" in report
    assert ("not isolated: nothing" in report) == (not kernel.sandbox.missing)


@pytest.mark.model
def test_the_model_file_and_its_load(paths, llama_backend, gguf_path):
    report = diagnostic_report(paths, backend=llama_backend)
    assert f"file: {gguf_path.name}" in report and "quantisation: Q4_K_M" in report
    assert "GPU layers: 0" in report and "context: 4096 tokens" in report
    assert "backends: " in report and "not loaded in this process" not in report


def test_the_report_imports_no_qt(tmp_path):
    code = ("import sys; from codeact_desktop.diagnostics import diagnostic_report; "
            "from codeact_desktop.paths import AppPaths; from pathlib import Path; "
            f"r = diagnostic_report(AppPaths(data=Path({str(tmp_path)!r}), cache=Path({str(tmp_path)!r}))); "
            "assert 'PySide6' in r; print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
