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


# -- run_command closes what it opened on every way out (in-process, a real kernel) ------

@pytest.fixture
def started_kernels(monkeypatch):
    """The kernels `run` starts (the real start_kernel), to check they were shut down."""
    from codeact_desktop import cli_run

    started = []
    real = cli_run.start_kernel

    def spy(*args, **kwargs):
        started.append(real(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(cli_run, "start_kernel", spy)
    return started


def run_in_process(monkeypatch, backend_or_error, tmp_path, *extra):
    from codeact_desktop import cli, cli_run

    def open_backend(**kwargs):
        if isinstance(backend_or_error, BaseException):
            raise backend_or_error
        return backend_or_error

    monkeypatch.setattr(cli_run, "open_backend", open_backend)
    return cli.main(["run", "hi", "--yes", "--workdir", str(tmp_path / "ws"), "--timeout", "20", *extra])


def shut_down(kernel) -> bool:
    from codeact_desktop.kernel.state import KernelStatus

    return not kernel.is_alive and kernel.state.status == KernelStatus.STOPPED


def test_run_shuts_the_kernel_down_when_the_backend_fails_to_open(monkeypatch, tmp_path, started_kernels, capsys):
    from codeact_desktop.llm.base import BackendError

    assert run_in_process(monkeypatch, BackendError("No such model."), tmp_path) == 1
    assert "error: No such model." in capsys.readouterr().err
    [kernel] = started_kernels
    assert shut_down(kernel)


def test_run_shuts_the_kernel_down_after_a_failed_turn(monkeypatch, tmp_path, started_kernels, capsys):
    from codeact_desktop.llm.scripted import ScriptedBackend

    def broken(messages):
        raise RuntimeError("llama_decode returned -3")

    assert run_in_process(monkeypatch, ScriptedBackend(["<execute>\nprint(1)\n</execute>", broken]), tmp_path) == 1
    out = capsys.readouterr().out
    assert "[error] Something went wrong in this answer (RuntimeError: llama_decode returned -3)" in out
    assert "Traceback" not in out
    [kernel] = started_kernels
    assert shut_down(kernel)


def test_run_shuts_the_kernel_down_when_something_unexpected_escapes(monkeypatch, tmp_path, started_kernels):
    from codeact_desktop import cli_run
    from codeact_desktop.llm.scripted import ScriptedBackend

    def fails(*args, **kwargs):
        raise RuntimeError("the transcript writer broke")

    monkeypatch.setattr(cli_run, "write_transcript", fails)
    with pytest.raises(RuntimeError, match="transcript writer broke"):
        run_in_process(monkeypatch, ScriptedBackend(["Hello."]), tmp_path, "--json", str(tmp_path / "t.json"))
    [kernel] = started_kernels
    assert shut_down(kernel)


def test_run_shuts_the_kernel_down_on_ctrl_c_while_loading(monkeypatch, tmp_path, started_kernels, capsys):
    assert run_in_process(monkeypatch, KeyboardInterrupt(), tmp_path) == 130
    assert "[stopped]" in capsys.readouterr().err
    [kernel] = started_kernels
    assert shut_down(kernel)


def test_run_shuts_the_kernel_down_on_ctrl_c_mid_turn(monkeypatch, tmp_path, started_kernels):
    import signal

    from codeact_desktop.llm.scripted import ScriptedBackend

    def interrupt(messages):  # on the turn's worker; the main thread, waiting on it, gets the Ctrl-C
        os.kill(os.getpid(), signal.SIGINT)
        return "A long answer, streamed slowly. " * 20

    backend = ScriptedBackend([interrupt], piece_delay=0.05)
    # Python's own Ctrl-C handler, as in the `codeact-desktop run` process a terminal signals:
    # in the full suite something earlier in this process leaves another one (the reply then
    # ran to its end, exit 0, twice in a fresh clone's run, never alone).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert run_in_process(monkeypatch, backend, tmp_path) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    [kernel] = started_kernels
    assert shut_down(kernel)


def test_run_says_when_the_kernel_dies_and_why(monkeypatch, tmp_path, started_kernels, capsys):
    from codeact_desktop.llm.scripted import ScriptedBackend

    backend = ScriptedBackend(["<execute>\nimport os\nos._exit(3)\n</execute>", "It stopped."])
    assert run_in_process(monkeypatch, backend, tmp_path) == 0
    out = capsys.readouterr().out
    assert "[kernel] died" in out, out  # the kernel's own event, on the agent's stream


def test_code_asked_about_in_the_terminal_hides_nothing(monkeypatch, capsys):
    from codeact_desktop.cli_run import ask_in_terminal

    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    code = 'print("rows")\rimport os\u2028x = 1\ns = "none\u202e \u2066# admin\u2069 \u2066"\u200b'
    assert not ask_in_terminal("a1", code).run
    printed = capsys.readouterr().out
    assert all(c not in printed for c in "\r\u2028\u202e\u2066\u200b")
    assert "\\rimport os\\u2028x = 1" in printed and "shown as escapes" in printed


def test_names_that_pass_for_others_are_named_in_the_terminal(monkeypatch, capsys):
    from codeact_desktop.cli_run import ask_in_terminal

    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    ask_in_terminal("a1", 'path = "./build"\n\u0440ath = "/home"\nprint("caf\u00e9")  # na\u00efve\n')
    printed = capsys.readouterr().out
    assert "\u0440ath (\u0440 is U+0440 CYRILLIC SMALL LETTER ER)" in printed
    assert "U+00E9" not in printed and "U+00EF" not in printed  # strings and comments are text, not names


def test_the_app_starts_no_blas_threads_and_kernels_keep_theirs(monkeypatch, app_paths, kernel_venv, tmp_path):
    # numpy's OpenBLAS spins a thread per core for 0.1 s of CPU after its import: in the app,
    # which does no linear algebra, that is CPU taken from the start. Not so for the user's code.
    from codeact_desktop import cli
    from codeact_desktop.engine import kernel_env

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert "OPENBLAS_NUM_THREADS" not in kernel_env(app_paths, kernel_venv, tmp_path)
