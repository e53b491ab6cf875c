"""Every turn ends with a TurnDone, whatever fails in it: each kind of failure is injected
(the model backend, a malformed stream from a real HTTP server, the history's SQLite, the
kernel, the failure handling itself, a listener), and for each the user reads plain words,
the log gets the exception's type but none of the conversation, and the next message on
the same agent is answered. Real kernel (conftest.py), scripted replies."""

from __future__ import annotations

import itertools
import sqlite3
import uuid

import pytest

from codeact_desktop import app_log
from codeact_desktop.action_status import ActionStatus
from codeact_desktop.agent import attachments, events as ev
from codeact_desktop.agent import loop as loop_module
from codeact_desktop.kernel.state import KernelState
from codeact_desktop.llm.openai_http import OpenAIBackend
from codeact_desktop.llm.scripted import ScriptedBackend
from codeact_desktop.paths import AppPaths
from codeact_desktop.store.history import Conversation

from ..llm.test_openai_http import MALFORMED, RawStreamServer

CODE_THEN_ANSWER = ["Let me see.\n<execute>\nprint(6 * 7)\n</execute>", "It is 42."]


@pytest.fixture
def log_paths(tmp_path):
    """The app's log, in this test's own folder."""
    paths = AppPaths(data=tmp_path / "data", cache=tmp_path / "cache")
    assert app_log.setup(paths) is not None
    return paths


@pytest.fixture
def marker():
    """A unique word sent as the user's message: it must never reach the log."""
    return f"MARKER-{uuid.uuid4().hex}"


def log_text(paths: AppPaths) -> str:
    return "\n".join(app_log.tail(paths, 10_000))


def failed_turn(events: list) -> ev.ErrorEvent:
    """The turn's events end with TurnDone("error"), after one plain-words error."""
    turn = [e for e in events if not isinstance(e, KernelState)]
    assert isinstance(turn[-1], ev.TurnDone) and turn[-1].reason == "error", turn[-3:]
    errors = [e for e in turn if isinstance(e, ev.ErrorEvent)]
    assert errors, "no error was shown"
    text = errors[-1].text
    assert "Traceback" not in text and 'File "' not in text and len(text) < 600
    return errors[-1]


def answers_next(agent, events: list, same_backend: bool = False) -> ScriptedBackend | None:
    """The same agent answers the next message ("All good."): with its own backend, or a
    fresh scripted one (returned, to read what the model was sent)."""
    reply = "All good."
    fresh = None if same_backend else ScriptedBackend([reply])
    if fresh is not None:
        agent.set_backend(fresh)
    events.clear()
    record = agent.send("And now?")
    assert record.reason == "answered"
    assert [e for e in events if not isinstance(e, KernelState)][-1] == ev.TurnDone("answered", 0)
    assert agent.conversation.messages()[-1]["content"] == reply
    return fresh


class FailingBackend(ScriptedBackend):
    """Streams a piece, then raises what llama.cpp raises when a decode fails; once."""

    def __init__(self, replies, error: Exception):
        super().__init__(replies)
        self.error = error

    def generate(self, messages, params, on_piece, cancel=None, *, on_progress=None):
        if self.error is not None:
            error, self.error = self.error, None
            on_piece("Let me ")
            raise error
        return super().generate(messages, params, on_piece, cancel, on_progress=on_progress)


def fail_calls(monkeypatch, cls, name: str, calls: set[int], error: Exception) -> None:
    """``cls.name`` raises ``error`` on the calls numbered in ``calls`` (from now on, 1-based)."""
    real = getattr(cls, name)
    count = itertools.count(1)

    def failing(self, *args, **kwargs):
        if next(count) in calls:
            raise error
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, failing)


def test_a_llama_runtime_error_from_the_backend(agent_for, log_paths, marker):
    agent, _, events = agent_for([])
    agent.set_backend(FailingBackend(["All good."], RuntimeError(f"llama_decode returned -3 near {marker}")))
    agent.send(f"Compute something {marker}")
    error = failed_turn(events)
    assert "Something went wrong in this answer" in error.text and "llama_decode returned -3" in error.text
    logged = log_text(log_paths)
    assert "RuntimeError" in logged and "a turn failed" in logged
    assert marker not in logged  # neither the message nor the exception's text quoting it
    answers_next(agent, events)


@pytest.mark.model
def test_the_real_llama_backend_failing_mid_stream(agent_for, llama_backend, log_paths, marker, monkeypatch):
    agent, _, events = agent_for([], settings=loop_module.AgentSettings(max_actions=1, max_new_tokens=12,
                                                                        action_timeout_s=10))
    agent.set_backend(llama_backend)
    real = llama_backend._llm.create_completion

    def breaks_after_one_token(*args, **kwargs):
        stream = real(*args, **kwargs)
        yield next(stream)
        stream.close()
        raise RuntimeError("llama_decode returned -1")

    monkeypatch.setattr(llama_backend._llm, "create_completion", breaks_after_one_token)
    agent.send(f"Say hello {marker}")
    error = failed_turn(events)
    assert error.text.startswith("llama.cpp stopped while writing the reply (RuntimeError: llama_decode returned -1)")
    assert any(isinstance(e, ev.TextPiece) for e in events)  # it failed mid-stream, not before
    monkeypatch.undo()
    logged = log_text(log_paths)
    assert "llama.cpp failed while generating" in logged and "RuntimeError" in logged and marker not in logged
    events.clear()
    record = agent.send("Say hello again.")
    assert record.reason in ("answered", "action_limit") and record.model_calls[0]["result"]["completion_tokens"] > 0
    assert [e for e in events if not isinstance(e, KernelState)][-1].__class__ is ev.TurnDone


@pytest.mark.parametrize("fault", ["not JSON", "no choices", "content a number"])
def test_a_malformed_chunk_from_a_real_http_server(agent_for, log_paths, marker, fault):
    server = RawStreamServer()
    try:
        server.streams.append(MALFORMED[fault][0])
        agent, _, events = agent_for([])
        agent.set_backend(OpenAIBackend(server.url))
        agent.send(f"hi {marker}")
        error = failed_turn(events)
        assert "sent a reply this app cannot read" in error.text and MALFORMED[fault][1] in error.text
        assert "SECRET-REPLY" not in error.text
        logged = log_text(log_paths)
        assert "BackendError" in logged and marker not in logged and "SECRET-REPLY" not in logged
        answers_next(agent, events, same_backend=True)
    finally:
        server.close()


# add_message's calls in a turn with one action: 1 the user's message, 2 the reply with
# code, 3 the observation, 4 the answer.
@pytest.mark.parametrize("call", [1, 2, 3, 4])
def test_the_history_failing_at_each_step(agent_for, log_paths, marker, monkeypatch, call):
    agent, _, events = agent_for([*CODE_THEN_ANSWER, "All good."])
    fail_calls(monkeypatch, Conversation, "add_message", {call}, sqlite3.OperationalError("database is locked"))
    agent.send(f"What is 6 times 7? {marker}")
    error = failed_turn(events)
    assert error.text.startswith("This conversation could not be saved (OperationalError: database is locked)")
    logged = log_text(log_paths)
    assert "sqlite3.OperationalError: database is locked" in logged and marker not in logged
    assert all(a["status"] not in (ActionStatus.PROPOSED, ActionStatus.RUNNING) for a in agent.conversation.actions())
    answers_next(agent, events)


def test_a_full_disk_says_so(agent_for, log_paths, monkeypatch):
    agent, _, events = agent_for(["All good."])
    fail_calls(monkeypatch, Conversation, "add_message", {1}, sqlite3.OperationalError("database or disk is full"))
    agent.send("hi")
    assert "the disk is full: free some space" in failed_turn(events).text
    answers_next(agent, events)


def test_the_kernel_raising_closes_the_action(agent_for, log_paths, marker, monkeypatch):
    agent, _, events = agent_for(CODE_THEN_ANSWER)
    fail_calls(monkeypatch, type(agent.kernel), "execute", {1}, RuntimeError(f"the client broke {marker}"))
    agent.send(f"What is 6 times 7? {marker}")
    error = failed_turn(events)
    assert "RuntimeError: the client broke" in error.text
    [action] = agent.conversation.actions()
    assert action["status"] == ActionStatus.ERROR
    finished = [e for e in events if isinstance(e, ev.ActionFinished)]
    assert finished[-1].status is ActionStatus.ERROR
    assert marker not in log_text(log_paths)
    fresh = answers_next(agent, events)
    # the model reads that its code did not finish, as after any other action
    assert "[The app failed while handling this code: RuntimeError" in fresh.calls[0][-2]["content"]


def test_a_failure_inside_the_failure_handler(agent_for, log_paths, monkeypatch):
    """The history fails, and fails again while the failure is written down: the user is
    still told, and the turn still ends."""
    agent, _, events = agent_for([*CODE_THEN_ANSWER, "All good."])
    fail_calls(monkeypatch, Conversation, "add_message", {2, 3}, sqlite3.OperationalError("disk I/O error"))
    agent.send("What is 6 times 7?")
    error = failed_turn(events)
    assert "could not be saved" in error.text
    assert "could not be recorded in the history" in log_text(log_paths)
    answers_next(agent, events)


def test_regenerate_and_edit_when_the_history_fails(agent_for, log_paths, monkeypatch):
    agent, _, events = agent_for(["First.", "All good.", "All good."])
    agent.send("hi")
    fail_calls(monkeypatch, Conversation, "truncate_from", {1, 2}, sqlite3.OperationalError("database is locked"))
    events.clear()
    agent.regenerate()
    failed_turn(events)
    events.clear()
    agent.edit_last("hello")
    failed_turn(events)
    events.clear()
    assert agent.regenerate().reason == "answered"
    assert [e for e in events if not isinstance(e, KernelState)][-1] == ev.TurnDone("answered", 0)


def test_an_attachment_failing_in_an_unexpected_way(agent_for, tmp_path, log_paths, monkeypatch):
    agent, _, events = agent_for(["All good.", "All good."])
    (tmp_path / "data.csv").write_text("x\n1\n")

    def broken_copy(files, workspace):
        raise ValueError("a name the copier did not expect")

    monkeypatch.setattr(loop_module, "copy_into_workspace", broken_copy)
    agent.send("Read it.", [tmp_path / "data.csv"])
    assert "ValueError" in failed_turn(events).text
    monkeypatch.setattr(loop_module, "copy_into_workspace", attachments.copy_into_workspace)
    answers_next(agent, events)


def test_a_listener_that_raises_does_not_stop_the_turn_ending(agent_for, log_paths):
    agent, _, events = agent_for(["All good.", "All good."])

    def listener(event):
        events.append(event)
        if isinstance(event, ev.TextPiece):
            raise KeyError("the view broke")

    agent.on_event = listener
    record = agent.send("hi")  # nothing escapes send
    assert record.reason == "error"
    failed_turn(events)
    assert "KeyError" in log_text(log_paths)
    agent.on_event = events.append
    answers_next(agent, events)
