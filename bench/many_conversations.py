"""Memory while a user opens 20 conversations one after another, each running a little
pandas: the app's process and its kernels together (PSS, so pages they share count once),
with the model left out (a scripted backend). Ours: the window's rule for kernels
(kernel/keep_alive.py: the 4 used last keep theirs). Peer: every kernel kept, as before.

Goal (issue 15): ours <= 1.2 GB after the 20th conversation.

    .venv/bin/python bench/many_conversations.py [--conversations 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ["CODEACT_HOME"] = tempfile.mkdtemp(prefix="codeact-bench-")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.dirname(__file__))

import psutil  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from _qt import pump, wait  # noqa: E402
from _report import report  # noqa: E402

from codeact_desktop.kernel.keep_alive import KEEP, KernelKeepAlive  # noqa: E402
from codeact_desktop.llm.scripted import ScriptedBackend  # noqa: E402
from codeact_desktop.paths import AppPaths  # noqa: E402
from codeact_desktop.settings import Settings  # noqa: E402
from codeact_desktop.store.history import HistoryStore  # noqa: E402
from codeact_desktop.ui.main_window import MainWindow  # noqa: E402

CODE = ("<execute>\nimport pandas as pd\ndf = pd.DataFrame({'a': range(100_000)})\n"
        "print(df.a.sum())\n</execute>")


def memory_mb() -> tuple[float, int]:
    """PSS of this process and all below it (the kernels inside bubblewrap), and how many
    kernel processes there are."""
    me = psutil.Process()
    total, kernels = 0, 0
    for p in [me, *me.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
            kernels += "ipykernel" in " ".join(p.cmdline()) or "launcher" in " ".join(p.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total / 2**20, kernels


def run(app, paths, n: int, keep_all: bool) -> dict:
    replies = [r for _ in range(n) for r in (CODE, "Done.")]
    backend = ScriptedBackend(replies)
    store = HistoryStore(paths.data / f"bench-{int(keep_all)}.sqlite3")
    win = MainWindow(store, paths, lambda: backend, Settings(action_timeout_s=120))
    win.keep_alive = KernelKeepAlive(keep=10**6 if keep_all else KEEP)
    win.show()
    wait(app, lambda: win.backend is not None and win.current is not None and win.current.kernel.is_alive)
    peak = 0.0
    for i in range(n):
        if i:
            before = win.current
            win.new_conversation()
            wait(app, lambda before=before: win.current is not before and win.current.kernel.is_alive, timeout=120)
        win.input.setPlainText(f"sum {i}")
        win.send_current()
        wait(app, lambda: not win.current.busy, timeout=300)
        pump(app, 0.5)  # kernels beyond the kept few stop in the background
        wait(app, lambda: not win.background.running, timeout=60)
        peak = max(peak, memory_mb()[0])
    pump(app, 1.0)
    final, processes = memory_mb()
    alive = sum(c.kernel.is_alive for c in win.controllers.values())
    win.close()
    store.close()
    pump(app, 2.0)
    return {"final_mb": final, "peak_mb": peak, "kernels_alive": alive, "processes": processes}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=20)
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])
    paths = AppPaths.default()
    ours = run(app, paths, args.conversations, keep_all=False)
    peer = run(app, paths, args.conversations, keep_all=True)
    rows = [
        [f"ours: the {KEEP} used last keep their kernel", ours["final_mb"], ours["peak_mb"], ours["kernels_alive"]],
        ["peer: every kernel kept", peer["final_mb"], peer["peak_mb"], peer["kernels_alive"]],
    ]
    report("many_conversations", ["", "after the last MB", "peak MB", "kernels"], rows,
           {"conversations": args.conversations, "ours": ours, "peer": peer,
            "ratio_final": ours["final_mb"] / peer["final_mb"]})
    print(f"\nmemory ratio (ours / peer) after {args.conversations} conversations: "
          f"{ours['final_mb'] / peer['final_mb']:.2f}")
    print(f"goal: <= 1.2 GB -> {'met' if ours['final_mb'] <= 1.2 * 1024 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
