"""``codeact-desktop --self-test [--model GGUF]``: this install, checked end to end.

What a first start needs, for real: the kernel's environment is created (from what the
install carries: no network, no compiler), a restricted kernel starts and runs
``print(1)`` and a plot, the GGUF given loads in llama.cpp and generates tokens, and the
window opens and closes offscreen. One verdict line at the end; exit status 0 only when
every check passed. The window part uses a throwaway data folder, so the user's
conversations are never touched.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from .action_status import ActionStatus
from .paths import AppPaths

log = logging.getLogger(__name__)
_PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()"


def _kernel_checks(paths: AppPaths, folder: Path) -> list[tuple[str, bool, str]]:
    from .engine import start_kernel

    checks = []
    started = time.monotonic()
    try:
        kernel = start_kernel(paths, folder, background=False)
    except Exception as exc:  # every failure is a line of the verdict, not a traceback (that goes to the log)
        log.error("self-test: the kernel did not start", exc_info=True)
        return [("kernel", False, f"did not start: {exc}")]
    try:
        report = kernel.sandbox
        layers = report.layers
        restricted = not report.missing
        how = f"{len(layers)} restriction layers" if restricted else f"NOT restricted: {report.why_not()}"
        checks.append(("kernel", restricted, f"ready in {time.monotonic() - started:.1f} s, {how}"))
        done = kernel.execute("print(1)", timeout=60)
        printed = "".join(i.text for i in done.items if i.kind == "stdout").strip()
        checks.append(("print(1)", done.status == ActionStatus.OK and printed == "1", printed or done.status))
        done = kernel.execute(_PLOT, timeout=120)
        images = [i for i in done.items if i.kind == "image" and (i.data or b"").startswith(b"\x89PNG")]
        checks.append(("plot", bool(images), f"{len(images[0].data)} byte PNG" if images else done.status))
    finally:
        kernel.shutdown()
    return checks


def _model_checks(model: str) -> list[tuple[str, bool, str]]:
    from .engine import open_backend
    from .llm.base import GenerationParams
    from .native import ggml_backends

    try:
        backend = open_backend(model_path=model, n_ctx=2048)
    except Exception as exc:
        log.error("self-test: the model did not load", exc_info=True)
        return [("model", False, f"did not load: {exc}")]
    try:
        result = backend.generate([{"role": "user", "content": "Say hello."}],
                                  GenerationParams(max_tokens=16), on_piece=lambda piece: None)
        found = ggml_backends.loaded()
        where = backend.info.device.upper()
        if found and found.cpu_variant:
            where += f" ({found.cpu_variant})"
        ok = result.completion_tokens > 0
        return [("model", ok, f"{result.completion_tokens} tokens at {result.tokens_per_second:.1f}/s on {where}")]
    except Exception as exc:
        log.error("self-test: the model did not generate", exc_info=True)
        return [("model", False, f"did not generate: {exc}")]
    finally:
        backend.close()


def _window_checks(folder: Path) -> list[tuple[str, bool, str]]:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        from PySide6.QtWidgets import QApplication

        from .settings import Settings
        from .store.history import HistoryStore
        from .ui.main_window import MainWindow

        app = QApplication.instance() or QApplication(sys.argv[:1])
        paths = AppPaths(data=folder / "data", cache=folder / "cache")
        window = MainWindow(HistoryStore(paths.history_db), paths, None, Settings())
        window.show()
        app.processEvents()
        shown = window.isVisible() and window.width() > 0
        window.close()
        app.processEvents()
        return [("window", shown, "opened and closed offscreen" if shown else "did not show")]
    except Exception as exc:
        log.error("self-test: the window did not open", exc_info=True)
        return [("window", False, f"{type(exc).__name__}: {exc}")]


def self_test(model: str | None) -> int:
    started = time.monotonic()
    paths = AppPaths.default()
    checks: list[tuple[str, bool, str]] = []
    with tempfile.TemporaryDirectory(prefix="codeact-self-test-") as tmp:
        folder = Path(tmp)
        (folder / "workspace").mkdir()
        checks += _kernel_checks(paths, folder / "workspace")
        if model:
            checks += _model_checks(model)
        else:
            checks.append(("model", True, "skipped (no --model given)"))
        checks += _window_checks(folder)
    for name, ok, detail in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
    passed = all(ok for _, ok, _ in checks)
    log.info("self-test: %s", ", ".join(f"{name} {'ok' if ok else 'FAILED'}" for name, ok, _ in checks))
    failed = [name for name, ok, _ in checks if not ok]
    print(f"self-test: {'PASS' if passed else 'FAIL (' + ', '.join(failed) + ')'} — "
          + "; ".join(f"{n}: {d}" for n, ok, d in checks if n in ("kernel", "model"))
          + f" — {time.monotonic() - started:.1f} s", flush=True)
    return 0 if passed else 1
