"""Telling a model that cannot act on requests from one that answers in words."""

import pytest

from codeact_desktop.agent.model_fitness import looks_like_task, repeats_itself, unfit_sign
from codeact_desktop.resources import messages


def conversation(*turns):
    """(kind, content) pairs after the system prompt; the last is the reply just made."""
    return [{"kind": "system", "content": "system prompt"}] + [{"kind": k, "content": c} for k, c in turns]


@pytest.mark.parametrize("text", [
    "What is 12 times 11?", "what's 144/12", "Plot a sine wave", "calculate my taxes",
    "Analyse the sales in this spreadsheet", "solve x^2 = 4",
    f"here\n\n{messages()['files_header']}\n- ./a.txt (3 bytes, text/plain)",
])
def test_tasks(text):
    assert looks_like_task(text)


@pytest.mark.parametrize("text", [
    "hello", "how are you?", "tell me a joke", "write a poem about the sea", "thanks!",
    "write 3-4 sentences about cats", "what is the capital of France?",
])
def test_not_tasks(text):
    assert not looks_like_task(text)


def test_repeating_lines_and_sentences():
    assert repeats_itself("The chatbot should be able to answer questions.\n" * 4)
    assert repeats_itself("Let me help you with that. " * 4 + "Sure.")
    assert not repeats_itself("The chatbot should be able to answer questions.\n" * 3)
    # short lines repeat in good replies: list markers, separators, "Yes."
    assert not repeats_itself("Yes.\n---\n" * 6)
    # so does code
    assert not repeats_itself("Printing a table.\n<execute>\n" + "print('-' * 40)\n" * 6 + "</execute>")


def test_a_reply_cut_at_the_token_limit_without_an_action():
    chat = conversation(("user", "hello"), ("assistant", "Hello! I am a chatbot that can"))
    assert unfit_sign(chat, "length") == "length"
    assert unfit_sign(chat, "stop") is None
    # code cut off at the limit is an attempt to act, not a failure to
    assert unfit_sign(conversation(("user", "plot"), ("assistant", "<execute>\nimport matplotlib")), "length") is None


def test_a_long_reply_from_a_model_that_has_acted_is_fine():
    chat = conversation(("user", "compute 2+2"), ("assistant", "<execute>print(2+2)</execute>"),
                        ("observation", "Execution Output:\n4\n"), ("assistant", "It is 4."),
                        ("user", "now write an essay"), ("assistant", "An essay about " + "things " * 300))
    assert unfit_sign(chat, "length") is None


def test_the_same_reply_again_to_something_else():
    code = "<execute>print(sum(range(10)))</execute>"
    chat = conversation(("user", "sum 0..9"), ("assistant", code), ("observation", "Execution Output:\n45\n"),
                        ("assistant", code))
    assert unfit_sign(chat, "stop") == "repeats"
    # the same question twice may get the same answer
    same = conversation(("user", "What is 2+2?"), ("assistant", "2 + 2 is 4, of course."),
                        ("user", "What is 2+2?"), ("assistant", "2 + 2 is 4, of course."))
    assert unfit_sign(same, "stop") is None
    # short replies come back often, a paragraph does not
    welcome = "You're welcome! Let me know if you need anything else."
    short = conversation(("user", "thanks"), ("assistant", welcome), ("user", "bye"), ("assistant", welcome))
    assert unfit_sign(short, "stop") is None
    paragraph = "I am a language model and I can answer questions about many topics, such as history."
    long = conversation(("user", "hi"), ("assistant", paragraph), ("user", "ok"), ("assistant", paragraph))
    assert unfit_sign(long, "stop") == "repeats"


def test_three_tasks_answered_in_words_only():
    tasks = [("user", "What is 12 times 11?"), ("assistant", "It is 121."),
             ("user", "Plot a sine wave"), ("assistant", "A sine wave goes up and down."),
             ("user", "Compute the factorial of 20"), ("assistant", "It is a big number.")]
    assert unfit_sign(conversation(*tasks[:4]), "stop") is None  # two are not yet a pattern
    assert unfit_sign(conversation(*tasks), "stop") == "no_action"
    # a conversation that had an action shows the model can act
    acted = [("user", "sum 1 2"), ("assistant", "<execute>print(1+2)</execute>"),
             ("observation", "Execution Output:\n3\n"), ("assistant", "3."), *tasks]
    assert unfit_sign(conversation(*acted), "stop") is None
    # and so does a reply that acts now
    now = [*tasks[:5], ("assistant", "<execute>import math; print(math.factorial(20))</execute>")]
    assert unfit_sign(conversation(*now), "stop") is None


def test_a_chat_that_asks_for_no_code_is_not_flagged():
    chat = conversation(("user", "hello"), ("assistant", "Hello! How can I help?"),
                        ("user", "how are you?"), ("assistant", "I'm fine, thank you."),
                        ("user", "tell me a joke"), ("assistant", "Why did the chicken cross the road?"),
                        ("user", "What is 12 times 11?"), ("assistant", "132."))
    assert unfit_sign(chat, "stop") is None  # one task among chat is no pattern
