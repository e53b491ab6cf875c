"""Run by test_history_survives_kill: one turn with a scripted model and a real kernel,
the second action sleeping until the test kills this process."""

import sys
from pathlib import Path

from codeact_desktop.agent.loop import AgentSettings, CodeActAgent
from codeact_desktop.engine import start_kernel
from codeact_desktop.llm.scripted import ScriptedBackend
from codeact_desktop.paths import AppPaths
from codeact_desktop.store.history import HistoryStore

store = HistoryStore(Path(sys.argv[1]))
conversation = store.create_conversation(Path(sys.argv[2]))
kernel = start_kernel(AppPaths.default(), conversation.workspace)
backend = ScriptedBackend([
    "First, a greeting.\n<execute>print('first')</execute>",
    "<execute>import time\nprint('second started', flush=True)\ntime.sleep(120)</execute>",
    "never reached",
])
CodeActAgent(backend, kernel, conversation, AgentSettings(action_timeout_s=300)).send("two steps")
