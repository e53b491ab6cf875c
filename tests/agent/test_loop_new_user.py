"""What a new user trips over (issue 16), with a scripted model and the real kernel:
a model busy before its first word, code the user edited, a model that cannot act."""

import json
import threading

from codeact_desktop.agent import events as ev
from codeact_desktop.agent.loop import AgentSettings, Approval, CodeActAgent
from codeact_desktop.agent.timeline import timeline
from codeact_desktop.llm.scripted import ScriptedBackend
from codeact_desktop.resources import messages


def test_model_working_comes_before_the_first_words(agent_for):
    agent, _, events = agent_for(["<execute>print(1)</execute>", "It printed 1."],
                                 backend_kwargs={"progress_steps": 3})
    agent.send("print one")
    kinds = [type(e).__name__ for e in events if isinstance(e, (ev.ModelWorking, ev.TextPiece, ev.ActionFinished))]
    # each model call: "reading" first, then its progress, then the words
    first_call = kinds[:kinds.index("ActionFinished")]
    assert first_call[:4] == ["ModelWorking"] * 4 and set(first_call[4:]) == {"TextPiece"}
    working = [e for e in events if isinstance(e, ev.ModelWorking)]
    assert working[0] == ev.ModelWorking("reading") and {e.stage for e in working} == {"reading"}
    progress = [(e.done, e.total) for e in working[1:4]]
    total = progress[0][1]
    assert total > 0 and progress == sorted(progress) and progress[-1] == (total, total)
    assert kinds.count("ModelWorking") == 8  # the second call, after the result, too


def test_stop_while_the_model_reads_ends_the_turn_with_nothing_recorded(agent_for):
    agent, _, events = agent_for(["never said"], backend_kwargs={"progress_steps": 200, "piece_delay": 0.01})
    threading.Timer(0.2, agent.cancel).start()
    record = agent.send("a long message")
    assert record.reason == "cancelled"
    working = [e for e in events if isinstance(e, ev.ModelWorking)]
    assert len(working) > 1 and working[-1].done < working[-1].total
    assert not any(isinstance(e, ev.TextPiece) for e in events)
    assert [m["kind"] for m in agent.conversation.messages()] == ["system", "user"]


def test_the_model_is_told_what_code_ran_after_the_user_edited_it(agent_for, store):
    decisions = iter([Approval(run=True, code="print('edited')"), Approval(run=True)])
    agent, backend, _ = agent_for(
        ["<execute>print('original')</execute>", "<execute>print('as written')</execute>", "Done."],
        approve=lambda action_id, code, required: next(decisions))
    agent.send("print something")

    after_edit = backend.calls[1]
    # the history keeps the model's words; the observation says what ran instead
    assert after_edit[-2]["content"] == "<execute>print('original')</execute>"
    observation = after_edit[-1]["content"]
    assert observation.startswith("Execution Output:\n" + messages()["edited_by_user"].split("{code}")[0])
    assert "print('edited')" in observation and observation.endswith("\nedited\n")
    # the unedited run reads as always
    assert backend.calls[2][-1]["content"] == "Execution Output:\nas written\n"

    # a reopened conversation marks the edited card, and only that one
    reopened = store.open_conversation(agent.conversation.id)
    actions = [e for e in timeline(reopened) if e.type == "action"]
    assert [(e.text, e.edited) for e in actions] == [("print('edited')", True), ("print('as written')", False)]


def test_an_editor_adding_a_final_newline_is_not_an_edit(agent_for):
    agent, backend, _ = agent_for(["<execute>print(2)</execute>", "Two."],
                                  approve=lambda action_id, code, required: Approval(run=True, code=code + "\n"))
    agent.send("print two")
    assert backend.calls[1][-1]["content"] == "Execution Output:\n2\n"
    assert not [e for e in timeline(agent.conversation) if e.type == "action"][0].edited


def hints(agent):
    return [m for m in agent.conversation.messages()
            if m["kind"] == "notice" and json.loads(m["meta"]).get("model_unfit")]


def test_a_model_that_never_acts_on_tasks_gets_one_hint(agent_for, store):
    agent, _, events = agent_for(["It is 132.", "A sine wave goes up and down.", "It is a big number.",
                                  "Still no code.", "Nor now."])
    agent.send("What is 12 times 11?")
    agent.send("Plot a sine wave from 0 to 2 pi.")
    assert not hints(agent)
    agent.send("Compute the factorial of 20.")
    text = messages()["model_cannot_act"]
    assert [e.text for e in events if isinstance(e, ev.Notice)] == [text]
    assert "CodeActAgent-Mistral-7b-v0.1" in text and "File → Models…" in text and "<execute>" in text
    [hint] = hints(agent)
    assert json.loads(hint["meta"])["model_unfit"] == "no_action"
    # the window shows it where it came, and the model never reads it
    assert [e.type for e in timeline(agent.conversation)][-2:] == ["assistant", "notice"]
    assert text not in json.dumps(agent.conversation.model_messages())

    agent.send("Sum the numbers from 1 to 100.")
    # a reopened conversation does not say it again either
    reopened = store.open_conversation(agent.conversation.id)
    again_events = []
    again = CodeActAgent(agent.backend, agent.kernel, reopened, agent.settings, on_event=again_events.append)
    again.send("Average of 3, 4 and 5?")
    assert len(hints(again)) == 1 and not any(isinstance(e, ev.Notice) for e in again_events)


def test_a_plain_chat_gets_no_hint(agent_for):
    agent, _, events = agent_for(["Hello! How can I help?", "I'm fine, thanks.", "Why did the chicken cross?",
                                  "You're welcome! Let me know if you need anything else.",
                                  "You're welcome! Let me know if you need anything else."])
    for text in ("hello", "how are you?", "tell me a joke", "thanks", "thanks again"):
        agent.send(text)
    assert not hints(agent) and not any(isinstance(e, ev.Notice) for e in events)


def test_a_model_that_acts_gets_no_hint(agent_for):
    agent, _, _ = agent_for(["<execute>print(12*11)</execute>", "It is 132.",
                             "A sine wave goes up and down.", "It is a big number."])
    for text in ("What is 12 times 11?", "Plot a sine wave.", "Compute the factorial of 20."):
        agent.send(text)
    assert not hints(agent)


def test_a_reply_that_repeats_itself_gets_the_hint(agent_for):
    rambling = "I can help with that.\n" + "The plot should be a straight line.\n" * 5
    agent, _, events = agent_for([rambling])
    agent.send("hello")
    assert [e.text for e in events if isinstance(e, ev.Notice)] == [messages()["model_cannot_act"]]
    assert json.loads(hints(agent)[0]["meta"])["model_unfit"] == "repeats"


def test_the_same_action_again_after_its_result_gets_the_hint(agent_for):
    agent, _, events = agent_for(["<execute>print(6*7)</execute>", "<execute>print(6*7)</execute>", "It is 42."])
    record = agent.send("6 times 7?")
    assert record.reason == "answered" and len(record.actions) == 2
    assert json.loads(hints(agent)[0]["meta"])["model_unfit"] == "repeats"
    # said once, after the reply that repeated, before its code ran
    kinds = [type(e).__name__ for e in events if isinstance(e, (ev.Notice, ev.ActionStarted))]
    assert kinds == ["ActionStarted", "Notice", "ActionStarted"]


class LengthLimitedBackend(ScriptedBackend):
    """Stops each reply after ``limit`` pieces, as a server does at max_tokens."""

    def __init__(self, replies, limit):
        super().__init__(replies)
        self.limit = limit

    def generate(self, messages, params, on_piece, cancel=None, **kwargs):
        result = super().generate(messages, params, on_piece, cancel, **kwargs)
        if len(result.text) > self.limit * self.piece_chars:
            result.text = result.text[: self.limit * self.piece_chars]
            result.finish_reason = "length"
        return result


def test_a_reply_cut_off_at_the_token_limit_says_so(store, make_kernel, tmp_path):
    conversation = store.create_conversation(tmp_path / "workspaces")
    events = []
    replies = ["<execute>print(1)</execute>", "It is 1.", "word " * 400, "Short."]
    agent = CodeActAgent(LengthLimitedBackend(replies, limit=50), make_kernel(conversation.workspace),
                         conversation, AgentSettings(action_timeout_s=10), on_event=events.append)
    agent.send("print one")  # a model that acts: no unfit-model hint stands in for the notice
    agent.send("tell me everything")
    notices = [e.text for e in events if isinstance(e, ev.Notice)]
    assert [n for n in notices if "cut off" in n] == [messages()["reply_cut_off"].format(max_tokens=512)]
    events.clear()
    agent.send("and briefly?")  # a reply that ended by itself says nothing of the kind
    assert not any("cut off" in e.text for e in events if isinstance(e, ev.Notice))
