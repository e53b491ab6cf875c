"""Guards against Qt binding bugs that would crash a long-running window."""

import sys

from PySide6.QtWidgets import QLabel


def test_void_qt_calls_do_not_drop_references_to_none(qtbot):
    # PySide6 6.12.0 drops one reference to None on every call of a void Qt method
    # (setText, processEvents, ...). On Python 3.11, where None is not immortal, a
    # streaming chat reaches zero within minutes and the interpreter aborts.
    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(3000):
        label.setText("x")
    assert sys.getrefcount(None) >= before - 100
