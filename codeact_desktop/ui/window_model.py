"""The window's side of the model: the welcome page while there is none, a new backend
taken by every conversation (the old one closed in the background once it is replaced),
and a failed load shown without losing the model in use. Also what the model holds of
the open conversation: the status bar's "context used / n_ctx"."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..llm.base import ChatBackend

log = logging.getLogger(__name__)


def _model_status(info) -> str:
    """"llama.cpp · model.gguf · GPU (Vulkan0)": the status bar's model label."""
    device = f" ({info.device_name})" if info.device_name else ""
    return f"{info.kind} · {info.model} · {info.device.upper()}{device}"


def _last_model_notice(conversation) -> tuple[str, set[str]] | None:
    """(model, lines) of the last notice about the model stored in a conversation."""
    for message in reversed(conversation.messages()):
        if message["kind"] == "notice" and "model" in (meta := json.loads(message["meta"] or "{}")):
            return meta["model"], set(message["content"].splitlines())
    return None


class WindowModel:
    """The main window's part that follows the model (mixed into ``MainWindow``, which owns
    ``models``, ``backend``, ``controllers`` and ``status``)."""

    def show_models(self) -> None:
        """The welcome page: download a model, use a file, or connect to a server."""
        self.models.welcome.back_button.setVisible(self.backend is not None)
        self.models.welcome.refresh()
        self.pages.setCurrentWidget(self.models.welcome)

    def show_chat(self) -> None:
        if self.backend is not None:
            self.pages.setCurrentIndex(0)

    def load_model_file(self, path: Path) -> None:
        """Loads a GGUF the user chose; the old model stays until the new one works."""
        if any(c.busy for c in self.controllers.values()):
            self.chat.add_notice("Wait for the answer to finish (or stop it) before changing the model.", error=True)
            return
        if self.models.load_file(path):
            self.status.set_model("Loading the model…")

    def show_model_problem(self, text: str) -> None:
        if self.backend is None:
            self.models.welcome.show_problem(text)
        else:
            self.chat.add_notice(text, error=True)

    def _on_backend_ready(self, backend: ChatBackend, remember: dict) -> None:
        self.models.finished()
        self.reached("model ready")
        old, self.backend = self.backend, backend
        for controller in self.controllers.values():
            controller.set_backend(backend)
        if old is not None and old is not backend:
            self.background.run("close model", old.close)
        if remember:
            for key, value in remember.items():
                setattr(self.settings, key, value)
            self.save_settings()
        self.show_chat()
        info = backend.info
        self.status.set_model(_model_status(info))
        self.status.set_context(info.n_ctx)
        if self._pending_files:
            pending, self._pending_files = self._pending_files, []
            self.new_conversation()
            self.attach(pending)
        elif self.current is None:
            self.choose_first_conversation()
        self._update_controls()  # Send works from now on
        self._tell_about_model(info, chosen=bool(remember))
        self.count_context()  # a new model counts with its own tokenizer

    def _tell_about_model(self, info, chosen: bool) -> None:
        """The model's notes (on the CPU, which chat template) and, when the user chose it or
        it changed, its name: stored in the conversation shown, where they were said. Not
        again at the next start while they stay the same: at the bottom of an old
        conversation they read as new."""
        lines = list(info.notes)
        conversation = self.current.conversation if self.current is not None else None
        last = _last_model_notice(conversation) if conversation is not None else None
        if chosen or (last is not None and last[0] != info.model):
            lines.append(f"Now using {info.model}.")
        text = "\n".join(lines)
        if not text or (not chosen and last is not None and last[0] == info.model
                        and set(text.splitlines()) <= last[1]):
            return
        if conversation is not None:
            conversation.add_message("system", "notice", text, {"model": info.model})
        self.chat.add_notice(text)

    def count_context(self, ended=None) -> None:
        """Shows the context the open conversation takes, counted by the model's tokenizer
        on a background thread: llama.cpp counts on its model's one thread, which a reply
        holds for minutes. So never while a turn runs (the last turn's end counts then, see
        ``_on_busy``; ``ended``: that turn's controller, whose thread may not have quite
        exited), and one count at a time, not a pool thread each blocked on it."""
        self._context_wanted = True
        if (self.backend is None or self.current is None or self._context_counting
                or any(c.busy for c in self.controllers.values() if c is not ended)):
            return
        self._context_wanted, self._context_counting = False, True
        backend, conversation = self.backend, self.current.conversation
        messages, _ = conversation.model_messages()

        def counted(used: int | None) -> None:
            self._context_counting = False
            # Not over a reply's own figures: a turn started since gives those.
            if used is not None and self.backend is backend and self.current is not None \
                    and self.current.conversation is conversation and not self.current.busy:
                self.status.set_context(backend.info.n_ctx, used)
            if self._context_wanted:
                self.count_context()

        def failed(text: str) -> None:
            log.warning("the context could not be counted: %s", text)
            counted(None)

        if not self.background.run("count context", lambda: backend.count_tokens(messages), counted, failed):
            self._context_counting = False  # the window is closing

    def _on_backend_failed(self, message: str) -> None:
        self.models.finished(message if self.backend is None else "")
        if self.backend is None:
            self.status.set_model("No model: see the message above", error=True)  # a load or a connection
            self.show_models()
        else:
            self.status.set_model(_model_status(self.backend.info))
            self.chat.add_notice(f"The new model could not be loaded, so the old one stays: {message}", error=True)
