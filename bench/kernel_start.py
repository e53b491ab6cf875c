"""What each restriction layer adds to a kernel's start.

Time from "start a kernel" to a kernel that answers (``kernel_info`` replied, no warm-up
imports), the median of several starts, for:

- the peer: raw jupyter_client starting ipykernel from the kernel venv, unrestricted;
- our launcher (``-I -S``, resource limits) with Landlock and its own network
  namespace, as where bubblewrap cannot run;
- the same inside bubblewrap's namespaces: the default on Linux.

    .venv/bin/python bench/kernel_start.py
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
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager  # noqa: E402

from codeact_desktop.engine import kernel_env  # noqa: E402
from codeact_desktop.kernel.conversation_kernel import ConversationKernel  # noqa: E402
from codeact_desktop.kernel.venv import ensure_kernel_venv  # noqa: E402
from codeact_desktop.paths import AppPaths  # noqa: E402

N = 5


class _Spec(KernelSpecManager):
    def __init__(self, spec):
        super().__init__()
        self.spec = spec

    def get_kernel_spec(self, name):
        return self.spec


def raw_start(venv, env, cwd) -> float:
    spec = KernelSpec(argv=[str(venv.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                      display_name="raw", language="python", env={})
    t0 = time.perf_counter()
    km = KernelManager(kernel_name="raw", kernel_spec_manager=_Spec(spec), transport="ipc")
    km.ip = str(Path(tempfile.mkdtemp(prefix="raw-")) / "k")  # Unix sockets, as ours
    km.start_kernel(cwd=str(cwd), env=dict(env))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    took = time.perf_counter() - t0
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return took


def our_start(venv, env, cwd) -> tuple[float, str]:
    t0 = time.perf_counter()
    session = ConversationKernel(venv, cwd, env, warm_up=False)
    session.start()
    took = time.perf_counter() - t0
    summary = session.sandbox.summary()
    session.shutdown()
    return took, summary


def main() -> None:
    paths = AppPaths.default()
    venv = ensure_kernel_venv(paths.kernel_venv)
    workspace = Path(tempfile.mkdtemp(prefix="ws-"))
    env = kernel_env(paths, venv, workspace)
    raw_start(venv, env, workspace)  # warm the page cache for everyone
    rows, peer = [], median([raw_start(venv, env, workspace) for _ in range(N)])
    rows.append(["raw jupyter_client, unrestricted (peer)", round(peer, 3), 1.0, "-"])
    cases = [("launcher: limits, Landlock, network namespace", "landlock"),
             ("the same in bubblewrap's namespaces (default)", None)]
    for name, sandbox in cases:
        os.environ.pop("CODEACT_SANDBOX", None)
        if sandbox:
            os.environ["CODEACT_SANDBOX"] = sandbox
        samples = [our_start(venv, env, workspace) for _ in range(N)]
        os.environ.pop("CODEACT_SANDBOX", None)
        took = median([s[0] for s in samples])
        rows.append([name, round(took, 3), round(took / peer, 2), samples[-1][1][:100]])
    report("kernel_start", ["path", "ready s (median)", "ratio vs peer", "what was applied"], rows,
           {"starts_per_path": N})


if __name__ == "__main__":
    main()
