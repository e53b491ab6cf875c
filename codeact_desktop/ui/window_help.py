"""The Help menu's answers: the guides, the restrictions, About, and the two things a user
sends when something went wrong: the log folder and a diagnostic report (versions,
backend, restrictions, the last log lines; no conversation content)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication

from .. import app_log
from ..diagnostics import diagnostic_report
from . import about, help_dialogs


class WindowHelp:
    """The main window's Help menu slots (mixed into ``MainWindow``, which owns ``paths``,
    ``background``, ``backend`` and ``current``)."""

    def show_getting_started(self) -> None:
        help_dialogs.show_getting_started(self)

    def show_shortcuts(self) -> None:
        help_dialogs.show_shortcuts(self, self.findChildren(QAction))

    def show_data_places(self) -> None:
        help_dialogs.show_data_places(self, self.paths)

    def show_restrictions(self) -> None:
        help_dialogs.show_restrictions(self, self.current.kernel.sandbox if self.current else None)

    def show_about(self) -> None:
        about.show_about(self, self.paths)

    def open_log_folder(self) -> None:
        folder = app_log.log_folder(self.paths)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.open_folder(folder)

    def copy_diagnostic_report(self) -> None:
        """Versions, backend, restrictions and the last log lines to the clipboard (built on
        the pool: it reads the log); no conversation content."""
        backend, kernel = self.backend, self.current.kernel if self.current else None

        def copied(text: str) -> None:
            QGuiApplication.clipboard().setText(text)
            self.statusBar().showMessage("Diagnostic report copied: paste it into your message to the "
                                         "developers. It holds no conversation content.", 10_000)

        self.background.run("diagnostic report", lambda: diagnostic_report(self.paths, backend=backend, kernel=kernel),
                            copied, lambda text: self.statusBar().showMessage(f"No report: {text}", 10_000))

    def open_folder(self, folder: Path) -> None:
        """Shows a folder in the desktop's file manager (tests replace it)."""
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
