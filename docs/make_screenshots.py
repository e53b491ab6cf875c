"""Regenerates the README's screenshots: the real window, the real kernel, a scripted
model (so the pictures are the same every time).

    xvfb-run -s "-screen 0 1280x900x24" .venv/bin/python docs/make_screenshots.py
"""

from __future__ import annotations

import os
import sys
import time
import tempfile
from pathlib import Path

# Always a fresh folder: the pictures must not show the user's own conversations.
os.environ["CODEACT_HOME"] = tempfile.mkdtemp(prefix="codeact-shots-")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from PySide6.QtWidgets import QApplication  # noqa: E402

from _qt import pump, wait  # noqa: E402

from codeact_desktop.settings import Settings  # noqa: E402
from codeact_desktop.llm.scripted import ScriptedBackend  # noqa: E402
from codeact_desktop.paths import AppPaths  # noqa: E402
from codeact_desktop.store.history import HistoryStore  # noqa: E402
from codeact_desktop.ui.code_card import CodeCard  # noqa: E402
from codeact_desktop.ui.main_window import MainWindow  # noqa: E402

OUT = Path(__file__).resolve().parent / "images"

REPLIES = [
    "I'll load the numbers, plot them and show a summary table.\n<execute>\n"
    "import numpy as np, pandas as pd\nimport matplotlib.pyplot as plt\n\n"
    "x = np.linspace(-3, 3, 61)\nplt.figure(figsize=(6, 3.2))\nplt.plot(x, x**2, label='x²')\n"
    "plt.plot(x, np.abs(x) * 3, label='3|x|')\nplt.legend(); plt.title('Two curves'); plt.show()\n"
    "pd.DataFrame({'x': [-2, -1, 0, 1, 2], 'x²': [4, 1, 0, 1, 4], '3|x|': [6, 3, 0, 3, 6]})\n</execute>",
    "The curves cross at **x = 0** and **x = ±3**:\n\n- below |x| = 3, `3|x|` is larger\n- beyond it, `x²` grows faster",
    "Next I'll write the table to a CSV file.\n<execute>\nimport pandas as pd\n"
    "pd.DataFrame({'x': range(5)}).to_csv('table.csv', index=False)\nprint('saved table.csv')\n</execute>",
]

ERROR_REPLIES = [
    "I'll total the sales per month.\n<execute>\nimport pandas as pd\n\n"
    "df = pd.DataFrame({'date': ['2026-01-05', '2026-02-11'], 'sales': [120, 135]})\n"
    "df['sales'].sum()\nby_month = df.groupby('month')['sales'].sum()\nby_month\n</execute>",
    "There is no `month` column; I'll derive it from `date`.\n<execute>\n"
    "df['month'] = pd.to_datetime(df['date']).dt.month_name()\ndf.groupby('month')['sales'].sum()\n</execute>",
    "January: **120**, February: **135**.",
]


def slow(reply: str, seconds: float):
    """A reply that keeps the model 'reading' for a while, as a long prompt on a CPU does."""
    def reply_after(_messages):
        time.sleep(seconds)
        return reply
    return reply_after


FILES_REPLIES = [
    "I'll read the file, chart it, and save the chart and a summary next to it.\n<execute>\n"
    "import pandas as pd\nimport matplotlib.pyplot as plt\n\n"
    "df = pd.read_csv('sales.csv')\nax = df.plot(x='month', y='sales', kind='bar', legend=False, figsize=(6, 3))\n"
    "ax.set_title('Monthly sales')\nplt.tight_layout(); plt.savefig('sales.png'); plt.show()\n"
    "df.describe().to_csv('summary.csv')\nprint(f\"total: {df.sales.sum()}, best month: {df.loc[df.sales.idxmax(), 'month']}\")\n"
    "</execute>",
    "Sales rose from **120** in January to **190** in June. The chart is `sales.png`, "
    "and `summary.csv` has the statistics. Both are in the Files panel.",
]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    paths = AppPaths.default()
    store = HistoryStore(paths.history_db)
    # First run: no model yet.
    first = MainWindow(store, paths, None, Settings())
    first.resize(1200, 820)
    first.show()
    wait(app, lambda: first.models.welcome.hardware is not None)
    pump(app, 0.5)
    first.grab().save(str(OUT / "welcome.png"))
    first.close()

    backend = ScriptedBackend(REPLIES, piece_delay=0.001)
    win = MainWindow(store, paths, lambda: backend, Settings(action_timeout_s=30))
    win.resize(1200, 820)
    win.show()
    wait(app, lambda: win.backend is not None and win.current is not None)
    pump(app, 0.5)
    win.grab().save(str(OUT / "empty-window.png"))

    win.input.setPlainText("Plot x² and 3|x| from -3 to 3 and show me a table")
    win.send_current()
    wait(app, lambda: not win.current.busy)
    pump(app, 0.5)
    win.grab().save(str(OUT / "plot-and-table.png"))
    # The same conversation in smaller windows: everything fits the column.
    for width, height in ((1024, 700), (800, 600)):
        win.resize(width, height)
        pump(app, 0.5)
        win.chat.scroll_to_end()
        pump(app, 0.3)
        win.grab().save(str(OUT / f"plot-{width}px.png"))
    win.resize(1200, 820)
    pump(app, 0.5)
    # Dark, switched while the app runs: what was drawn follows at once.
    win.apply_settings(Settings(**{**win.settings.__dict__, "theme": "dark"}))
    pump(app, 0.5)
    win.grab().save(str(OUT / "dark-after-switch.png"))
    win.apply_settings(Settings(**{**win.settings.__dict__, "theme": "light"}))
    pump(app, 0.3)

    win.current.set_require_approval(True)
    win.input.setPlainText("Save the table as CSV")
    win.send_current()
    wait(app, lambda: any(c.approval_bar.isVisible() for c in win.chat.findChildren(CodeCard)))
    pump(app, 0.5)
    win.grab().save(str(OUT / "approval-card.png"))  # keyboard focus on Run
    win.current.stop()
    wait(app, lambda: not win.current.busy)

    # The model at work before its first word, then an error card and the fix.
    win.new_conversation()
    backend.replies += [slow(ERROR_REPLIES[0], 3.0), *ERROR_REPLIES[1:]]
    win.input.setPlainText("Total the sales per month")
    win.send_current()
    wait(app, lambda: win.chat.working.isVisible())
    pump(app, 1.2)
    win.grab().save(str(OUT / "working-indicator.png"))
    wait(app, lambda: not win.current.busy)
    pump(app, 0.5)
    card = win.chat.findChildren(CodeCard)[0]
    win.chat.ensureWidgetVisible(card, 0, 0)
    pump(app, 0.3)
    win.grab().save(str(OUT / "error-card.png"))

    # A file dropped in, and the files the code made, in the workspace panel.
    win.current.set_require_approval(False)
    win.new_conversation()
    wait(app, lambda: win.current.kernel.is_alive)
    csv = Path(os.environ["CODEACT_HOME"]) / "sales.csv"
    csv.write_text("month,sales\n" + "".join(f"{m},{v}\n" for m, v in zip(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun"], [120, 135, 128, 160, 172, 190])))
    win.attach([csv])
    wait(app, lambda: bool(win.tray.files()))
    backend.replies += FILES_REPLIES
    win.input.setPlainText("Chart the monthly sales and save the chart and a summary")
    win.send_current()
    wait(app, lambda: not win.current.busy)
    win.files_panel.list.setCurrentRow(0)
    pump(app, 0.3)
    win.chat.verticalScrollBar().setValue(0)  # the message with its file chip, at the top
    pump(app, 0.3)
    win.grab().save(str(OUT / "workspace-panel.png"))
    win.close()
    print("\n".join(str(p) for p in sorted(OUT.glob("*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
