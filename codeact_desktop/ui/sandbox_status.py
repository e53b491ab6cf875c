"""The status bar's word on how the current conversation's code is restricted, and its
network switch. The kernel says what its launcher applied (kernel/sandbox.py) when it
becomes ready (a ``KernelState`` event); the word holds while that kernel lives."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QToolButton

from ..kernel.sandbox import SandboxReport
from ..kernel.state import KernelState, KernelStatus
from .theme import set_tone
from .untrusted_text import plain_tip

# The kernel that was ready still runs: what restricts it has not changed.
_STILL_RUNNING = (KernelStatus.BUSY, KernelStatus.INTERRUPTED)


class SandboxStatus(QToolButton):
    """Shows what restricts the current kernel (or that nothing does) and offers the
    per-conversation network switch."""

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
        self._report: SandboxReport | None = None
        self._network = False
        self.setVisible(False)

    def show_state(self, state: KernelState | None, network: bool) -> None:
        """Follows a kernel's lifecycle: drawn when it is ready, hidden while none runs."""
        if state is not None and state.status == KernelStatus.READY and state.sandbox is not None:
            self._report = state.sandbox
        elif state is None or state.status not in (KernelStatus.READY, *_STILL_RUNNING):
            self._report = None  # the next kernel's restrictions are drawn afresh
        self._network = network
        self._draw()

    def _draw(self) -> None:
        report = self._report
        if report is None:
            self.setText("")
            self.setVisible(False)
            return
        network = "network on" if self._network else "network off"
        layers = "".join(f"\n• {layer}" for layer in [*report.layers, report.limits])
        if not report.missing:
            text, tip = f"Restricted · {network}", f"Code in this conversation runs with:{layers}"
        else:
            text = "Partly restricted" if report.layers else "Not restricted"
            tip = f"Code here runs {report.why_not()}.\nEach piece of code waits for your approval." + (
                f"\nIn force:{layers}" if report.layers else "")
        self.setText(text)
        self.setToolTip(plain_tip(tip))
        set_tone(self, "error" if report.missing else "")
        self.network_action.blockSignals(True)
        self.network_action.setChecked(self._network)
        self.network_action.blockSignals(False)
        self.setVisible(True)

    def undo_toggle(self) -> None:
        """The user said no to the switch: the check goes back to what the kernel has."""
        self._draw()

    def _toggled(self, on: bool) -> None:
        self.network_toggled.emit(on)
