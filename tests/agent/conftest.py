"""The agent with a scripted model and a real kernel, for the loop's tests."""

import pytest

from codeact_desktop.agent.loop import AgentSettings, CodeActAgent
from codeact_desktop.llm.scripted import ScriptedBackend
from codeact_desktop.store.history import HistoryStore


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "history.sqlite3")
    yield s
    s.close()


@pytest.fixture
def agent_for(store, make_kernel, tmp_path):
    """make(replies, settings=..., backend_kwargs=..., approve=...) -> (agent, backend, events)."""
    def make(replies, **kwargs):
        conversation = store.create_conversation(tmp_path / "workspaces")
        kernel = make_kernel(conversation.workspace)
        events = []
        settings = kwargs.pop("settings", AgentSettings(action_timeout_s=10))
        backend = ScriptedBackend(replies, **kwargs.pop("backend_kwargs", {}))
        agent = CodeActAgent(backend, kernel, conversation, settings, on_event=events.append, **kwargs)
        return agent, backend, events
    return make
