"""A model download in the window: bytes, speed and time left, Cancel, and Resume or
Try again afterwards. The transfer (models/download.py) runs on the dialog's own
background work, which the window stops when it closes; this only shows its progress and
forwards the user's cancel."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout

from ..sizes import human_size
from ..models.catalogue import CatalogueEntry
from ..models.download import Progress, VerifiedFiles, download_model, partial_download
from .background import BackgroundWork
from .theme import set_tone

PROGRESS_INTERVAL_S = 0.1  # at most ten redraws a second, however fast the bytes come


def progress_text(p: Progress) -> str:
    if p.stage == "verifying":
        return f"Checking the file (SHA-256): {human_size(p.done)} of {human_size(p.total)}"
    text = f"{human_size(p.done)} of {human_size(p.total)}"
    if p.bytes_per_s > 0:
        text += f" · {human_size(int(p.bytes_per_s))}/s"
    if p.eta_s is not None:
        text += f" · about {_duration(p.eta_s)} left"
    return text


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{int(seconds // 3600)} h {round(seconds % 3600 / 60)} min"


class DownloadDialog(QDialog):
    """One catalogue model's download: its progress, Cancel, and Resume or Try again."""

    downloaded = Signal(object)  # the verified Path
    _progress = Signal(object)  # Progress, from the worker

    def __init__(self, entry: CatalogueEntry, models_dir: Path, verified: VerifiedFiles, parent=None):
        super().__init__(parent)
        self.entry, self.models_dir, self.verified = entry, models_dir, verified
        self.cancel_event = threading.Event()
        # Its own, not the window's: one transfer at a time, and the window's other jobs
        # never wait behind a 7 GB download (nor the download behind them).
        self.background = BackgroundWork(self, max_threads=1)
        self._last_draw = 0.0
        self.setWindowTitle(f"Downloading {entry.name}")
        self.setMinimumWidth(580)
        layout = QVBoxLayout(self)
        self.title = QLabel(f"<b>{entry.name}</b><br>from huggingface.co/{entry.repo}<br>{entry.file}")
        self.title.setWordWrap(True)
        self.bar = QProgressBar(maximum=1000)  # per mille: a 7 GB byte count overflows a Qt int
        self.bar.setAccessibleName("download progress")
        self.detail = QLabel("Connecting…")
        self.detail.setAccessibleName("download details")
        self.detail.setWordWrap(True)
        self.message = QLabel()
        self.message.setTextFormat(Qt.PlainText)  # it may quote the Hub or the disk
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message.hide()
        buttons = QHBoxLayout()
        self.retry_button = QPushButton("Resume")
        self.retry_button.setAccessibleName("resume the download")
        self.retry_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("cancel the download")
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        buttons.addStretch(1)
        for button in (self.retry_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)
        layout.addWidget(self.title)
        layout.addWidget(self.bar)
        layout.addWidget(self.detail)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self._progress.connect(self._show_progress)
        self._set_running(False)

    @property
    def running(self) -> bool:
        """Until the end has been shown: the worker ends a moment before its queued
        answer reaches the window."""
        return self._busy

    def start(self) -> None:
        if self.running:
            return
        self.cancel_event.clear()
        self.message.hide()
        have = partial_download(self.entry, self.models_dir)
        self.detail.setText(f"Resuming from {human_size(have)}…" if have else "Connecting…")
        self._set_running(True)

        def work() -> tuple[Path | None, str]:  # the verified file or None, the message
            try:
                return download_model(self.entry, self.models_dir, self.verified,
                                      progress=self._report, cancel=self.cancel_event), ""
            except Exception as exc:  # a cancel or a failure: either becomes the dialog's message
                return None, str(exc)

        if not self.background.run("download model", work, lambda ended: self._on_ended(*ended)):
            self._set_running(False)  # shut down: the window is closing

    def _report(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._last_draw >= PROGRESS_INTERVAL_S or progress.done >= progress.total:
            self._last_draw = now
            self._progress.emit(progress)

    def cancel(self) -> None:
        if self.running:
            self.cancel_event.set()
            self.detail.setText("Stopping…")
            self.cancel_button.setEnabled(False)

    def _show_progress(self, progress: Progress) -> None:
        if progress.total:
            self.bar.setValue(int(1000 * progress.done / progress.total))
        self.detail.setText(progress_text(progress))

    def _on_ended(self, path: Path | None, message: str) -> None:
        self._set_running(False)
        if path is not None:
            self.bar.setValue(1000)
            self.detail.setText(f"Downloaded and checked: {path}")
            self.downloaded.emit(path)
            self.accept()
            return
        self.message.setText(message)
        self.message.setObjectName("notice" if self.cancel_event.is_set() else "errorNotice")
        set_tone(self.message, "" if self.cancel_event.is_set() else "error")
        self.message.show()
        # Taller for a long message: a fixed height would cut its last lines off.
        self.resize(self.width(), max(self.height(), self.layout().totalHeightForWidth(self.width())))
        have = partial_download(self.entry, self.models_dir)
        self.detail.setText(f"{human_size(have)} kept; the download continues from there." if have else "")
        self.retry_button.setText("Resume" if have else "Try again")

    def _set_running(self, running: bool) -> None:
        self._busy = running
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.retry_button.setVisible(not running)
        self.close_button.setVisible(not running)

    def shut_down(self, timeout_ms: int) -> bool:
        """When the window closes: stops the transfer and waits (bounded) for it to end, so
        nothing is still writing the partial file as the app exits; True if it ended."""
        self.cancel()
        return self.background.close(timeout_ms)

    def reject(self) -> None:
        # Esc or the window's close button while running stops the transfer; what came is kept.
        self.cancel()
        super().reject()
