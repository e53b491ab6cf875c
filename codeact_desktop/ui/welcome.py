"""The first screen when there is no model: download one, use a GGUF already on this
computer, or connect to an OpenAI-compatible server. Only shows facts and emits the
user's choice; the window does the work."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QFormLayout, QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QScrollArea, QVBoxLayout, QWidget,
)

from ..sizes import human_size
from ..models.catalogue import CatalogueEntry
from ..models.download import DISK_MARGIN_BYTES, VerifiedFiles, existing_parent, find_downloaded, partial_download
from ..models.hardware import Hardware
from .theme import tone

SERVER_HINT = ("vLLM and llama.cpp's server usually listen on http://localhost:8000/v1 or :8080/v1, "
               "Ollama on http://localhost:11434/v1, LM Studio on http://localhost:1234/v1.")


def _card(title: str) -> tuple[QFrame, QVBoxLayout]:
    frame = QFrame()
    frame.setObjectName("welcomeCard")
    layout = QVBoxLayout(frame)
    heading = QLabel(title)
    heading.setObjectName("cardTitle")
    layout.addWidget(heading)
    return frame, layout


def _label(text: str = "", name: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    if name:
        label.setObjectName(name)
    return label


class WelcomePage(QWidget):
    """The page shown when no model is chosen: it offers the catalogue, a GGUF file or a server."""

    download_requested = Signal(object)  # CatalogueEntry
    use_file_requested = Signal(object)  # Path of a verified download
    pick_file_requested = Signal()
    connect_requested = Signal(str, str)  # base URL, model name ("" = the server's first)
    back_requested = Signal()

    def __init__(self, entries: list[CatalogueEntry], models_dir: Path, verified: VerifiedFiles, parent=None):
        super().__init__(parent)
        self.entries, self.models_dir, self.verified = entries, models_dir, verified
        self.hardware: Hardware | None = None
        self._downloaded: Path | None = None
        page = QWidget()
        page.setObjectName("welcome")
        column = QVBoxLayout(page)
        column.setContentsMargins(48, 32, 48, 32)
        column.setSpacing(14)
        title = QLabel("Welcome to CodeAct Desktop")
        title.setObjectName("welcomeTitle")
        column.addWidget(title)
        column.addWidget(_label("A language model on your computer that does what you ask by writing and running "
                                "Python. Choose where its model comes from; you can change this later in "
                                "File → Models."))
        self.problem = _label(name="errorNotice")
        self.problem.setTextFormat(Qt.PlainText)  # it may quote a server or a dropped file
        self.problem.hide()
        self.status = _label("Loading the model… (a 7 GB model takes 10–60 seconds)", name="notice")
        self.status.setAccessibleName("model status")
        self.status.hide()
        column.addWidget(self.problem)
        column.addWidget(self.status)

        card, layout = _card("Download a model")
        self.model_choice = QComboBox()
        self.model_choice.setAccessibleName("model to download")
        for entry in entries:
            self.model_choice.addItem(entry.name + ("  (recommended)" if entry.default else ""))
        self.model_choice.currentIndexChanged.connect(self.refresh)
        self.about = _label(name="hint")
        self.facts = _label()
        self.facts.setTextFormat(Qt.RichText)
        self.download_button = QPushButton("Download")
        self.download_button.setAccessibleName("download the model")
        self.download_button.clicked.connect(self._download_clicked)
        layout.addWidget(self.model_choice)
        layout.addWidget(self.about)
        layout.addWidget(self.facts)
        layout.addWidget(self.download_button, 0, Qt.AlignLeft)
        column.addWidget(card)

        card, layout = _card("Use a model file already on this computer")
        layout.addWidget(_label("Any GGUF model works; CodeActAgent models act best. It is checked before it is "
                                "used. You can also drop a .gguf file onto this window."))
        choose = QPushButton("Choose a .gguf file…")
        choose.setAccessibleName("choose a model file")
        choose.clicked.connect(self.pick_file_requested)
        layout.addWidget(choose, 0, Qt.AlignLeft)
        column.addWidget(card)

        card, layout = _card("Connect to a model server")
        layout.addWidget(_label("An OpenAI-compatible server on this computer or your network. " + SERVER_HINT,
                                name="hint"))
        form = QFormLayout()
        self.server_url = QLineEdit(placeholderText="http://localhost:8080/v1")
        self.server_url.setAccessibleName("server address")
        self.server_model = QLineEdit(placeholderText="optional: the server's first model")
        self.server_model.setAccessibleName("server model name")
        form.addRow("Address", self.server_url)
        form.addRow("Model", self.server_model)
        layout.addLayout(form)
        self.connect_button = QPushButton("Connect")
        self.connect_button.setAccessibleName("connect to the server")
        self.connect_button.clicked.connect(self._connect_clicked)
        self.server_url.returnPressed.connect(self._connect_clicked)
        layout.addWidget(self.connect_button, 0, Qt.AlignLeft)
        column.addWidget(card)

        row = QHBoxLayout()
        self.back_button = QPushButton("← Back to the conversation")
        self.back_button.setAccessibleName("back to the conversation")
        self.back_button.clicked.connect(self.back_requested)
        self.back_button.hide()
        row.addWidget(self.back_button)
        row.addStretch(1)
        column.addLayout(row)
        column.addStretch(1)

        page.setMaximumWidth(900)  # long lines are hard to read on a wide window
        holder = QWidget()
        centred = QHBoxLayout(holder)
        centred.addWidget(page)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setWidget(holder)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        default = next((i for i, e in enumerate(entries) if e.default), 0)
        self.model_choice.setCurrentIndex(default)
        self.refresh()

    @property
    def entry(self) -> CatalogueEntry | None:
        index = self.model_choice.currentIndex()
        return self.entries[index] if 0 <= index < len(self.entries) else None

    def set_hardware(self, hardware: Hardware) -> None:
        self.hardware = hardware
        self.refresh()

    def show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))

    def set_busy(self, busy: bool) -> None:
        """While a model loads or a server is tried, the choices wait."""
        for button in (self.download_button, self.connect_button):
            button.setEnabled(not busy)
        self.status.setVisible(busy)

    def refresh(self) -> None:
        entry = self.entry
        if entry is None:
            return
        self._downloaded = find_downloaded(entry, self.models_dir, self.verified)
        have = partial_download(entry, self.models_dir)
        self.about.setText(entry.about)
        self.facts.setText("<br>".join(self._facts(entry, have)))
        if self._downloaded is not None:
            self.download_button.setText("Use it (already downloaded)")
            return
        self.download_button.setText(
            f"Resume download ({human_size(have)} of {human_size(entry.size_bytes)} done)" if have
            else f"Download ({human_size(entry.size_bytes)})")

    def _facts(self, entry: CatalogueEntry, have: int) -> list[str]:
        ok, short = "✓", f"<span style='color:{tone('error')}'>✗</span>"
        free = shutil.disk_usage(existing_parent(self.models_dir)).free
        need_disk = entry.size_bytes - have + DISK_MARGIN_BYTES
        rows = [f"Download: {human_size(entry.size_bytes)} · context up to {entry.n_ctx_train:,} tokens · "
                "needs the internet once; after that everything works offline",
                f"{ok if self._downloaded or free >= need_disk else short} Free disk: {human_size(free)}"
                + ("" if self._downloaded or free >= need_disk else f" (needs {human_size(need_disk)})")]
        if self.hardware is None:
            rows.append(f"Memory needed: about {human_size(entry.ram_needed_bytes)} · checking this computer…")
        else:
            hw = self.hardware
            enough = hw.ram_total >= entry.ram_needed_bytes
            rows.append(f"{ok if enough else short} Memory needed: about {human_size(entry.ram_needed_bytes)}; "
                        f"this computer has {human_size(hw.ram_total)}"
                        + ("" if enough else " — it may be very slow; the smaller model fits better"))
            rows.append("GPU: " + (f"{hw.gpu_name or '/'.join(hw.offload_backends)} "
                                   f"({'/'.join(hw.offload_backends)}), used automatically" if hw.can_offload
                                   else "none found that llama.cpp can use; the model runs on the CPU"))
        if self._downloaded is not None:
            rows.append(f"{ok} Already downloaded and checked: {self._downloaded}")
        return rows

    def _download_clicked(self) -> None:
        if self._downloaded is not None:
            self.use_file_requested.emit(self._downloaded)
        elif self.entry is not None:
            self.download_requested.emit(self.entry)

    def _connect_clicked(self) -> None:
        url = self.server_url.text().strip() or self.server_url.placeholderText()
        self.connect_requested.emit(url, self.server_model.text().strip())
