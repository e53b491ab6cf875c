"""The headless CLI, run as a user would: a real process, the real GGUF."""

import json
import os
import subprocess
import sys
import time

import pytest

CLI = [sys.executable, "-m", "codeact_desktop.cli"]


def run_cli(*args, timeout=300):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=dict(os.environ))


@pytest.mark.model
def test_run_streams_and_writes_a_transcript(gguf_path, tmp_path):
    transcript = tmp_path / "out" / "t.json"
    data = tmp_path / "data.csv"
    data.write_text("x\n1\n2\n")
    done = run_cli("run", "Count the rows in data.csv.", "--model", str(gguf_path), "--file", str(data),
                   "--workdir", str(tmp_path / "ws"), "--max-actions", "2", "--max-tokens", "48",
                   "--timeout", "20", "--json", str(transcript), "--yes")
    assert done.returncode == 0, done.stderr
    assert "[llama.cpp: Gemma 3 270m, cpu, context 8192]" in done.stderr
    t = json.loads(transcript.read_text())
    assert t["reason"] in ("answered", "action_limit")
    assert t["messages"][0]["role"] == "system"
    assert t["model_calls"][0]["messages"][1]["content"].startswith(
        "Count the rows in data.csv.\n\nFiles uploaded to the working directory:\n- ./data.csv (6 bytes, text/csv)")
    assert (tmp_path / "ws" / "data.csv").exists()
    assert t["tokens"]["prompt"] > 0 and t["tokens"]["completion"] > 0
    assert set(t["timings"]) == {"startup_s", "total_s", "generation_s", "execution_s"}
    # what streamed to the terminal is the model's text
    assert t["model_calls"][0]["result"]["text"].strip()[:20] in done.stdout


def test_bad_model_path_is_a_clear_error(tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_text("not a model")
    done = run_cli("run", "hi", "--model", str(bogus), "--yes")
    assert done.returncode == 1
    assert "is not a GGUF model file" in done.stderr and "Traceback" not in done.stderr


def test_unreachable_server_is_a_clear_error():
    done = run_cli("run", "hi", "--base-url", "http://127.0.0.1:9/v1", "--yes", timeout=60)
    assert done.returncode == 1
    assert "Cannot reach the server" in done.stderr and "Traceback" not in done.stderr


def test_without_a_terminal_code_needs_yes():
    done = run_cli("run", "hi", "--model", "x.gguf")
    assert done.returncode == 2 and "--yes" in done.stderr


def test_doctor_reports_runtime_kernel_and_sandbox():
    done = run_cli("doctor")
    assert done.returncode == 0
    for heading in ("Model runtime", "GPU offload", "memory", "Python kernel", "Restriction layers", "secrets"):
        assert heading in done.stdout
    if sys.platform == "linux":  # the layers a real kernel got, not what might be available
        assert "Landlock ABI" in done.stdout and "resource limits" in done.stdout


def test_no_arguments_opens_the_window(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CODEACT_HOME=str(tmp_path / "home"))
    proc = subprocess.Popen(CLI, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(6)
        assert proc.poll() is None, proc.communicate()[1]  # still up: the event loop runs
        assert (tmp_path / "home" / "data" / "history.sqlite3").exists()
    finally:
        proc.terminate()
        proc.wait(10)
