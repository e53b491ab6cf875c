"""What the window tests share: a scripted reply and how a user sends and waits."""

from PySide6.QtCore import Qt

PLOT_AND_TABLE = (
    "Here is the plot and the table.\n<execute>\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
    "plt.plot([1, 4, 9]); plt.show()\nprint('rows: 3')\npd.DataFrame({'x': [1, 2, 3], 'y': [1, 4, 9]})\n</execute>"
)


def send(qtbot, win, text):
    qtbot.keyClicks(win.input, text)
    qtbot.keyClick(win.input, Qt.Key_Return)


def wait_idle(qtbot, win, timeout=60_000):
    qtbot.waitUntil(lambda: not win.current.busy, timeout=timeout)
    qtbot.wait(120)  # the last queued events and one flush tick


LONG_REPLY = "word " * 3000  # streamed slowly enough (piece_delay=0.003) to be stopped midway


def stop_mid_reply(qtbot, win):
    """Sends a message, and presses Esc while the reply (``LONG_REPLY``) streams."""
    send(qtbot, win, "talk a lot")
    qtbot.waitUntil(lambda: win.stop_button.isEnabled(), timeout=5000)
    qtbot.wait(300)
    qtbot.keyClick(win, Qt.Key_Escape)
    wait_idle(qtbot, win, timeout=5000)
