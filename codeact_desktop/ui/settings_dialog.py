"""Settings: model, execution, appearance. Edits a copy; the window applies and saves it."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QFrame, QGroupBox, QLabel,
    QScrollArea, QSpinBox, QVBoxLayout, QWidget,
)

from ..settings import KV_CACHE_TYPES, THEMES, Settings


class _Hint(QLabel):
    """A wrapped explanation under a setting. A form row does not ask a wrapped label how
    tall it gets at its width, which cut the hints to two lines: each says so itself."""

    def __init__(self, text: str):
        super().__init__(text)
        self.setObjectName("hint")
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignLeft | Qt.AlignTop)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        needed = self.heightForWidth(self.width())
        if needed > 0 and needed != self.minimumHeight():
            self.setMinimumHeight(needed)
            self.updateGeometry()

    def sizeHint(self):  # noqa: N802 - Qt's name
        hint = super().sizeHint()
        if self.minimumHeight() > 0:  # as tall as the text at this width, not at QLabel's guess
            hint.setHeight(self.minimumHeight())
        return hint


def _hint(text: str) -> QLabel:
    return _Hint(text)


class SettingsDialog(QDialog):
    """The Settings window; the caller reads the edited settings with result_settings() after OK."""

    def __init__(self, settings: Settings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(600)  # room for the wrapped hints, which a narrower form cuts off
        self.original = settings
        # The groups scroll, the buttons stay: with a large font or 150 % scaling the groups
        # are taller than a laptop's screen, and OK went off its bottom.
        self.content = QWidget()
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(0, 0, 0, 0)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.content)

        model = QGroupBox("Model")
        form = QFormLayout(model)
        self.n_ctx = QSpinBox(minimum=512, maximum=131072, singleStep=1024, value=settings.n_ctx)
        self.n_gpu_layers = QSpinBox(minimum=-1, maximum=999, value=settings.n_gpu_layers)
        self.n_gpu_layers.setSpecialValueText("Automatic")
        self.n_threads = QSpinBox(minimum=0, maximum=256, value=settings.n_threads)
        self.n_threads.setSpecialValueText("Automatic")
        self.temperature = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1, value=settings.temperature)
        form.addRow("Context (tokens)", self.n_ctx)
        form.addRow("", _hint("How much of the conversation the model reads. More needs more memory; "
                              "capped by what the model was trained on, and lowered when memory is short."))
        form.addRow("GPU layers", self.n_gpu_layers)
        form.addRow("", _hint("Parts of the model placed on the graphics card. Automatic puts as many there as "
                              "fit in its free memory when this build of llama.cpp can use it, and falls back to "
                              "the CPU if loading fails. 0 keeps it on the CPU."))
        form.addRow("CPU threads", self.n_threads)
        self.kv_ram = QSpinBox(minimum=0, maximum=65536, singleStep=256, suffix=" MB", value=settings.kv_cache_ram_mb)
        self.kv_disk = QSpinBox(minimum=0, maximum=262144, singleStep=1024, suffix=" MB",
                                value=settings.kv_cache_disk_mb)
        form.addRow("Conversations in memory", self.kv_ram)
        form.addRow("Conversations on disk", self.kv_disk)
        form.addRow("", _hint("What the model has read of your other conversations, kept so that going back to "
                              "one answers at once instead of reading it all again. Beyond the memory it goes to "
                              "disk, where it also lasts until the next start. 0 turns it off."))
        self.kv_type = QComboBox()
        self.kv_type.addItems(["Automatic", "f16 (exact)", "q8_0 (half the memory)"])
        self.kv_type.setCurrentIndex(KV_CACHE_TYPES.index(settings.kv_cache_type))
        self.flash_attention = QCheckBox("Flash attention", checked=settings.flash_attention)
        form.addRow("Context memory", self.kv_type)
        form.addRow("", self.flash_attention)
        form.addRow("", _hint("How the model keeps what it has read. Automatic keeps f16, and takes q8_0 when "
                              "that lets the context you asked for fit in the free memory (prompts are read more "
                              "slowly with it). q8_0 needs flash attention."))
        form.addRow("Temperature", self.temperature)
        form.addRow("", _hint("0 gives the same answer each time; higher is more varied."))
        form.addRow("", _hint("<i>Model settings take effect when the model is next loaded.</i>"))
        layout.addWidget(model)

        execution = QGroupBox("Running code")
        form = QFormLayout(execution)
        self.timeout = QSpinBox(minimum=5, maximum=3600, suffix=" s", value=int(settings.action_timeout_s))
        self.max_actions = QSpinBox(minimum=1, maximum=50, value=settings.max_actions)
        self.approval = QCheckBox("Ask me before running each piece of code", checked=settings.require_approval)
        form.addRow("Time limit per run", self.timeout)
        form.addRow("Code runs per message", self.max_actions)
        form.addRow(self.approval)
        layout.addWidget(execution)

        appearance = QGroupBox("Appearance")
        form = QFormLayout(appearance)
        self.theme = QComboBox()
        self.theme.addItems(["Follow the system", "Light", "Dark"])
        self.theme.setCurrentIndex(THEMES.index(settings.theme))
        form.addRow("Theme", self.theme)
        layout.addWidget(appearance)

        for widget, name in ((self.n_ctx, "context size"), (self.n_gpu_layers, "GPU layers"),
                             (self.n_threads, "CPU threads"), (self.temperature, "temperature"),
                             (self.kv_ram, "conversation memory kept in RAM"),
                             (self.kv_disk, "conversation memory kept on disk"),
                             (self.kv_type, "context memory type"), (self.flash_attention, "flash attention"),
                             (self.timeout, "time limit per run"), (self.max_actions, "code runs per message"),
                             (self.approval, "ask before running code"), (self.theme, "theme")):
            widget.setAccessibleName(name)
        self.buttons = buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        outer = QVBoxLayout(self)
        outer.addWidget(self.scroll, 1)
        outer.addWidget(buttons)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        # The hints' heights follow the width, after this event: then the dialog fits them.
        QTimer.singleShot(0, self._fit_height)

    def _fit_height(self) -> None:
        """As tall as the groups at this width, and no taller than the screen (they scroll)."""
        groups = self.content.layout()
        width = self.scroll.viewport().width()
        height = groups.totalHeightForWidth(width) if groups.hasHeightForWidth() else -1
        height = height if height > 0 else self.content.sizeHint().height()
        outer = self.layout()
        margins = outer.contentsMargins()
        height += self.buttons.sizeHint().height() + outer.spacing() + margins.top() + margins.bottom()
        screen = self.screen()
        if screen is not None:
            height = min(height, int(screen.availableGeometry().height() * 0.9))
        if self.height() != height:
            self.resize(self.width(), height)

    def result_settings(self) -> Settings:
        return replace(
            self.original,
            n_ctx=self.n_ctx.value(), n_gpu_layers=self.n_gpu_layers.value(), n_threads=self.n_threads.value(),
            kv_cache_ram_mb=self.kv_ram.value(), kv_cache_disk_mb=self.kv_disk.value(),
            kv_cache_type=KV_CACHE_TYPES[self.kv_type.currentIndex()], flash_attention=self.flash_attention.isChecked(),
            temperature=round(self.temperature.value(), 2), action_timeout_s=float(self.timeout.value()),
            max_actions=self.max_actions.value(), require_approval=self.approval.isChecked(),
            theme=THEMES[self.theme.currentIndex()],
        )
