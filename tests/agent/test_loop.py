"""The CodeAct loop with a scripted model and the real kernel (fixtures: conftest.py)."""

import threading
import time

from codeact_desktop.agent import events as ev
from codeact_desktop.agent.loop import AgentSettings, Approval
from codeact_desktop.kernel.state import KernelState, KernelStatus
from codeact_desktop.llm.scripted import ScriptedBackend
from codeact_desktop.resources import prompt_text


def test_one_action_then_an_answer(agent_for):
    agent, backend, events = agent_for([
        "I'll compute it.\n<execute>\nprint(2**100)\n</execute>",
        "2**100 is 1267650600228229401496703205376.",
    ])
    record = agent.send("What is 2**100?")
    assert record.reason == "answered"
    # exactly what the second call sent: system, user, assistant (tag closed), observation
    second = backend.calls[1]
    assert second[0] == {"role": "system", "content": prompt_text("system.txt")}
    assert second[1] == {"role": "user", "content": "What is 2**100?"}
    assert second[2] == {"role": "assistant", "content": "I'll compute it.\n<execute>\nprint(2**100)\n</execute>"}
    assert second[3] == {"role": "user", "content": "Execution Output:\n1267650600228229401496703205376\n"}
    kinds = [type(e).__name__ for e in events if not isinstance(e, (ev.TextPiece, ev.OutputStream, KernelState))]
    assert kinds == ["ModelWorking", "ReplyDone", "ActionProposed", "ActionStarted", "OutputAdded",
                     "ActionFinished", "ModelWorking", "ReplyDone", "TurnDone"]
    assert "".join(e.text for e in events if isinstance(e, ev.TextPiece)).startswith("I'll compute it.")
    # the kernel's lifecycle arrives on the same stream: busy while the code ran, ready after
    around = events[next(i for i, e in enumerate(events) if isinstance(e, ev.ActionStarted)):]
    states = [e.status for e in around if isinstance(e, KernelState)]
    assert states[:2] == [KernelStatus.BUSY, KernelStatus.READY]


def test_close_stops_the_kernel_events(agent_for):
    agent, _, events = agent_for(["<execute>\nprint(1)\n</execute>", "done", "<execute>\nprint(2)\n</execute>", "ok"])
    agent.send("one")
    assert any(isinstance(e, KernelState) for e in events)
    agent.close()
    events.clear()
    agent.send("two")  # the agent still works; the window that closed it just hears nothing of the kernel
    assert events[-1] == ev.TurnDone("answered", 1)
    assert not any(isinstance(e, KernelState) for e in events)


def test_set_backend_answers_with_the_new_model(agent_for):
    agent, first, _ = agent_for(["from the first"])
    agent.send("hi")
    second = ScriptedBackend(["from the second"])
    agent.set_backend(second)
    agent.send("again")
    assert len(first.calls) == 1 and len(second.calls) == 1
    assert agent.conversation.messages()[-1]["content"] == "from the second"


def test_no_output_and_error_observations_self_debug(agent_for):
    agent, backend, _ = agent_for([
        "<execute>x = 5</execute>",
        "<execute>print(y)</execute>",
        "<execute>print(x * 2)</execute>",
        "It is 10.",
    ])
    agent.send("double five")
    assert backend.calls[1][-1]["content"] == "Execution Output:\n[Code executed successfully with no output]"
    error_obs = backend.calls[2][-1]["content"]
    assert "NameError" in error_obs and "\x1b[" not in error_obs
    assert backend.calls[3][-1]["content"] == "Execution Output:\n10\n"


def test_action_cap_tells_the_model_and_stops(agent_for):
    settings = AgentSettings(max_actions=2, action_timeout_s=10)
    agent, backend, events = agent_for(["<execute>print(1)</execute>"] * 3, settings=settings)
    record = agent.send("loop forever")
    assert record.reason == "action_limit"
    assert "used all 2 code executions" in backend.calls[2][-1]["content"]
    assert [a["status"] for a in record.actions] == ["ok", "ok", "over_limit"]
    assert any(isinstance(e, ev.Notice) and "limit of 2" in e.text for e in events)


def test_the_same_failing_code_again_is_not_run_and_the_turn_stops(agent_for):
    """A weak model re-sent the code that had just failed six times a message (15 to 47 s
    each, a new user's review). The same code after a failure is not run again; the same
    code after a success, or changed code after a failure, is."""
    agent, backend, events = agent_for([
        "<execute>print(1)</execute>", "<execute>print(1)</execute>",  # ran fine twice: fine
        "<execute>print(y)</execute>", "<execute>\nprint(y)\n</execute>", "never asked"])
    record = agent.send("go")
    assert [a["status"] for a in record.actions] == ["ok", "ok", "error", "repeated"]
    assert record.reason == "repeated" and len(backend.calls) == 4
    assert any(isinstance(e, ev.Notice) and "the code that had just failed" in e.text for e in events)

    agent, backend, _ = agent_for(["<execute>print(z)</execute>", "<execute>z = 2\nprint(z)</execute>", "2."])
    assert [a["status"] for a in agent.send("go").actions] == ["error", "ok"]


def test_timeout_is_reported_to_the_model(agent_for):
    settings = AgentSettings(action_timeout_s=1)
    agent, backend, _ = agent_for(["<execute>while True: pass</execute>", "Too slow."], settings=settings)
    record = agent.send("spin")
    assert record.actions[0]["status"] == "timeout"
    assert "timed out after 1 seconds" in backend.calls[1][-1]["content"]


def test_kernel_death_mid_action_is_recovered(agent_for):
    agent, backend, _ = agent_for([
        "<execute>import os; os._exit(1)</execute>", "<execute>print('alive')</execute>", "ok"])
    record = agent.send("crash")
    assert [a["status"] for a in record.actions] == ["died", "ok"]
    assert "kernel died" in backend.calls[1][-1]["content"]
    assert backend.calls[2][-1]["content"] == "Execution Output:\nalive\n"


def test_approval_run_edit_skip(agent_for):
    decisions = iter([Approval(run=True), Approval(run=True, code="print('edited')"), Approval(run=False)])
    seen = []

    def approve(action_id, code, required):
        seen.append(code)
        return next(decisions)

    agent, backend, _ = agent_for(
        ["<execute>print('a')</execute>", "<execute>print('b')</execute>", "<execute>print('c')</execute>", "done"],
        approve=approve)
    record = agent.send("three things")
    assert seen == ["print('a')", "print('b')", "print('c')"]
    assert [(a["status"], a["code"]) for a in record.actions] == [
        ("ok", "print('a')"), ("ok", "print('edited')"), ("skipped", "print('c')")]
    assert backend.calls[2][-1]["content"] == (
        "Execution Output:\n[The user edited your code before running it. This is the code that ran:]\n"
        "```python\nprint('edited')\n```\n[Its output:]\nedited\n")
    assert "chose not to run" in backend.calls[3][-1]["content"]


def test_files_are_copied_and_named_and_products_recorded(agent_for, tmp_path):
    source = tmp_path / "my data é.csv"
    source.write_text("a,b\n1,2\n3,4\n")
    agent, backend, _ = agent_for([
        "<execute>import pandas as pd\ndf = pd.read_csv('my data é.csv')\ndf.to_csv('out.csv')\n"
        "print(df.b.sum())</execute>",
        "The sum is 6."])
    record = agent.send("sum column b", files=[source])
    user_turn = backend.calls[0][1]["content"]
    assert user_turn.startswith("sum column b\n\nFiles uploaded to the working directory:\n")
    assert "- ./my data é.csv (12 bytes, text/csv)" in user_turn
    assert backend.calls[1][-1]["content"] == "Execution Output:\n6\n"
    assert record.files == ["out.csv"]
    files = agent.conversation.files()
    assert [(f["origin"], f["path"]) for f in files] == [("uploaded", "my data é.csv"), ("produced", "out.csv")]


def test_files_past_the_listed_depth_are_not_recorded(agent_for):
    # The Files panel checks each row folder by folder: 500 files 1,900 folders down made
    # one refresh take 7 s on the UI thread.
    from codeact_desktop.agent.workspace import MAX_LISTED_DEPTH

    agent, _, _ = agent_for([
        "<execute>\nimport os\nfor depth in (MAX - 1, MAX):\n    path = '/'.join(['d'] * depth)\n"
        "    os.makedirs(path, exist_ok=True)\n    open(path + f'/f{depth}.txt', 'w').write('x')\n</execute>"
        .replace("MAX", str(MAX_LISTED_DEPTH)), "done"])
    record = agent.send("write deep")
    assert [path.count("/") for path in record.files] == [MAX_LISTED_DEPTH - 1]
    assert [f["path"] for f in agent.conversation.files()] == record.files


def test_plot_is_stored_in_the_history_and_a_placeholder_for_the_model(agent_for):
    agent, backend, _ = agent_for([
        "<execute>import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()</execute>", "Plotted."])
    record = agent.send("plot")
    observation = backend.calls[1][-1]["content"]
    assert "<image: " in observation and "PNG, shown to the user>" in observation
    outputs = agent.conversation.outputs(record.actions[0]["id"])
    assert outputs[0]["kind"] == "image"
    assert agent.conversation.output_image(outputs[0]).startswith(b"\x89PNG") and outputs[0]["path"] is None
    assert record.files == [] and list(agent.conversation.workspace.iterdir()) == []  # nothing in the workspace


def test_cancel_during_generation_stops_within_a_piece(agent_for):
    long_reply = "word " * 2000
    agent, backend, events = agent_for([long_reply], backend_kwargs={"piece_delay": 0.002})
    timer = threading.Timer(0.2, agent.cancel)
    timer.start()
    t0 = time.monotonic()
    record = agent.send("talk")
    assert record.reason == "cancelled" and time.monotonic() - t0 < 2
    received = "".join(e.text for e in events if isinstance(e, ev.TextPiece))
    assert 0 < len(received) < len(long_reply)


def test_cancel_during_code_interrupts_it(agent_for):
    agent, _, _ = agent_for(["<execute>import time\nwhile True: time.sleep(0.05)</execute>", "never"],
                            settings=AgentSettings(action_timeout_s=60))
    threading.Timer(1.0, agent.cancel).start()
    t0 = time.monotonic()
    record = agent.send("wait")
    assert record.reason == "cancelled" and record.actions[0]["status"] == "cancelled"
    assert time.monotonic() - t0 < 10


def test_history_survives_and_model_messages_match(agent_for, store):
    agent, backend, _ = agent_for(["<execute>print(7)</execute>", "Seven."])
    agent.send("seven")
    reopened = store.open_conversation(agent.conversation.id)
    msgs, kinds = reopened.model_messages()
    assert kinds == ["system", "user", "assistant", "observation", "assistant"]
    assert msgs[:4] == backend.calls[1]
    assert reopened.actions()[0]["status"] == "ok"
    assert store.integrity_ok()


def test_prompt_too_long_for_the_context_is_a_clear_message(agent_for):
    agent, backend, events = agent_for(["never"], backend_kwargs={"n_ctx": 2048})
    record = agent.send("x" * 40_000)
    assert record.reason == "error" and backend.calls == []
    assert any(isinstance(e, ev.ErrorEvent) and "context holds 2048" in e.text for e in events)
    # the conversation is intact and can go on
    assert agent.conversation.model_messages()[1][-1] == "user"


def test_missing_attachment_is_a_clear_message_and_records_nothing(agent_for, tmp_path):
    agent, backend, events = agent_for(["never"])
    record = agent.send("read it", files=[tmp_path / "nope.csv"])
    assert record.reason == "error" and backend.calls == []
    assert any(isinstance(e, ev.ErrorEvent) and "nope.csv" in e.text for e in events)
    assert [m["kind"] for m in agent.conversation.messages()] == ["system"]


def test_long_observations_are_shortened_to_fit_and_the_user_is_told(agent_for):
    flood = "<execute>print('x' * 3000)</execute>"
    agent, backend, events = agent_for([flood, flood, flood, "done"], backend_kwargs={"n_ctx": 2600},
                                       settings=AgentSettings(action_timeout_s=10, max_new_tokens=256))
    record = agent.send("flood")
    assert record.reason == "answered"
    last_call = backend.calls[-1]
    assert "shortened to fit the context" in last_call[3]["content"]
    assert last_call[0]["content"] == prompt_text("system.txt")  # never touched
    assert any(isinstance(e, ev.Notice) and "shortened" in e.text for e in events)
    # the full observation is still in the history
    assert all("shortened" not in a["observation"] for a in agent.conversation.actions())


def test_regenerate_answers_the_last_message_again(agent_for):
    agent, backend, _ = agent_for(["<execute>print(6*7)</execute>", "It is 42.", "Forty-two."])
    agent.send("6 times 7?")
    assert len(agent.conversation.actions()) == 1
    record = agent.regenerate()
    assert record.reason == "answered"
    # the model saw the question again, without the first answer or its action
    assert [m["content"] for m in backend.calls[2]][1:] == ["6 times 7?"]
    kinds = [m["kind"] for m in agent.conversation.messages()]
    assert kinds == ["system", "user", "assistant"] and agent.conversation.actions() == []
    assert agent.conversation.messages()[-1]["content"] == "Forty-two."


def test_edit_last_replaces_the_message_and_keeps_earlier_turns(agent_for):
    agent, backend, _ = agent_for(["One.", "Two.", "Three, edited."])
    agent.send("first")
    agent.send("second")
    agent.edit_last("second, edited")
    users = [m["content"] for m in agent.conversation.messages() if m["kind"] == "user"]
    assert users == ["first", "second, edited"]
    assert [m["content"] for m in backend.calls[2]][1:] == ["first", "One.", "second, edited"]


def test_attachment_meta_lists_the_files(agent_for, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    agent, backend, _ = agent_for(["ok"])
    agent.send("look", [data])
    user = [m for m in agent.conversation.messages() if m["kind"] == "user"][0]
    assert '"name": "data.csv"' in user["meta"]
    from codeact_desktop.agent.timeline import timeline

    entry = [e for e in timeline(agent.conversation) if e.type == "user"][0]
    assert entry.text == "look" and entry.files[0]["name"] == "data.csv"
