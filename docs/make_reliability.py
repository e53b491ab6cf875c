"""Writes docs/reliability.md: every probe of the fault suite (tests/agent/test_faults.py)
run as a model's action in the real restricted kernel, with what happened, how long the
turn took, how long the next action took to answer, and what was lost; then once more
through the real window (offscreen), for the UI thread's worst stall during the turn.

    .venv/bin/python docs/make_reliability.py
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ["CODEACT_HOME"] = tempfile.mkdtemp(prefix="codeact-reliability-")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from PySide6.QtWidgets import QApplication  # noqa: E402

from _qt import Heartbeat, pump, wait  # noqa: E402
from codeact_desktop.engine import kernel_env  # noqa: E402
from codeact_desktop.kernel.conversation_kernel import ConversationKernel  # noqa: E402
from codeact_desktop.kernel.venv import ensure_kernel_venv  # noqa: E402
from codeact_desktop.llm.scripted import ScriptedBackend  # noqa: E402
from codeact_desktop.paths import AppPaths  # noqa: E402
from codeact_desktop.resources import messages  # noqa: E402
from codeact_desktop.settings import Settings  # noqa: E402
from codeact_desktop.store.history import HistoryStore  # noqa: E402
from codeact_desktop.ui import main_window  # noqa: E402
from tests.agent.test_faults import _SECRET_DIR, LIMITS, PROBES, _agent  # noqa: E402


def run_probe(name, probe, paths, venv, folder):
    check = "print('alive', 1 + 1, 'x is', globals().get('x'))"
    agent, backend, kernel, store, conversation = _agent(folder, venv, paths, [
        "<execute>x = 41\nprint('before')</execute>",
        f"<execute>\n{probe.code.replace('PORT', '9')}\n</execute>",
        f"<execute>{check}</execute>", "Done."], timeout=probe.timeout_s)
    try:
        started = time.monotonic()
        record = agent.send(name)
        turn_s = time.monotonic() - started
        probe_action, after = record.actions[1], record.actions[2]
        first = conversation.actions()[0]
        intact = first["status"] == "ok" and "before" in first["observation"]
        state = "kept" if "x is 41" in after["observation"] else "lost (kernel restarted)"
        lines = [ln for ln in probe_action["observation"].splitlines()[1:]
                 if ln.strip() and ln != messages()["network_off"]]  # the error itself, not the note after it
        said = next((ln for ln in reversed(lines) if ln.startswith("[")), lines[-1] if lines else "")
        return (name, probe_action["status"], said[:160], f"{probe_action['seconds']:.1f}",
                f"{after['seconds']:.2f}", state, "nothing" if intact and after["status"] == "ok" else "SEE LOG",
                f"{turn_s:.1f}", kernel.sandbox.summary())
    finally:
        kernel.shutdown()
        store.close()


def _kernel_with_test_limits(paths, workspace, background=True, network=False):
    venv = ensure_kernel_venv(paths.kernel_venv)
    session = ConversationKernel(venv, workspace, kernel_env(paths, venv, workspace), network=network, limits=LIMITS)
    session.start_in_background()
    return session


def window_stall(app, probe, paths, folder) -> str:
    """The same turn through the real window: the worst delay of a 10 ms UI timer."""
    main_window.start_kernel = _kernel_with_test_limits
    backend = ScriptedBackend(["<execute>x = 41\nprint('before')</execute>",
                               f"<execute>\n{probe.code.replace('PORT', '9')}\n</execute>",
                               "<execute>print('alive')</execute>", "Done."])
    store = HistoryStore(folder / "window.sqlite3")
    win = main_window.MainWindow(store, paths, lambda: backend, Settings(action_timeout_s=probe.timeout_s))
    win.resize(1200, 820)
    win.show()
    try:
        wait(app, lambda: win.backend is not None and win.current is not None and win.current.kernel.is_alive)
        beat = Heartbeat()
        beat.start()
        win.input.setPlainText("probe")
        win.send_current()
        wait(app, lambda: not win.current.busy, timeout=300)
        pump(app, 0.2)
        beat.stop()
        return f"{max(beat.stalls_ms):.0f}"
    finally:
        win.close()
        pump(app, 0.5)
        store.close()


def main() -> int:
    app = QApplication(sys.argv[:1])
    paths = AppPaths.default()
    venv = ensure_kernel_venv(paths.kernel_venv)
    _SECRET_DIR.mkdir(exist_ok=True)
    (_SECRET_DIR / "id_rsa").write_text("not for the model")
    rows = []
    for name, probe in PROBES.items():
        folder = Path(tempfile.mkdtemp(prefix="probe-"))
        rows.append(run_probe(name, probe, paths, venv, folder) + (window_stall(app, probe, paths, folder),))
        print(" | ".join(rows[-1][:7]), rows[-1][-1], flush=True)
    (_SECRET_DIR / "id_rsa").unlink()
    out = ROOT / "docs" / "reliability.md"
    lines = [
        "# Reliability: faults in model-written code",
        "",
        f"Written by `docs/make_reliability.py` on {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores. Each probe runs as a model's action between an action that sets `x = 41` "
        "and one that reads it back (or checks the kernel answers, where a restart was needed), through the "
        "real agent loop and the real restricted kernel. The same probes are asserted by "
        "`tests/agent/test_faults.py`.",
        "",
        f"Kernel restrictions in this run: {rows[0][8]}.",
        f"Limits used here (smaller than the app's defaults, so the run is quick): address space "
        f"{LIMITS.address_space >> 30} GB, files {LIMITS.file_size >> 20} MB, watchdog memory "
        f"{LIMITS.memory >> 20} MB. Defaults: half the RAM (at least 4 GB), 2 GB files, 60 % of the RAM.",
        "",
        "| probe | status | what the model read | action s (stop and any restart) | next action s | variables | lost "
        "| turn s | worst UI stall ms |",
        "| --- | --- | --- | ---: | ---: | --- | --- | ---: | ---: |",
    ]
    for row in rows:
        said = row[2].replace("|", "\\|")
        lines.append(f"| {row[0]} | {row[1]} | {said} | {row[3]} | {row[4]} | {row[5]} | {row[6]} | {row[7]} "
                     f"| {row[9]} |")
    lines += ["", "Time to recover is the action's own time: it ends once the code is stopped and, where the kernel "
              "had to go, a new one is ready; \"next action s\" shows the kernel then answers at once. \"lost\" "
              "checks the conversation's earlier action and its output after the fault; \"variables\" whether "
              "`x` survived. \"worst UI stall\" is the same turn run again through the real window (offscreen, "
              "scripted model): how late a 10 ms timer on the UI thread fired at worst while the fault ran and "
              "the window drew its outputs.", ""]
    out.write_text("\n".join(lines), encoding="utf-8")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
