"""ggml's own list of backends and devices, through ctypes, on this machine's build; and a
bundle-style build (every backend a module) when one has been built here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codeact_desktop.native import ggml_backends
from codeact_desktop.models.hardware import detect_hardware

ROOT = Path(__file__).resolve().parents[2]


def test_the_build_reports_its_backends_and_a_cpu_device():
    found = ggml_backends.load()
    assert "CPU" in found.backends
    cpu = [d for d in found.devices if d.kind == "CPU"]
    assert cpu and cpu[0].memory_total > 1 << 30
    assert ggml_backends.loaded() is found  # once per process
    hw = detect_hardware()
    assert hw.offload_backends == list(dict.fromkeys(d.backend for d in found.gpus))


def _module_builds() -> list[Path]:
    return sorted(p for p in (ROOT / "build").glob("llama-*/out") if (p / ".complete").exists())


@pytest.mark.skipif(not _module_builds(), reason="no bundle-style llama.cpp build here (packaging/llama_libs.py)")
def test_a_module_build_loads_the_best_cpu_variant_from_its_folder():
    folder = _module_builds()[0]
    code = ("import json; from codeact_desktop.native import ggml_backends as g; b = g.load(); "
            "print(json.dumps({'backends': b.backends, 'variant': b.cpu_variant, 'from_folder': b.loaded_from_folder,"
            "'devices': [d.kind for d in b.devices], 'not_loaded': b.not_loaded}))")
    env = {**os.environ, "LLAMA_CPP_LIB_PATH": str(folder)}
    env.pop("GGML_VK_VISIBLE_DEVICES", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["from_folder"] and "CPU" in found["backends"] and found["variant"]
    assert "CPU" in found["devices"]
    if "vulkan" in ggml_backends.module_names(folder):
        # a software Vulkan device (llvmpipe) is not offered unless asked for: the CPU is faster
        assert "Vulkan" in found["backends"] or "vulkan" in found["not_loaded"]
