"""The window's side of the model: the welcome page while there is none, a new backend
taken by every conversation (the old one closed in the background once it is replaced),
and a failed load shown without losing the model in use."""

from __future__ import annotations

from pathlib import Path

from ..llm.base import ChatBackend


def _model_status(info) -> str:
    """"llama.cpp · model.gguf · GPU (Vulkan0)": the status bar's model label."""
    device = f" ({info.device_name})" if info.device_name else ""
    return f"{info.kind} · {info.model} · {info.device.upper()}{device}"


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
        for note in info.notes:
            self.chat.add_notice(note)
        if self._pending_files:
            pending, self._pending_files = self._pending_files, []
            self.new_conversation()
            self.attach(pending)
        elif self.current is None:
            self.choose_first_conversation()
        self._update_controls()  # Send works from now on
        if remember:
            self.chat.add_notice(f"Now using {info.model}.")

    def _on_backend_failed(self, message: str) -> None:
        self.models.finished(message if self.backend is None else "")
        if self.backend is None:
            self.status.set_model("The model failed to load", error=True)
            self.show_models()
        else:
            self.status.set_model(_model_status(self.backend.info))
            self.chat.add_notice(f"The new model could not be loaded, so the old one stays: {message}", error=True)
