"""Getting a model into the window: the welcome page's choices, the download dialog,
checking a GGUF before it is offered, and loading on a worker so the window never
waits. The window reacts to ``ready`` and ``failed``; the old model stays until a new
one has loaded."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QObject, Signal

from ..sizes import human_size
from ..engine import open_backend
from ..llm.base import ChatBackend
from ..models.catalogue import CatalogueEntry, load_catalogue
from ..models.gguf_file import GGUFError, GGUFInfo, inspect_gguf
from ..models.hardware import Hardware, detect_hardware, memory_needed
from ..paths import AppPaths
from ..settings import Settings
from .background import BackgroundWork

if TYPE_CHECKING:
    from ..models.download import VerifiedFiles
    from .download_dialog import DownloadDialog
    from .welcome import WelcomePage

# Settings to store once a backend has loaded, so the next start uses it.
Remember = dict


class ModelSetup(QObject):
    """Gets a model for the window (welcome page, downloads, a chosen GGUF, a server) and
    loads it on the window's background pool."""

    ready = Signal(object, object)  # backend, Remember
    failed = Signal(str)
    welcome_built = Signal(object)  # the WelcomePage, for the window's pages

    def __init__(self, paths: AppPaths, settings: Callable[[], Settings], window, background: BackgroundWork):
        super().__init__(window)
        self.paths, self.settings, self.window, self.background = paths, settings, window, background
        self.loading = False
        self.download_dialog: DownloadDialog | None = None
        self.hardware: Hardware | None = None
        self._attach_instead: Callable[[Path], None] | None = None  # for the file being offered
        self._welcome: WelcomePage | None = None

    @cached_property
    def verified(self) -> VerifiedFiles:
        from ..models.download import VerifiedFiles

        return VerifiedFiles(self.paths.verified_models)

    @property
    def welcome(self) -> WelcomePage:
        """Built when first wanted: a start that loads the user's model does not show it
        (its catalogue, downloads and imports took 0.07 s of the UI thread at every start)."""
        if self._welcome is None:
            from .welcome import WelcomePage

            page = self._welcome = WelcomePage(load_catalogue(), self.paths.models, self.verified)
            page.download_requested.connect(self.download)
            page.use_file_requested.connect(self.window.load_model_file)
            page.pick_file_requested.connect(self.window.pick_model)
            page.connect_requested.connect(self.connect_server)
            page.set_busy(self.loading)
            # nvidia-smi may take a second: never on the UI thread.
            self.background.run("detect hardware", detect_hardware, self._hardware_found)
            self.welcome_built.emit(page)
        return self._welcome

    def _hardware_found(self, hardware: Hardware) -> None:
        self.hardware = hardware
        self.welcome.set_hardware(hardware)

    # -- loading ----------------------------------------------------------------------

    def load(self, load_backend: Callable[[], ChatBackend], remember: Remember) -> bool:
        if self.loading:
            return False
        self.loading = True
        if self._welcome is not None:
            self._welcome.set_busy(True)
            self._welcome.show_problem("")

        # A failure is shown to the user (and logged by the pool), not raised into Qt. The
        # kernel's environment is provisioned by the kernel's own start, at the same time.
        if not self.background.run("load model", load_backend, lambda backend: self.ready.emit(backend, remember),
                                   self.failed.emit):
            self.loading = False  # the window is closing
            return False
        return True

    def finished(self, problem: str = "") -> None:
        """Called by the window once it has taken the backend or shown the failure."""
        self.loading = False
        if self._welcome is None and not problem:
            return  # never shown yet: it is built as things are when it is
        self.welcome.set_busy(False)
        self.welcome.show_problem(problem)
        self.welcome.refresh()

    def load_file(self, path: Path) -> bool:
        options = self.settings().backend_options()
        return self.load(lambda: open_backend(model_path=str(path), **options),
                         {"model_path": str(path), "base_url": "", "model_name": ""})

    def connect_server(self, url: str, model_name: str) -> bool:
        return self.load(lambda: open_backend(base_url=url, model_name=model_name or None),
                         {"model_path": "", "base_url": url, "model_name": model_name})

    # -- a GGUF the user chose: checked, described, then offered --------------------------

    def offer_file(self, path: Path, attach_instead: Callable[[Path], None] | None = None) -> None:
        """Reads the file's header on a worker, then asks the user with what it found."""
        self._attach_instead = attach_instead

        hardware = self.hardware

        def work():
            try:
                return inspect_gguf(path), None, hardware or detect_hardware()
            except GGUFError as exc:
                return None, str(exc), None
            except OSError as exc:
                return None, f"{path.name} could not be read: {exc}", None

        self.background.run("inspect model file", work, lambda found: self._offer(path, *found))

    def _offer(self, path: Path, info: GGUFInfo | None, error: str | None, hardware: Hardware | None) -> None:
        attach = self._attach_instead
        if info is None:
            text = f"{error}\n\nIt was not loaded" + ("; attach it to the conversation as a file instead?"
                                                     if attach else ".")
            if attach and self.window.confirm("Not a usable model", text):
                attach(path)
            elif not attach:
                self.window.show_model_problem(error)
            return
        rows = "\n".join(f"{label}: {value}" for label, value in info.describe())
        warning = ""
        needed = memory_needed(info, min(self.settings().n_ctx, info.context_length or self.settings().n_ctx))
        if hardware is not None and needed > hardware.ram_total:
            warning = (f"\n\nIt needs about {human_size(needed)} of memory and this computer has "
                       f"{human_size(hardware.ram_total)}: it may be very slow.")
        question = f"Use {path.name} as the model?\n\n{rows}{warning}"
        if attach:
            question += "\n\nChoose No to attach it to the conversation as a file instead."
        if self.window.confirm("Use this model?", question):
            self.window.load_model_file(path)
        elif attach:
            attach(path)

    # -- downloads ----------------------------------------------------------------------

    def download(self, entry: CatalogueEntry) -> DownloadDialog:
        from .download_dialog import DownloadDialog

        dialog = self.download_dialog
        if dialog is None or dialog.entry != entry:
            dialog = self.download_dialog = DownloadDialog(entry, self.paths.models, self.verified, self.window)
            dialog.downloaded.connect(self.window.load_model_file)
            dialog.finished.connect(lambda _result: self.welcome.refresh())
        dialog.open()
        dialog.start()
        return dialog
