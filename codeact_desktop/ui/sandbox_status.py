"""The status bar's word on how the current conversation's code is restricted, and its
network switch. The kernel says what its launcher applied (kernel/sandbox.py)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QToolButton

from ..kernel.conversation_kernel import ConversationKernel
from .theme import set_tone


class SandboxStatus(QToolButton):
    network_toggled = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("smallButton")
        self.setAccessibleName("code restrictions")
        self.setAutoRaise(True)
        self.setPopupMode(QToolButton.InstantPopup)
        self.network_action = QAction("Allow network for code in this conversation", self)
        self.network_action.setCheckable(True)
        self.network_action.toggled.connect(self._toggled)
        menu = QMenu(self)
        menu.addAction(self.network_action)
        self.setMenu(menu)
        self._shown = None

    def show_kernel(self, kernel: ConversationKernel | None) -> None:
        if kernel is None or kernel.is_starting or not kernel.is_alive:
            self._shown = None  # the next kernel's state is drawn afresh
            self.setText("")
            self.setVisible(False)
            return
        report = kernel.sandbox
        network = "network on" if kernel.network else "network off"
        layers = "".join(f"\n• {layer}" for layer in [*report.layers, report.limits])
        if not report.missing:
            text, tip = f"Restricted · {network}", f"Code in this conversation runs with:{layers}"
        else:
            text = "Partly restricted" if report.layers else "Not restricted"
            tip = f"Code here runs {report.why_not()}.\nEach piece of code waits for your approval." + (
                f"\nIn force:{layers}" if report.layers else "")
        state = (text, tip, kernel.network)
        if state != self._shown:
            self._shown = state
            self.setText(text)
            self.setToolTip(tip)
            set_tone(self, "error" if report.missing else "")
            self.network_action.blockSignals(True)
            self.network_action.setChecked(kernel.network)
            self.network_action.blockSignals(False)
        self.setVisible(True)

    def _toggled(self, on: bool) -> None:
        self._shown = None
        self.network_toggled.emit(on)
