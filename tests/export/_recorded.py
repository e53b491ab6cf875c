"""A conversation recorded once per test module: a real kernel runs what a scripted model
writes, and the history keeps it, as the app would have."""

from codeact_desktop.agent.loop import AgentSettings, CodeActAgent
from codeact_desktop.llm.scripted import ScriptedBackend
from codeact_desktop.store.history import HistoryStore


def recorded_conversation(root, app_paths, replies, title, message, files=(), timeout_s=20):
    """Yields the conversation (a generator, for a fixture); closes its store afterwards."""
    from codeact_desktop.engine import start_kernel

    store = HistoryStore(root / "h.sqlite3")
    conv = store.create_conversation(root / "ws", title=title)
    kernel = start_kernel(app_paths, conv.workspace, background=False)
    try:
        CodeActAgent(ScriptedBackend(replies), kernel, conv, AgentSettings(action_timeout_s=timeout_s)).send(
            message, list(files))
    finally:
        kernel.shutdown()
    yield conv
    store.close()
