from codeact_desktop.agent.actions import parse_reply


def test_no_action():
    parsed = parse_reply("The answer is 4.")
    assert parsed.code is None and parsed.thought == "The answer is 4."


def test_closed_action_with_thought():
    parsed = parse_reply("Let me compute.\n<execute>\nprint(2+2)\n</execute>")
    assert parsed.thought == "Let me compute." and parsed.code == "print(2+2)" and parsed.runnable


def test_unclosed_at_stop_is_complete_and_history_closes_it():
    # servers strip the </execute> stop string
    parsed = parse_reply("I'll run it. <execute> print('hi') ", "stop")
    assert parsed.code == "print('hi')" and parsed.runnable
    assert parsed.history_text == "I'll run it. <execute> print('hi') </execute>"


def test_unclosed_at_length_limit_is_cut_off():
    parsed = parse_reply("<execute>\nfor i in range(", "length")
    assert parsed.code == "for i in range(" and not parsed.runnable


def test_code_fences_inside_tags_are_removed():
    parsed = parse_reply("<execute>\n```python\nx = 1\nprint(x)\n```\n</execute>")
    assert parsed.code == "x = 1\nprint(x)"


def test_indented_code_is_dedented_and_inner_indentation_kept():
    parsed = parse_reply("<execute>\n    for i in range(2):\n        print(i)\n</execute>")
    assert parsed.code == "for i in range(2):\n    print(i)"


def test_several_blocks_run_first_and_drop_the_rest():
    text = "a <execute>x = 1</execute> then <execute>print(x)</execute> done"
    parsed = parse_reply(text)
    assert parsed.code == "x = 1" and parsed.ignored_blocks == 1
    assert parsed.history_text == "a <execute>x = 1</execute>"


def test_empty_action_is_not_runnable():
    assert not parse_reply("<execute>  </execute>").runnable
