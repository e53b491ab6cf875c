"""The window's status bar: the model, the context used, the speed, the kernel's state,
what restricts the code, and the Interrupt and Restart buttons.

The kernel's word comes from its ``KernelState`` events, not from asking it: the label
changes when the kernel does."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QStatusBar, QWidget

from ..kernel.state import KernelState, KernelStatus
from .sandbox_status import SandboxStatus
from .theme import set_tone
from .untrusted_text import plain_tip

DETAILS_MIN_WIDTH = 1000  # px: narrower, and context and speed leave the status bar
MODEL_LABEL_CHARS = 72  # "llama.cpp · " and a model's name: a longer one is cut in the middle
_TROUBLE = (KernelStatus.DIED, KernelStatus.FAILED)


def kernel_text(state: KernelState | None) -> str:
    """"kernel: ready", "kernel: died — memory limit": the kernel label's words."""
    if state is None:
        return "kernel: not started"
    return f"kernel: {state.status}" + (f" — {state.detail}" if state.detail and state.status in _TROUBLE else "")


def small_button(text: str, accessible: str, slot=None) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName("smallButton")
    button.setAccessibleName(accessible)
    if slot is not None:
        button.clicked.connect(slot)
    return button


class ElidedLabel(QLabel):
    """Plain text cut in the middle to the width the status bar can give it: a model's name
    is not to set the window's least width (the README promises 800 px)."""

    MIN_WIDTH = 80

    def __init__(self):
        super().__init__()
        self.full_text = ""
        self.setTextFormat(Qt.PlainText)

    def set_full_text(self, text: str) -> None:
        self.full_text = text
        self.updateGeometry()
        self._elide()

    def sizeHint(self) -> QSize:  # noqa: N802
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self.full_text) + margins.left() + margins.right() + 2
        return QSize(width, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - it may shrink to this; its text is cut to fit
        return QSize(self.MIN_WIDTH, super().minimumSizeHint().height())

    def resizeEvent(self, event):  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        room = self.contentsRect().width()
        self.setText(self.fontMetrics().elidedText(self.full_text, Qt.ElideMiddle, room) if room > 0 else "")


class WindowStatusBar(QStatusBar):
    """The labels and kernel controls under the chat; a passing message hides the labels
    while it shows."""

    interrupt_requested = Signal()
    restart_requested = Signal()
    network_toggled = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model_label = ElidedLabel()
        self.speed_label = QLabel()
        self.context_label = QLabel()
        self.kernel_label = QLabel(kernel_text(None))
        self.kernel_label.setAccessibleName("kernel state")
        self.kernel_state: KernelState | None = None
        # In one container, hidden by hand while a status message shows: Qt's own hiding
        # is undone when a status-bar button changes visibility, and the texts overlap.
        self.labels = QWidget()
        row = QHBoxLayout(self.labels)
        row.setContentsMargins(0, 0, 0, 0)
        for label in (self.model_label, self.context_label, self.speed_label, self.kernel_label):
            label.setContentsMargins(8, 0, 12, 0)
            label.setTextFormat(Qt.PlainText)  # a server's model id drew a fake "isolated" badge here
            row.addWidget(label)
        row.addStretch(1)
        # What the permanent widgets leave: the model's name is cut to it (ElidedLabel).
        self.labels.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.addWidget(self.labels, 1)
        self.messageChanged.connect(lambda text: self.labels.setVisible(not text))
        self.interrupt_button = small_button("Interrupt", "interrupt code", self.interrupt_requested)
        self.restart_button = small_button("Restart kernel", "restart kernel", self.restart_requested)
        self.sandbox_status = SandboxStatus()
        self.sandbox_status.network_toggled.connect(self.network_toggled)
        self.addPermanentWidget(self.sandbox_status)
        self.addPermanentWidget(self.interrupt_button)
        self.addPermanentWidget(self.restart_button)

    def set_model(self, text: str, error: bool = False) -> None:
        # A server's model id can be a few hundred characters: the label is not to set the
        # window's least width, so it is cut in the middle (the tooltip has it whole).
        self.model_label.set_full_text(text if len(text) <= MODEL_LABEL_CHARS
                                       else f"{text[:MODEL_LABEL_CHARS * 2 // 3]}…{text[-MODEL_LABEL_CHARS // 3:]}")
        self.model_label.setToolTip(plain_tip(text))  # whole, where a narrow window cuts it
        set_tone(self.model_label, "error" if error else "")

    def set_speed(self, tokens_per_second: float | None) -> None:
        self.speed_label.setText(f"{tokens_per_second:.1f} tokens/s" if tokens_per_second else "")

    def set_context(self, n_ctx: int, used: int | None = None) -> None:
        self.context_label.setText(f"context {n_ctx}" if used is None else f"context {used} / {n_ctx}")

    def show_kernel(self, state: KernelState | None, network: bool = False) -> None:
        """The current conversation's kernel, as its last event (or ``kernel.state``) says."""
        self.kernel_state = state
        self.kernel_label.setText(kernel_text(state))
        self.kernel_label.setToolTip(plain_tip(state.detail) if state is not None else "")
        set_tone(self.kernel_label, "error" if state is not None and state.status in _TROUBLE else "")
        self.sandbox_status.show_state(state, network)

    @property
    def kernel_busy(self) -> bool:
        return self.kernel_state is not None and self.kernel_state.status == KernelStatus.BUSY

    def show_controls(self, has_conversation: bool, turn_running: bool) -> None:
        self.interrupt_button.setEnabled(turn_running and self.kernel_busy)
        for widget in (self.interrupt_button, self.restart_button, self.kernel_label):
            widget.setVisible(has_conversation)

    def fit(self, width: int) -> None:
        """On a narrow window only what matters most stays."""
        for label in (self.context_label, self.speed_label):
            label.setVisible(width >= DETAILS_MIN_WIDTH)
