"""Wires the engine's parts together: backend, kernel, history. Used by the CLI, the
tests and the window alike."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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
    kv_type: str = "auto",
    flash_attention: bool = True,
) -> ChatBackend:
    if model_path and base_url:
        raise BackendError("Give either a GGUF model file or a server URL, not both.")
    if model_path:
        from .llm.llama_inprocess import DEFAULT_N_CTX, LlamaCppBackend

        paths = AppPaths.default()
        return LlamaCppBackend(
            model_path, n_ctx=n_ctx or DEFAULT_N_CTX, n_gpu_layers=n_gpu_layers, n_threads=n_threads,
            kv_cache_ram=kv_cache_ram, kv_cache_folder=paths.kv_states, kv_cache_disk=kv_cache_disk,
            kv_type=kv_type, flash_attention=flash_attention, header_cache=paths.gguf_headers,
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
    """Starts a kernel for ``workspace``, provisioning the kernel venv first if needed.

    In the background by default, so it is ready by the time the model's first action is.
    ``on_state`` is subscribed before the start, so it hears every state from STARTING on.
    """
    def provisioned_env() -> dict[str, str]:  # by the kernel's own start: seconds on a first start
        return kernel_env(paths, ensure_kernel_venv(paths.kernel_venv), workspace)

    kernel = ConversationKernel(KernelVenv(paths.kernel_venv), workspace, provisioned_env, network=network)
    if on_state is not None:
        kernel.subscribe(on_state)
    if background:
        kernel.start_in_background()
    else:
        kernel.start()
    return kernel


@dataclass
class EarlyStart:
    """What a window's start begins before the window is built (its imports and widgets
    take most of a second): the model's load, on a thread of its own, and the kernel of the
    conversation that opens first. The conversation is usable when the slower of the two
    is ready, not after the window and both in turn."""

    model: Future | None
    conversation_id: str | None
    kernel: ConversationKernel | None

    def load_backend(self) -> ChatBackend:
        """The model, once loaded (raises what the load raised)."""
        return self.model.result()


# How long a later start waits for the early kernel's process to be launched. Alone the
# launch takes about 30 ms; on a thread beside the window's build and the model's load it
# waited 0.15 to 0.2 s for the GIL, on the path to the conversation being usable.
LAUNCH_WAIT_S = 0.3


def start_early(paths: AppPaths, store: HistoryStore, load_backend: Callable[[], ChatBackend] | None,
                *, open_conversation: bool = True) -> EarlyStart:
    if load_backend is None:
        return EarlyStart(None, None, None)
    kernel = conversation_id = None
    if open_conversation:  # files open a new conversation instead
        # The top of the window's list (sidebar.choose_first), or the new conversation it would make.
        rows = store.list_conversations()
        conversation = store.open_conversation(rows[0]["id"]) if rows else store.create_conversation(paths.workspaces)
        # The kernel first: it is the slower of the two, and its start wants the GIL for a
        # moment before its own process takes over, so the model's load and the window wait
        # for that moment. Not on a first start: its kernel makes its environment first.
        kernel = start_kernel(paths, conversation.workspace, network=conversation.network_allowed())
        if KernelVenv(paths.kernel_venv).state() is not None:
            kernel.wait_launched(LAUNCH_WAIT_S)
        conversation_id = conversation.id
    model = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-load").submit(load_backend)
    return EarlyStart(model, conversation_id, kernel)
