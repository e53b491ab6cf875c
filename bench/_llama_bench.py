"""llama.cpp's own ``llama-bench``, the native peer of the llama.cpp benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path


def llama_bench(build: Path, model: Path, *, threads: int, layers: int, prompt: int, generate: int,
                runs: int = 1, flags: tuple[str, ...] = (), env: dict | None = None) -> tuple[float, float]:
    """Prompt and generation tokens/s of one llama-bench run from ``build`` (its folder of
    binaries and libraries)."""
    done = subprocess.run([str(build / "llama-bench"), "-m", str(model), "-t", str(threads), "-ngl", str(layers),
                           "-p", str(prompt), "-n", str(generate), "-r", str(runs), *flags, "-o", "json"],
                          env={**(env or os.environ), "LD_LIBRARY_PATH": str(build)}, capture_output=True,
                          text=True, timeout=3600, cwd=build)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    rows = json.loads(done.stdout)
    pp = next(r["avg_ts"] for r in rows if r["n_prompt"] > 0)
    tg = next(r["avg_ts"] for r in rows if r["n_gen"] > 0)
    return pp, tg
