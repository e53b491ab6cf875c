"""llama.cpp in-process (llama-cpp-python).

One worker thread owns the ``Llama`` object (it is not thread-safe) and serves requests
in order; the caller's thread receives the pieces through a queue, so the agent (and a
window above it) never waits inside llama.cpp. Cancellation is an event the worker
checks between tokens, and between batches while it reads a long prompt.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, NamedTuple

from .. import defaults
from ..app_log import safe_description
from ..models.gguf_file import GGUFError
from ..models.header_cache import cached_inspect
from ..models.hardware import KV_TYPES, Hardware, choose_plan, detect_hardware
from .base import (
    BackendError,
    BackendInfo,
    ChatBackend,
    GenerationParams,
    GenerationResult,
    Message,
    ProgressHook,
)
from .chat_template import bounded_formatter, bounded_render
from .chatml import IM_END, chatml_prompt
from .prompt_cache import PromptCache, restore_sequence, save_sequence

DEFAULT_N_CTX = defaults.N_CTX
DEFAULT_N_BATCH = 512
# Fewer tokens than this are read again faster than a state is saved and looked up.
MIN_CACHED_TOKENS = 256
_DONE = object()
log = logging.getLogger(__name__)


class _Progress(NamedTuple):
    """Put in the pieces queue by the worker: how far it has read the prompt."""

    done: int
    total: int


class _Either:
    """Set when either event is (the worker checks only ``is_set``)."""

    def __init__(self, *events: threading.Event):
        self._events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self._events)


def default_threads() -> int:
    # llama.cpp is fastest on physical cores; leave one for the UI and the kernel.
    return max(1, (os.cpu_count() or 2) - 1) if (os.cpu_count() or 1) > 2 else (os.cpu_count() or 1)


class LlamaCppBackend(ChatBackend):
    """A GGUF run by llama.cpp in this process, on its own worker thread."""

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_gpu_layers: int | None = None,
        n_threads: int | None = None,
        chat_format: str = "auto",  # "auto" | "chatml" | "gguf"
        seed: int = 0,
        hardware: Hardware | None = None,  # detected when not given
        n_batch: int = DEFAULT_N_BATCH,  # prompt tokens per llama.cpp decode call
        kv_cache_ram: int = 0,  # bytes of other conversations' KV state kept in memory (0: none)
        kv_cache_folder: Path | None = None,  # where states beyond that spill, and survive a restart
        kv_cache_disk: int = 0,  # bytes of them kept there
        kv_type: str = "auto",  # the KV cache's type: "f16", "q8_0", or "auto" (the load plan picks)
        flash_attention: bool = True,
        header_cache: Path | None = None,  # where the file's header is kept for the next load
    ):
        try:
            gguf = cached_inspect(model_path, header_cache)
        except GGUFError as exc:
            log.warning("not a usable GGUF: %s", safe_description(exc))
            raise BackendError(str(exc)) from exc
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")
        self._path = Path(model_path)
        self._n_batch = n_batch
        # GPU layers and a context that fit this machine, with the reasons shown to the user.
        self.plan = choose_plan(gguf, hardware or detect_hardware(), n_ctx,
                                -1 if n_gpu_layers is None else n_gpu_layers, kv_type, flash_attention)
        notes: list[str] = list(self.plan.reasons)
        n_ctx, n_gpu_layers = self.plan.n_ctx, self.plan.n_gpu_layers
        self.n_threads = n_threads or default_threads()
        load = lambda layers: self._load(n_ctx, layers, seed)  # noqa: E731
        try:
            self._llm, self.placement = self._worker.submit(load, n_gpu_layers).result()
        except Exception as exc:
            if n_gpu_layers == 0:
                log.error("llama.cpp could not load the model on the CPU", exc_info=True)
                self._worker.shutdown()
                raise BackendError(f"llama.cpp could not load {self._path.name}: {exc}") from exc
            # GPU load failed (out of VRAM, driver): the CPU still works; say why.
            log.warning("llama.cpp could not load %d layers on the GPU; trying the CPU", n_gpu_layers, exc_info=True)
            notes.append(f"GPU offload failed, running on the CPU: {exc}")
            try:
                self._llm, self.placement = self._worker.submit(load, 0).result()
            except Exception as exc2:
                log.error("llama.cpp could not load the model on the CPU either", exc_info=True)
                self._worker.shutdown()
                raise BackendError(f"llama.cpp could not load {self._path.name}: {exc2}") from exc2
            n_gpu_layers = 0
        # What llama.cpp did, from its own log, not what was asked for.
        device = "gpu" if self.placement.layers_on_gpu else "cpu"
        if n_gpu_layers != 0 or self.placement.layers_on_gpu:
            notes.append(f"llama.cpp put {self.placement.describe()}")
        fmt, fmt_note = self._choose_chat_format(chat_format, gguf)
        if fmt_note:
            notes.append(fmt_note)
        self._chat_format = fmt
        self.info = BackendInfo(
            kind="llama.cpp",
            model=gguf.name,
            n_ctx=self._llm.n_ctx(),
            chat_format=fmt,
            device=device,
            device_name=", ".join(self.placement.gpu_devices) if device == "gpu" else "",
            notes=notes,
            model_file=self._path.name,
            model_bytes=gguf.size,
            quantisation=gguf.quantisation,
            gpu_layers=self.placement.layers_on_gpu or 0,
        )
        self.n_gpu_layers = self.placement.layers_on_gpu or 0
        self.kv_cache = self._open_kv_cache(gguf, kv_cache_ram, kv_cache_folder, kv_cache_disk)
        log.info("loaded a %s model (%d bytes, %s): context %d, %d layers on the GPU, %d threads, KV cache %s, "
                 "flash attention %s", gguf.architecture, gguf.size, gguf.quantisation, self.info.n_ctx,
                 self.n_gpu_layers, self.n_threads, self.plan.kv_type, "on" if self.plan.flash_attention else "off")

    def _open_kv_cache(self, gguf, ram: int, folder: Path | None, disk: int) -> PromptCache | None:
        if ram <= 0 and disk <= 0:
            return None
        # A state is only valid for this very file and context: its name, size and date, and
        # what shapes the KV cells (context length, the cache's type and flash attention, which
        # lays the values out differently; GPU layers do not change the bytes).
        stat = self._path.stat()
        key = (f"{self._path.name}|{stat.st_size}|{stat.st_mtime_ns}|{gguf.architecture}|ctx={self._llm.n_ctx()}"
               f"|kv={self.plan.kv_type}|fa={int(self.plan.flash_attention)}")
        return PromptCache(key, ram, folder, disk)

    def _load(self, n_ctx: int, n_gpu_layers: int, seed: int):
        from llama_cpp import Llama

        from ..native import ggml_backends, llama_log

        gpus = ggml_backends.load().gpus  # a bundle's backend modules, before llama.cpp looks elsewhere
        with llama_log.watched() as lines:
            try:
                llm = Llama(
                    model_path=str(self._path),
                    n_ctx=n_ctx,
                    n_gpu_layers=n_gpu_layers,
                    n_threads=self.n_threads,
                    n_batch=self._n_batch,
                    flash_attn=self.plan.flash_attention,
                    type_k=KV_TYPES[self.plan.kv_type].ggml_type,
                    type_v=KV_TYPES[self.plan.kv_type].ggml_type,
                    seed=seed,
                    verbose=False,
                )
            except Exception as exc:  # llama-cpp-python says only "failed to load": add llama.cpp's why
                why = llama_log.errors_in("".join(lines))
                raise RuntimeError(f"{exc} ({why})" if why else str(exc)) from exc
        return llm, llama_log.placement_from("".join(lines), {d.name for d in gpus})

    # -- prompt format ---------------------------------------------------------------

    def _choose_chat_format(self, requested: str, gguf) -> tuple[str, str]:
        im_end_is_one_token = len(self._tokenize(IM_END, add_bos=False)) == 1
        if requested == "chatml" or (requested == "auto" and gguf.looks_like_codeact()):
            if not im_end_is_one_token:
                return "chatml", f"{IM_END} is not a single token in this model: replies may not stop cleanly"
            return "chatml", ""
        if gguf.chat_template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            llm = self._llm
            eos, bos = llm.token_eos(), llm.token_bos()
            self._formatter = bounded_formatter(Jinja2ChatFormatter(
                template=gguf.chat_template,
                eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
                bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
                stop_token_ids=[eos],
            ))
            return "gguf", ""
        builtin = _BUILTIN_TEMPLATES.get(gguf.architecture)
        if builtin:
            self._builtin = builtin
            return f"llama.cpp:{builtin[0]}", f"no chat template in the file: using llama.cpp's built-in '{builtin[0]}'"
        return "chatml", "no chat template in the file: using ChatML"

    def _prompt_text(self, messages: list[Message]) -> tuple[str, list[str]]:
        if self._chat_format == "chatml":
            return chatml_prompt(messages), [IM_END]
        if self._chat_format.startswith("llama.cpp:"):
            name, stop = self._builtin
            return _apply_builtin_template(name, messages), [stop]
        response = bounded_render(lambda: self._formatter(messages=messages))
        stops = response.stop if isinstance(response.stop, list) else [response.stop] if response.stop else []
        return response.prompt, stops

    def _tokenize(self, text: str, add_bos: bool) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def _prompt_tokens(self, messages: list[Message]) -> tuple[list[int], list[str]]:
        text, stops = self._prompt_text(messages)
        bos = self._llm.token_bos()
        bos_text = self._llm._model.token_get_text(bos) if bos != -1 else ""
        # Templates that write the BOS themselves must not get a second one.
        add_bos = bos != -1 and not (bos_text and text.startswith(bos_text))
        if add_bos and self._llm.metadata.get("tokenizer.ggml.add_bos_token") == "false":
            add_bos = False
        return self._tokenize(text, add_bos=add_bos), stops

    def count_tokens(self, messages: list[Message]) -> int:
        return self._worker.submit(lambda: len(self._prompt_tokens(messages)[0])).result()

    def forget(self, messages: list[Message]) -> None:
        """Drops the saved states of the conversation that starts with ``messages`` (its
        system prompt and first message), in memory and on disk."""
        if self.kv_cache is None or len(messages) < 2:
            return

        def drop() -> int:
            start = self._prompt_tokens(messages[:2])[0][:-2]  # the generation prompt may tokenise apart
            shared = len(self._prompt_tokens(messages[:1])[0]) - 4  # every conversation's system prompt
            return self.kv_cache.forget(start, shared)

        log.info("dropped %d saved KV state(s) of a deleted conversation", self._worker.submit(drop).result())

    # -- generation ------------------------------------------------------------------

    def generate(
        self,
        messages: list[Message],
        params: GenerationParams,
        on_piece: Callable[[str], None],
        cancel: threading.Event | None = None,
        *,
        on_progress: ProgressHook | None = None,
    ) -> GenerationResult:
        cancel = cancel or threading.Event()
        pieces: queue.Queue = queue.Queue()
        abandoned = threading.Event()  # the caller's side failed (a listener raised): stop the worker too
        future = self._worker.submit(self._generate_on_worker, messages, params, pieces, _Either(cancel, abandoned))
        started = time.monotonic()
        first = None
        try:
            while True:
                piece = pieces.get()
                if piece is _DONE:
                    break
                if isinstance(piece, _Progress):
                    if on_progress is not None:
                        on_progress(piece.done, piece.total)
                    continue
                if first is None:
                    first = time.monotonic() - started
                on_piece(piece)
        except BaseException:
            abandoned.set()
            raise
        try:
            result: GenerationResult = future.result()
        except BackendError:
            raise
        except Exception as exc:  # llama.cpp failing mid-reply (a decode error, memory): say so plainly
            log.error("llama.cpp failed while generating", exc_info=True)
            raise BackendError(
                f"llama.cpp stopped while writing the reply ({type(exc).__name__}: {exc}). "
                "What came before is kept; send the message again, or load the model with a smaller context."
            ) from exc
        result.seconds = time.monotonic() - started
        result.first_piece_seconds = first
        return result

    def _generate_on_worker(self, messages, params, pieces, cancel) -> GenerationResult:
        llm = self._llm
        try:
            tokens, format_stops = self._prompt_tokens(messages)
            if len(tokens) + 1 > llm.n_ctx():
                raise BackendError(
                    f"The prompt is {len(tokens)} tokens; the model's context holds {llm.n_ctx()}."
                )
            reused = _reused_prefix(llm, tokens)
            if self.kv_cache is not None:
                reused = self._switch_state(tokens, reused)
            evaluated = len(tokens) - reused
            # A long new part is read here, batch by batch, so the user sees how far it is
            # and Stop works before the first token. A cache that cannot be cut back to the
            # shared prefix (recurrent models) is left to create_completion, which starts over.
            if evaluated > llm.n_batch and llm._ctx.kv_cache_seq_rm(-1, reused, -1) is not False:
                if not self._read_prompt(tokens, reused, pieces, cancel):
                    return GenerationResult(text="", finish_reason="cancelled", prompt_tokens=len(tokens),
                                            prompt_tokens_evaluated=llm.n_tokens - reused)
            stops = list(dict.fromkeys([*params.stop, *format_stops]))
            max_tokens = min(params.max_tokens, llm.n_ctx() - len(tokens))
            text_parts: list[str] = []
            finish = "stop"
            n_out = 0
            stream = llm.create_completion(
                tokens,
                max_tokens=max_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                stop=stops,
                stream=True,
            )
            for chunk in stream:
                choice = chunk["choices"][0]
                if choice["text"]:
                    text_parts.append(choice["text"])
                    pieces.put(choice["text"])
                n_out += 1
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                if cancel.is_set():  # checked between tokens
                    finish = "cancelled"
                    stream.close()
                    break
            return GenerationResult(
                text="".join(text_parts),
                finish_reason=finish,
                prompt_tokens=len(tokens),
                prompt_tokens_evaluated=evaluated,
                completion_tokens=max(0, llm.n_tokens - len(tokens) + 1) if n_out else 0,
            )
        finally:
            pieces.put(_DONE)

    def _read_prompt(self, tokens: list[int], reused: int, pieces: queue.Queue, cancel: threading.Event) -> bool:
        """Evaluates the prompt after the cached prefix, all but its last token, one batch
        at a time; create_completion then finds those in the cache and evaluates only the
        last one before it samples. False: cancelled (what was read stays cached)."""
        llm = self._llm
        total = len(tokens) - reused
        llm.n_tokens = reused  # eval() writes from here on
        pieces.put(_Progress(0, total))
        for start in range(reused, len(tokens) - 1, llm.n_batch):
            if cancel.is_set():
                return False
            llm.eval(tokens[start:min(start + llm.n_batch, len(tokens) - 1)])
            pieces.put(_Progress(llm.n_tokens - reused, total))
        if cancel.is_set():
            return False
        pieces.put(_Progress(total, total))  # the last token is read along with the first reply token
        return True

    def _switch_state(self, tokens: list[int], reused: int) -> int:
        """Before the context is overwritten by another conversation, its state goes into the
        cache; a prompt that the cache holds more of than the context comes back from it.
        Returns how many prompt tokens the context now holds."""
        llm, cache = self._llm, self.kv_cache
        if llm.n_tokens - reused >= MIN_CACHED_TOKENS:  # what is about to be lost is worth keeping
            self._keep_context_state()
        entry, n = cache.longest_prefix(tokens[:-1])
        if entry is None or n - reused < MIN_CACHED_TOKENS:
            return reused
        data = cache.state(entry)
        if data is None or not restore_sequence(llm, entry.tokens, data):
            log.warning("a saved KV state of %d tokens could not be restored; reading the prompt again",
                        len(entry.tokens))
            return _reused_prefix(llm, tokens)
        log.info("restored the KV state of %d tokens (%d of them this prompt's)", len(entry.tokens), n)
        return _reused_prefix(llm, tokens)

    def _keep_context_state(self) -> None:
        """What the context holds now, into the cache, keyed by its tokens."""
        self.kv_cache.put(self._llm._input_ids[: self._llm.n_tokens], save_sequence(self._llm))

    def close(self) -> None:
        def _free():
            if self.kv_cache is not None and self.kv_cache.folder is not None:
                try:  # the conversation in the context now comes back after a restart too
                    if self._llm.n_tokens >= MIN_CACHED_TOKENS:
                        self._keep_context_state()
                    self.kv_cache.persist()
                except (OSError, RuntimeError):
                    log.warning("the KV states could not be kept for the next start", exc_info=True)
            self._llm.close()

        try:
            self._worker.submit(_free).result(timeout=30)
        finally:
            self._worker.shutdown(wait=False)


# Families whose GGUFs often ship without a template, mapped to llama.cpp's built-in one
# (name, end-of-turn text).
_BUILTIN_TEMPLATES = {
    "gemma": ("gemma", "<end_of_turn>"),
    "gemma2": ("gemma", "<end_of_turn>"),
    "gemma3": ("gemma", "<end_of_turn>"),
}


def _apply_builtin_template(name: str, messages: list[Message]) -> str:
    import ctypes

    import llama_cpp

    chat = (llama_cpp.llama_chat_message * len(messages))(
        *[llama_cpp.llama_chat_message(role=m["role"].encode(), content=m["content"].encode()) for m in messages]
    )
    size = 4096 + 2 * sum(len(m["content"].encode()) for m in messages)
    buf = ctypes.create_string_buffer(size)
    n = llama_cpp.llama_chat_apply_template(name.encode(), chat, len(messages), True, buf, size)
    if n < 0 or n > size:
        raise BackendError(f"llama.cpp could not apply its '{name}' chat template")
    return buf.raw[:n].decode("utf-8")


def _reused_prefix(llm, tokens: list[int]) -> int:
    """How many prompt tokens llama-cpp-python will take from the KV cache: it keeps the
    longest common prefix with what it evaluated last, and evaluates at least the prompt's
    last token again (see ``Llama.generate``; newer versions skip even that when the
    whole prompt is exactly what is cached)."""
    cached = llm._input_ids[: llm.n_tokens]
    n = 0
    for a, b in zip(cached, tokens[:-1]):
        if a != b:
            break
        n += 1
    return n
