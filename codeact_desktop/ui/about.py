"""Help → About: the version, what it runs on (llama.cpp build and backends, Python, Qt)
and the licences of what the app carries."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout

from .. import __version__, third_party
from ..native import ggml_backends
from ..paths import AppPaths
from .output_views import TextDialog


def about_text(paths: AppPaths) -> str:
    """The facts the box shows, as plain lines (also what a test reads)."""
    bundle = third_party.bundle_info()
    lines = [f"CodeAct Desktop {__version__}",
             "An offline assistant: a local language model that acts by writing Python."]
    if bundle:
        lines.append(f"Bundle for {bundle['platform']}, built {bundle['built']}; needs glibc "
                     f"{bundle.get('glibc_needed', '?')} or newer" if bundle["platform"].startswith("linux")
                     else f"Bundle for {bundle['platform']}, built {bundle['built']}")
    else:
        lines.append("Running from a Python installation (a checkout or pip), not a bundle.")
    try:
        import llama_cpp

        llama = f"llama-cpp-python {llama_cpp.__version__}"
    except ImportError:
        llama = "llama-cpp-python not installed"
    found = ggml_backends.loaded()
    if found is None:
        llama += " · backends: not loaded yet (they load with the first model)"
    else:
        llama += f" · backends: {found.summary()}"
        gpus = [f"{d.name} ({d.description})" for d in found.gpus]
        if gpus:
            llama += " · GPU: " + ", ".join(gpus)
    lines.append(llama)
    lines.append(f"Python {sys.version.split()[0]} · Qt for Python {pyside_version}")
    lines.append(f"Your data: {paths.data}")
    return "\n".join(lines)


def licence_file() -> Path | None:
    bundle = third_party.bundle_info()
    if not bundle or not bundle.get("licence_file"):
        return None
    path = (Path(third_party.__file__).parent / bundle["licence_file"]).resolve()
    return path if path.is_file() else None


def show_about(parent, paths: AppPaths) -> QDialog:
    dialog = QDialog(parent)
    dialog.setWindowTitle("About CodeAct Desktop")
    dialog.resize(620, 520)
    layout = QVBoxLayout(dialog)
    title, _, rest = about_text(paths).partition("\n")
    heading = QLabel(title)
    font = heading.font()
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 1.4)
    heading.setFont(font)
    layout.addWidget(heading)
    facts = QLabel(rest)
    facts.setTextInteractionFlags(facts.textInteractionFlags() | facts.textInteractionFlags().TextSelectableByMouse)
    facts.setWordWrap(True)
    layout.addWidget(facts)
    components = third_party.installed()
    layout.addWidget(QLabel(f"CodeAct Desktop is MIT-licensed. It carries {len(components)} packages by others:"))
    listing = QPlainTextEdit("\n".join(c.line() for c in components))
    listing.setReadOnly(True)
    listing.setAccessibleName("Bundled packages and their licences")
    layout.addWidget(listing, 1)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    texts = licence_file()
    if texts:
        full = buttons.addButton("Full licence texts", QDialogButtonBox.ButtonRole.ActionRole)
        # Shown here, not handed to the desktop: the app may itself be what opens text files.
        full.clicked.connect(lambda: TextDialog("Third-party licences", texts.read_text(encoding="utf-8",
                                                                                     errors="replace"), dialog).show())
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    dialog.setModal(False)
    dialog.show()
    return dialog
