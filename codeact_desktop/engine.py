"""Wires the engine's parts together: backend, kernel, history. Used by the CLI, the
tests and the window alike."""

from __future__ import annotations

from pathlib import Path

from .agent.attachments import remove_abandoned_copies
from .kernel.environment import build_font_cache, kernel_environment
from .kernel.conversation_kernel import ConversationKernel
from .kernel.state import KernelListener
from .kernel.kernel_process import remove_abandoned_runtime_folders
from .kernel.venv import KernelVenv, ensure_kernel_venv
from .llm.base import BackendError, ChatBackend
from .paths import AppPaths
from .store.history import HistoryStore
from .store.recovery import recover_interrupted


def recover_after_stop(store: HistoryStore) -> int:
    """What a killed app left behind, cleaned at the next start: half-copied attachments in
    each workspace, kernels' runtime folders, and answers cut off (returns how many)."""
    for row in store.query("SELECT workspace FROM conversations"):
        remove_abandoned_copies(Path(row["workspace"]))
    remove_abandoned_runtime_folders()
    return recover_interrupted(store)


def open_backend(
    *,
    model_path: str | None = None,
    base_url: str | None = None,
    model_name: str | None = None,
    api_key: str | None = None,
    n_ctx: int | None = None,
    n_gpu_layers: int | None = None,
    n_threads: int | None = None,
    kv_cache_ram: int = 0,
    kv_cache_disk: int = 0,
) -> ChatBackend:
    if model_path and base_url:
        raise BackendError("Give either a GGUF model file or a server URL, not both.")
    if model_path:
        from .llm.llama_inprocess import DEFAULT_N_CTX, LlamaCppBackend

        return LlamaCppBackend(
            model_path, n_ctx=n_ctx or DEFAULT_N_CTX, n_gpu_layers=n_gpu_layers, n_threads=n_threads,
            kv_cache_ram=kv_cache_ram, kv_cache_folder=AppPaths.default().kv_states, kv_cache_disk=kv_cache_disk,
        )
    if base_url:
        from .llm.openai_http import OpenAIBackend

        return OpenAIBackend(base_url, model_name, api_key=api_key, n_ctx=n_ctx)
    raise BackendError("No model: give a GGUF file (--model) or a server (--base-url).")


def kernel_env(paths: AppPaths, venv: KernelVenv, workspace: Path) -> dict[str, str]:
    """The environment of ``workspace``'s kernel, with its own home."""
    build_font_cache(paths.font_cache)  # once; a glob afterwards
    return kernel_environment(venv, paths.kernel_home_for(workspace), paths.font_cache)


def start_kernel(paths: AppPaths, workspace: Path, *, background: bool = True, network: bool = False,
                 on_state: KernelListener | None = None) -> ConversationKernel:
    """Provisions the kernel venv and starts a kernel for ``workspace``.

    In the background by default, so it is ready by the time the model's first action is.
    ``on_state`` is subscribed before the start, so it hears every state from STARTING on.
    """
    venv = ensure_kernel_venv(paths.kernel_venv)
    kernel = ConversationKernel(venv, workspace, kernel_env(paths, venv, workspace), network=network)
    if on_state is not None:
        kernel.subscribe(on_state)
    if background:
        kernel.start_in_background()
    else:
        kernel.start()
    return kernel
