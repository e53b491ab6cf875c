"""Kernel round trips: our ConversationKernel against raw jupyter_client on the same venv.

- round trip of ``1+1`` on a running kernel (median of many);
- 20 MB printed at once: ours reaches the app in 1 MB messages through the channel relay;
- first-action latency: from "new conversation" to the first result;
- the first plot of a new conversation (kernel started and warmed in the background
  while the user types, 3 s here) against a cold kernel's first plot.

    python bench/kernel_latency.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import median, report  # noqa: E402

os.environ.setdefault("CODEACT_HOME", tempfile.mkdtemp(prefix="codeact-bench-"))

from jupyter_client import KernelManager  # noqa: E402
from jupyter_client.kernelspec import KernelSpec  # noqa: E402

from codeact_desktop.engine import kernel_env  # noqa: E402
from codeact_desktop.kernel.conversation_kernel import ConversationKernel  # noqa: E402
from codeact_desktop.kernel.venv import ensure_kernel_venv  # noqa: E402
from codeact_desktop.paths import AppPaths  # noqa: E402

PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"
PRINT = "print('x' * 20_000_000)"
N = 200


def raw_kernel(venv, env, cwd):
    km = KernelManager()
    km._kernel_spec = KernelSpec(argv=[str(venv.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                 display_name="raw", language="python", env={})
    km.start_kernel(cwd=str(cwd), env=dict(env))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


def raw_execute(kc, code):
    kc.execute_interactive(code, timeout=60, output_hook=lambda msg: None)


def timed(fn, n=1):
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return median(samples)


def main() -> None:
    paths = AppPaths.default()
    venv = ensure_kernel_venv(paths.kernel_venv)
    work = Path(tempfile.mkdtemp())
    env = kernel_env(paths, venv, work)

    # round trip on a running kernel
    ours = ConversationKernel(venv, work, env)
    ours.start()
    ours_rt = timed(lambda: ours.execute("1+1"), N)
    ours_print = timed(lambda: ours.execute(PRINT, timeout=60), 5)
    ours.shutdown()
    km, kc = raw_kernel(venv, env, work)
    raw_rt = timed(lambda: raw_execute(kc, "1+1"), N)
    raw_print = timed(lambda: raw_execute(kc, PRINT), 5)
    kc.stop_channels()
    km.shutdown_kernel(now=True)

    # first action: start + first 1+1
    def ours_first():
        session = ConversationKernel(venv, work, env, warm_up=False)
        t0 = time.perf_counter()
        session.start_in_background()
        session.execute("1+1")
        elapsed = time.perf_counter() - t0
        session.shutdown()
        return elapsed

    def raw_first():
        t0 = time.perf_counter()
        km, kc = raw_kernel(venv, env, work)
        raw_execute(kc, "1+1")
        elapsed = time.perf_counter() - t0
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        return elapsed

    ours_first_s = median([ours_first() for _ in range(3)])
    raw_first_s = median([raw_first() for _ in range(3)])

    # first plot: warm (started while the user types) vs cold
    def warm_plot():
        session = ConversationKernel(venv, work, env)
        session.start_in_background()
        time.sleep(3.0)  # the user types their request
        t0 = time.perf_counter()
        session.execute(PLOT)
        elapsed = time.perf_counter() - t0
        session.shutdown()
        return elapsed

    def cold_plot():
        km, kc = raw_kernel(venv, env, work)
        t0 = time.perf_counter()
        raw_execute(kc, PLOT)
        elapsed = time.perf_counter() - t0
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        return elapsed

    warm = median([warm_plot() for _ in range(3)])
    cold = median([cold_plot() for _ in range(3)])

    report(
        "kernel_latency",
        ["measure", "ours s", "raw jupyter_client s", "ratio ours/raw"],
        [["round trip 1+1 (median of 200)", round(ours_rt, 5), round(raw_rt, 5), round(ours_rt / raw_rt, 3)],
         ["20 MB printed (median of 5)", round(ours_print, 3), round(raw_print, 3), round(ours_print / raw_print, 3)],
         ["first action: start + 1+1", round(ours_first_s, 3), round(raw_first_s, 3),
          round(ours_first_s / raw_first_s, 3)],
         ["first plot of a conversation (ours warmed while typing; raw cold)", round(warm, 3), round(cold, 3),
          round(warm / cold, 3)]],
        {"transport_ours": "ipc", "transport_raw": "tcp"},
    )


if __name__ == "__main__":
    main()
