"""The app itself makes no network call except to the server the user configured (the
model download the user asks for is tested in tests/models and tests/ui/test_welcome.py).
The real app runs under an audit hook that records every connect and name lookup its
Python makes (tests/app_driver.py): the first-run welcome screen, a conversation with a
local GGUF, and a conversation with a configured server, in the window and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .scripted_openai import ScriptedOpenAIServer

DRIVER = Path(__file__).with_name("app_driver.py")
REPLIES = ["<execute>print(2 + 2)</execute>", "It is 4."]


def _calls(tmp_path, *args, timeout=300) -> list[dict]:
    out = tmp_path / "calls.json"
    env = dict(os.environ, CODEACT_HOME=str(tmp_path / "home"), QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, str(DRIVER), str(out), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def _network(calls: list[dict]) -> list[dict]:
    """Everything but the Unix sockets of the app's own processes."""
    return [c for c in calls if c.get("family") != "AF_UNIX"]


def test_first_run_touches_no_network(tmp_path):
    assert _network(_calls(tmp_path, "--quit-after", "3", "--")) == []


@pytest.mark.model
def test_a_local_model_conversation_touches_no_network(tmp_path, gguf_path):
    calls = _calls(tmp_path, "--send", "Compute 2+2 with Python.", "--", "--model", str(gguf_path))
    assert _network(calls) == []
    history = (tmp_path / "home" / "data" / "history.sqlite3")
    assert history.exists()  # the conversation really happened


@pytest.mark.parametrize("entry", ["window", "cli"])
def test_only_the_configured_server_is_contacted(tmp_path, entry):
    server = ScriptedOpenAIServer(REPLIES)
    try:
        host_port = ["127.0.0.1", int(server.url.rsplit(":", 1)[1].split("/")[0])]
        if entry == "window":
            calls = _calls(tmp_path, "--send", "What is 2+2?", "--", "--base-url", server.url)
        else:
            calls = _calls(tmp_path, "--", "run", "What is 2+2?", "--yes", "--base-url", server.url)
    finally:
        server.close()
    network = _network(calls)
    connects = [c for c in network if c["event"] == "socket.connect"]
    assert connects, "the audit saw no connection at all"  # the hook works: the server was used
    assert all(c["address"] == host_port for c in connects), network
    assert {c["host"] for c in network if c["event"].startswith("socket.get")} <= {"127.0.0.1"}, network
    assert all(c["event"] in ("socket.connect", "socket.getaddrinfo") for c in network), network
