"""The loop end to end with real llama.cpp, the real GGUF and the real kernel."""

import pytest

from codeact_desktop.agent import events as ev
from codeact_desktop.agent.loop import AgentSettings, CodeActAgent
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
