"""The security suite's fixture: conversations as the app makes them, each with a real
restricted kernel (bubblewrap's namespaces and Landlock) and the real agent, driven by a
scripted model whose actions are the attacks."""

from __future__ import annotations

import pytest

from codeact_desktop.agent.loop import AgentSettings, CodeActAgent
from codeact_desktop.engine import kernel_env
from codeact_desktop.kernel.sandbox import GB, KernelLimits
from codeact_desktop.kernel.conversation_kernel import ConversationKernel
from codeact_desktop.llm.scripted import ScriptedBackend
from codeact_desktop.store.history import HistoryStore

LIMITS = KernelLimits(address_space=4 * GB, memory=1536 << 20)


@pytest.fixture
def conversations(tmp_path, kernel_venv, app_paths):
    """Makes conversations with a real restricted kernel each; ``act(code)`` runs code as
    the model's action and returns the observation the model reads."""
    store = HistoryStore(tmp_path / "history.sqlite3")
    made = []

    class Conversation:
        def __init__(self, network=False, limits=LIMITS, approve=None, start=True, workspace=None):
            # workspace: another conversation's, as when the app starts again on it
            self.conversation = store.create_conversation(tmp_path / "workspaces", workspace=workspace)
            self.workspace = self.conversation.workspace
            env = kernel_env(app_paths, kernel_venv, self.workspace)
            self.kernel = ConversationKernel(kernel_venv, self.workspace, env, network=network, limits=limits)
            self.backend = ScriptedBackend([])
            self.agent = CodeActAgent(self.backend, self.kernel, self.conversation,
                                      AgentSettings(action_timeout_s=30), approve=approve)
            made.append(self)
            if start:
                self.kernel.start()

        def act(self, code: str, files=(), then: str = "done") -> str:
            """Runs ``code`` as the model's one action (the user's message carries ``files``),
            the model then answering ``then``; returns the observation."""
            self.backend.replies += [f"<execute>\n{code}\n</execute>", then]
            record = self.agent.send("go", files=list(files))
            self.last = record.actions[0]
            return self.last["observation"]

    yield Conversation
    for made_one in made:
        made_one.kernel.shutdown()
    store.close()
