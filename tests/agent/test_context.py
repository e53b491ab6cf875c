import pytest

from codeact_desktop.agent.context import ContextOverflow, fit_to_context


def count(messages):
    return sum(len(m["content"]) for m in messages) // 4


def conversation(n_turns, obs_len):
    msgs = [{"role": "system", "content": "S" * 400}]
    kinds = ["system"]
    for i in range(n_turns):
        msgs += [{"role": "user", "content": f"question {i}"},
                 {"role": "assistant", "content": "<execute>x</execute>"},
                 {"role": "user", "content": "Execution Output:\n" + "o" * obs_len}]
        kinds += ["user", "assistant", "observation"]
    return msgs, kinds


def test_fits_untouched():
    msgs, kinds = conversation(2, 100)
    fitted = fit_to_context(msgs, kinds, count, 4096, 512)
    assert fitted.messages == msgs and not fitted.summary()


def test_oldest_observations_are_shortened_first_and_system_and_last_kept():
    msgs, kinds = conversation(6, 4000)
    fitted = fit_to_context(msgs, kinds, count, 4096, 512)
    assert fitted.tokens <= 4096 - 512
    assert fitted.messages[0] == msgs[0] and fitted.messages[-1] == msgs[-1]
    assert fitted.shortened >= 1 and fitted.dropped == 0
    assert "shortened to fit" in fitted.messages[3]["content"]
    assert "shortened" in fitted.summary()


def test_drops_oldest_messages_when_shortening_is_not_enough():
    msgs, kinds = conversation(40, 50)
    msgs[-1]["content"] = "Execution Output:\n" + "o" * 4000
    fitted = fit_to_context(msgs, kinds, count, 2048, 512)
    assert fitted.dropped > 0 and fitted.messages[0] == msgs[0] and fitted.messages[-1] == msgs[-1]


def test_a_latest_message_longer_than_the_context_is_a_clear_error():
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "x" * 40_000}]
    with pytest.raises(ContextOverflow, match="context holds 2048"):
        fit_to_context(msgs, ["system", "user"], count, 2048, 512)
