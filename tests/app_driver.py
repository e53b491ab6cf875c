"""Runs the real app (window or CLI, as ``codeact-desktop`` would) in this process with
an audit hook that records every network call the app's own Python makes, and can drive
the window as a user would: wait for the model and the kernel, send a message, wait for
the answer, quit. The kernel is another process (restricted on its own), so only the
app is watched.

    python tests/app_driver.py OUT.json [--attach FILE] [--send TEXT | --quit-after SECONDS] -- APP ARGS...
"""

from __future__ import annotations

import argparse
import json
import socket
import sys

CALLS: list[dict] = []
_NAME_LOOKUPS = ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr")


def _address(value) -> object:
    if isinstance(value, (str, bytes)):
        return value.decode(errors="replace") if isinstance(value, bytes) else value
    return list(value)[:2]


def _audit(event: str, args: tuple) -> None:
    if event in ("socket.connect", "socket.sendto"):
        CALLS.append({"event": event, "family": socket.AddressFamily(args[0].family).name,
                      "address": _address(args[-1])})
    elif event in _NAME_LOOKUPS:
        CALLS.append({"event": event, "host": str(args[0])})
    elif event == "urllib.Request":  # (url, data, headers, method)
        CALLS.append({"event": event, "address": str(args[0])})
    elif event == "http.client.connect":  # (connection, host, port)
        CALLS.append({"event": event, "address": [str(args[1]), args[2]]})


def _drive_window(send: str | None, quit_after: float | None, attach: str | None) -> object:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    state = {"sent": False, "attached": not attach, "ticks": 0}

    def window():
        return next((w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow"), None)

    def tick():
        state["ticks"] += 1
        if quit_after is not None:
            if state["ticks"] * 0.2 >= quit_after:
                app.quit()
            return
        win = window()
        if win is None or win.backend is None or win.current is None or win.current.kernel.is_starting:
            return
        if not state["attached"]:
            from pathlib import Path

            win.attach([Path(attach)])  # as a drop does: copied in the background
            state["attached"] = True
        elif win.tray.copying:
            return
        elif not state["sent"]:
            win.input.setPlainText(send)
            win.send_current()
            state["sent"] = True
        elif not win.current.busy:
            app.quit()

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(200)
    return timer  # kept alive by the caller


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--send")
    parser.add_argument("--quit-after", type=float)
    parser.add_argument("--attach")
    own, app_args = sys.argv[1:sys.argv.index("--")], sys.argv[sys.argv.index("--") + 1:]
    args = parser.parse_args(own)
    sys.addaudithook(_audit)
    timer = None
    if not app_args or app_args[0] not in ("run", "doctor", "models"):
        timer = _drive_window(args.send, args.quit_after, args.attach)
    from codeact_desktop.cli import main as app_main

    code = app_main(app_args)
    del timer  # the window's driver (a QTimer) was held until the app returned
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(CALLS, f, indent=1)
    return code


if __name__ == "__main__":
    sys.exit(main())
