"""The loop end to end with real llama.cpp, the real GGUF and the real kernel."""

import json

import pytest

from codeact_desktop.agent import events as ev
from codeact_desktop.agent.loop import AgentSettings, CodeActAgent
from codeact_desktop.resources import messages
from codeact_desktop.store.history import HistoryStore

pytestmark = pytest.mark.model


def test_real_model_writes_an_action_that_runs_and_reads_its_result(llama_backend, make_kernel, tmp_path):
    store = HistoryStore(tmp_path / "history.sqlite3")
    conversation = store.create_conversation(tmp_path / "workspaces")
    events = []
    agent = CodeActAgent(llama_backend, make_kernel(conversation.workspace), conversation,
                         AgentSettings(max_actions=1, max_new_tokens=48), on_event=events.append)
    # One worked example in the history, as CodeAct's few-shot prompts do, so that the
    # 270M test model answers in the format.
    conversation.add_message("user", "user", "What is 6 times 7?")
    conversation.add_message("assistant", "assistant", "<execute>\nprint(6*7)\n</execute>")
    conversation.add_message("user", "observation", "Execution Output:\n42\n")
    conversation.add_message("assistant", "assistant", "6 times 7 is 42.")

    record = agent.send("What is 12 times 11?")

    first = record.actions[0]
    assert first["status"] == "ok" and "12" in first["code"] and "11" in first["code"]
    assert first["observation"] == "Execution Output:\n132\n"
    # the model was called again with the observation as the last user turn
    assert record.model_calls[1]["messages"][-1]["content"].startswith("Execution Output:\n132\n")
    # and that second call re-used the cached prefix
    second = record.model_calls[1]["result"]
    assert second["prompt_tokens_evaluated"] < second["prompt_tokens"] // 2
    assert record.reason in ("answered", "action_limit")
    assert any(isinstance(e, ev.TextPiece) for e in events)
    assert store.integrity_ok()
    store.close()


def agent_on(llama_backend, make_kernel, tmp_path, settings):
    store = HistoryStore(tmp_path / "history.sqlite3")
    conversation = store.create_conversation(tmp_path / "workspaces")
    events = []
    agent = CodeActAgent(llama_backend, make_kernel(conversation.workspace), conversation, settings,
                         on_event=events.append)
    return agent, events, store


def test_real_model_says_it_is_reading_a_long_prompt_before_its_first_words(llama_backend, make_kernel, tmp_path):
    agent, events, store = agent_on(llama_backend, make_kernel, tmp_path,
                                    AgentSettings(max_actions=1, max_new_tokens=8))
    table = " ".join(f"Item {i} weighs {i * 7 % 13} kg." for i in range(120))
    agent.send(f"{table}\nHow much does item 5 weigh?")
    first_words = next(i for i, e in enumerate(events) if isinstance(e, ev.TextPiece))
    working = [e for e in events[:first_words] if isinstance(e, ev.ModelWorking)]
    assert working[0] == ev.ModelWorking("reading")  # at once, before the backend knows anything
    progress = [(e.done, e.total) for e in working[1:]]
    total = progress[-1][1]
    assert total > llama_backend._llm.n_batch and progress[-1] == (total, total)
    assert len(progress) >= 3 and progress == sorted(progress)
    store.close()


def test_real_model_that_cannot_act_is_told_once(llama_backend, make_kernel, tmp_path):
    """Gemma 3 270M without a worked example: asked to plot, it describes a plot, line
    after line, until the token limit."""
    agent, events, store = agent_on(llama_backend, make_kernel, tmp_path,
                                    AgentSettings(max_actions=1, max_new_tokens=96))
    first = agent.send("Plot a sine wave from 0 to 2 pi.")
    reply = first.model_calls[0]["result"]
    assert first.actions == [] and "<execute>" not in reply["text"]
    notices = [e.text for e in events if isinstance(e, ev.Notice)]
    assert notices == [messages()["model_cannot_act"]]
    agent.send("Compute the factorial of 20.")
    assert [e.text for e in events if isinstance(e, ev.Notice)] == notices  # once
    hint = [m for m in agent.conversation.messages() if m["kind"] == "notice"]
    assert len(hint) == 1 and json.loads(hint[0]["meta"])["model_unfit"] in ("length", "repeats")
    store.close()
