"""Names that pass for others, found as the kernel reads the code (IPython's transform,
then Python's parser), and only names: text in strings and comments is left alone."""

import pytest

from codeact_desktop.code_warnings import code_warnings, lookalike_names

HIDDEN = {
    "plain": 'раth = os.path.expanduser("~")\npath = "./build"\nshutil.rmtree(раth)',
    # On Python 3.11 an f-string is one STRING token: the tokenizer never saw the name in it.
    "f-string": 'globals()["раth"] = os.path.expanduser("~")\npath = "./build"\nshutil.rmtree(f"{раth}")',
    # A magic line with ''' made the tokenizer read every later line as one string; IPython
    # runs it as run_line_magic(...) and the rest as Python.
    "magic": "%env MODE='''\nimport os, shutil\nраth = os.path.expanduser('~')\nshutil.rmtree(раth)",
    "shell": "!echo '''\nраth = os.path.expanduser('~')\nshutil.rmtree(раth)",
    "getattr": 'setattr(builtins, "раth", os.path.expanduser("~"))\nshutil.rmtree(раth)',
}


@pytest.mark.parametrize("name", HIDDEN)
def test_a_lookalike_name_is_found_wherever_the_code_hides_it(name):
    assert lookalike_names(HIDDEN[name]) == ["\u0440\u0430th"]
    assert "U+0440 CYRILLIC SMALL LETTER ER" in " ".join(code_warnings(HIDDEN[name]))


def test_text_in_strings_comments_and_table_columns_is_not_a_name():
    code = 'df["Größe"] = 1\nprint("привет", f"{len(df)} строк")  # комментарий\n'
    assert lookalike_names(code) == [] and code_warnings(code) == []
