"""A real kernel tells its lifecycle as KernelState events: start, runs, interrupts,
restarts, a death while idle (noticed with no code running), shutdown, and listeners
that misbehave."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import pytest

from codeact_desktop.action_status import ActionStatus
from codeact_desktop.engine import kernel_env
from codeact_desktop.kernel import conversation_kernel
from codeact_desktop.kernel.conversation_kernel import ConversationKernel, KernelError
from codeact_desktop.kernel.kernel_process import innermost_process
from codeact_desktop.kernel.state import KernelState, KernelStatus

S = KernelStatus


class Recorder:
    """A listener that keeps every state it hears, and lets a test wait for one."""

    def __init__(self) -> None:
        self.states: list[KernelState] = []
        self.threads: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, state: KernelState) -> None:
        with self._changed:
            self.states.append(state)
            self.threads.append(threading.current_thread().name)
            self._changed.notify_all()

    @property
    def statuses(self) -> list[KernelStatus]:
        return [s.status for s in self.states]

    def clear(self) -> None:
        with self._changed:
            self.states.clear()
            self.threads.clear()

    def wait_for(self, status: KernelStatus, timeout: float) -> KernelState | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((s for s in self.states if s.status == status), None)
                left = deadline - time.monotonic()
                if found is not None or left <= 0:
                    return found
                self._changed.wait(left)


@pytest.fixture
def unstarted(kernel_venv, app_paths, tmp_path):
    """Kernels built but not started (so a listener hears the start); shut down afterwards."""
    made: list[ConversationKernel] = []

    def make(**kwargs) -> tuple[ConversationKernel, Recorder]:
        workspace = tmp_path / f"ws{len(made)}"
        kernel = ConversationKernel(kernel_venv, workspace, kernel_env(app_paths, kernel_venv, workspace), **kwargs)
        recorder = Recorder()
        kernel.subscribe(recorder)
        made.append(kernel)
        return kernel, recorder

    yield make
    for kernel in made:
        kernel.shutdown()


@pytest.fixture
def started(unstarted):
    kernel, recorder = unstarted()
    kernel.start()
    recorder.clear()
    return kernel, recorder


def test_start_tells_starting_then_ready_with_its_restrictions(unstarted):
    kernel, recorder = unstarted()
    assert kernel.state.status == S.STOPPED  # before any start
    kernel.start()
    assert recorder.statuses == [S.STARTING, S.READY]
    ready = recorder.states[-1]
    assert ready.sandbox is kernel.sandbox and ready.sandbox is not None and ready.restarts == 0
    assert kernel.state == ready


def test_a_start_in_the_background_is_told_from_its_own_thread(unstarted):
    kernel, recorder = unstarted()
    kernel.start_in_background()
    assert recorder.wait_for(S.READY, 60) is not None
    assert recorder.statuses == [S.STARTING, S.READY]
    assert set(recorder.threads) == {"kernel-start"}


def test_a_run_is_busy_then_ready(started):
    kernel, recorder = started
    result = kernel.execute("1 + 1")
    assert result.status is ActionStatus.OK and result.status == "ok"
    assert recorder.statuses == [S.BUSY, S.READY]
    assert recorder.states[-1].sandbox is kernel.sandbox


def test_a_timeout_is_interrupted_then_ready_and_state_kept(started):
    kernel, recorder = started
    kernel.execute("kept = 'still here'")
    recorder.clear()
    result = kernel.execute("import time\nwhile True: time.sleep(0.05)", timeout=1)
    assert result.status is ActionStatus.TIMEOUT and not result.kernel_state_lost
    assert recorder.statuses == [S.BUSY, S.INTERRUPTED, S.READY]
    assert recorder.states[-1].restarts == 0
    assert kernel.execute("print(kept)").items[0].text == "still here\n"


def test_a_death_while_idle_is_told_at_once_and_the_next_run_restarts(started):
    kernel, recorder = started
    kernel.execute("lost = 1")
    recorder.clear()
    os.kill(innermost_process(kernel.pid), signal.SIGKILL)
    died = recorder.wait_for(S.DIED, 3)  # nothing runs: only the watchdog can notice
    assert died is not None, recorder.statuses
    assert "SIGKILL" in died.detail, died.detail
    assert recorder.threads == ["kernel-watchdog"]
    time.sleep(0.5)
    assert recorder.statuses == [S.DIED]  # told once, and no restart of its own
    result = kernel.execute("print('lost' in globals())")
    assert result.status == ActionStatus.OK and result.items[0].text == "False\n"
    assert recorder.statuses == [S.DIED, S.RESTARTING, S.READY, S.BUSY, S.READY]
    assert recorder.states[2].restarts == 1 and recorder.states[2].sandbox is kernel.sandbox


def test_a_death_during_a_run_is_told_once(started):
    kernel, recorder = started
    result = kernel.execute("import os; os._exit(3)", timeout=20)
    assert result.status is ActionStatus.DIED and result.kernel_state_lost and "exit code 3" in result.detail
    # The run and the watchdog both see it; the listener hears it once, with the same reason.
    assert recorder.statuses == [S.BUSY, S.DIED, S.RESTARTING, S.READY]
    assert recorder.states[1].detail == result.detail
    assert recorder.states[-1].restarts == 1


def test_restart_tells_restarting_then_ready_counting_restarts(started):
    kernel, recorder = started
    kernel.restart()
    kernel.restart()
    assert recorder.statuses == [S.RESTARTING, S.READY, S.RESTARTING, S.READY]
    assert [s.restarts for s in recorder.states] == [0, 1, 1, 2]
    assert S.DIED not in recorder.statuses  # a restart the app asked for is no death


def test_shutdown_tells_stopped_and_no_death(started):
    kernel, recorder = started
    kernel.shutdown()
    time.sleep(0.5)  # the watchdog would have told a death by now
    assert recorder.statuses == [S.STOPPED] and kernel.state.status == S.STOPPED
    assert not kernel.is_alive


def test_a_start_that_fails_tells_failed_with_why(unstarted):
    kernel, recorder = unstarted(restricted=False, argv_prefix=["/bin/false"])
    with pytest.raises(KernelError):
        kernel.start()
    assert recorder.statuses == [S.STARTING, S.FAILED]
    assert recorder.states[-1].detail and kernel.state.status == S.FAILED


def test_a_restricted_start_that_falls_back_is_ready_not_failed(unstarted, monkeypatch):
    real = conversation_kernel.launcher_argv
    monkeypatch.setattr(conversation_kernel, "launcher_argv", lambda *args: ["/bin/false", *real(*args)])
    kernel, recorder = unstarted()
    kernel.start()
    time.sleep(0.5)
    assert recorder.statuses == [S.STARTING, S.READY]
    assert recorder.states[-1].sandbox.missing


def test_a_listener_that_raises_does_not_break_the_kernel(started, caplog):
    kernel, recorder = started

    def broken(state):
        raise ValueError("a view with a bug")

    kernel.subscribe(broken)
    after = Recorder()
    kernel.subscribe(after)
    with caplog.at_level(logging.ERROR, logger="codeact_desktop.kernel.state"):
        result = kernel.execute("print(6 * 7)")
    assert result.status == ActionStatus.OK and result.items[0].text == "42\n"
    assert after.statuses == [S.BUSY, S.READY]  # the listeners after it still hear
    assert "listener failed on busy" in caplog.text and "ValueError" in caplog.text  # the log keeps no message text


def test_unsubscribe_stops_the_calls(started):
    kernel, recorder = started
    other = Recorder()
    unsubscribe = kernel.subscribe(other)
    kernel.execute("1")
    unsubscribe()
    unsubscribe()  # twice is harmless
    kernel.execute("2")
    assert other.statuses == [S.BUSY, S.READY]
    assert recorder.statuses == [S.BUSY, S.READY, S.BUSY, S.READY]
