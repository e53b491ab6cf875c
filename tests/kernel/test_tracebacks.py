"""The exception and the user's failing line, picked out of real IPython tracebacks."""

import threading

import pytest

from codeact_desktop.kernel.tracebacks import ErrorSummary, summarize_error


def error_of(kernel, code):
    result = kernel.execute(code, timeout=30)
    (item,) = [i for i in result.items if i.kind == "error"]
    return item


def summary_of(kernel, code) -> ErrorSummary:
    item = error_of(kernel, code)
    summary = summarize_error(item.text)  # the coloured text the card and the history keep
    assert summarize_error(item.traceback) == summary  # the kernel's list reads the same
    return summary


@pytest.mark.parametrize("code, exception, number, line", [
    ("import pandas as pd\ndf = pd.DataFrame({'sales': [1, 2]})\ndf['month'].sum()",
     "KeyError: 'month'", 3, "df['month'].sum()"),
    ("total = 1\nprint(totl)", "NameError: name 'totl' is not defined", 2, "print(totl)"),
    # deep inside numpy: the cell's line that called into it
    ("import numpy as np\n\nnp.arange(5).reshape(2, 3)",
     "ValueError: cannot reshape array of size 5 into shape (2,3)", 3, "np.arange(5).reshape(2, 3)"),
    # past line 9 the arrow is shorter ("---> 12")
    ("x = 0\n" * 11 + "1 / x", "ZeroDivisionError: division by zero", 12, "1 / x"),
])
def test_exception_and_the_cells_line(module_kernel, code, exception, number, line):
    assert summary_of(module_kernel, code) == ErrorSummary(exception, number, line)


def test_error_in_a_function_of_the_cell_points_inside_it(module_kernel):
    code = "def monthly(d):\n    return d['month']\n\nmonthly({})"
    # the innermost line of the user's own code, not the call
    assert summary_of(module_kernel, code) == ErrorSummary("KeyError: 'month'", 2, "return d['month']")


def test_library_error_through_a_function_of_the_cell(module_kernel):
    code = "import pandas as pd\ndef total(df):\n    return df['month'].sum()\n\ntotal(pd.DataFrame({'a': [1]}))"
    assert summary_of(module_kernel, code) == ErrorSummary("KeyError: 'month'", 3, "return df['month'].sum()")


def test_a_chain_names_the_last_exception_and_its_line(module_kernel):
    code = "d = {}\ntry:\n    d['k']\nexcept KeyError:\n    raise ValueError('no k')"
    assert summary_of(module_kernel, code) == ErrorSummary("ValueError: no k", 5, "raise ValueError('no k')")


@pytest.mark.parametrize("code, exception, number, line", [
    ("x = 1\ndef f(:\n    pass", "SyntaxError: invalid syntax", 2, "def f(:"),
    ("if True:\nprint(1)", "IndentationError: expected an indented block after 'if' statement on line 1",
     2, "print(1)"),
    ("x = 1\nprint 'hi'",
     "SyntaxError: Missing parentheses in call to 'print'. Did you mean print(...)?", 2, "print 'hi'"),
])
def test_syntax_errors(module_kernel, code, exception, number, line):
    assert summary_of(module_kernel, code) == ErrorSummary(exception, number, line)


def test_multi_line_message_is_kept_whole(module_kernel):
    summary = summary_of(module_kernel, "raise ValueError('bad row\\n  3 cells\\nexpected 4')")
    assert summary == ErrorSummary("ValueError: bad row\n  3 cells\nexpected 4", 1,
                                   "raise ValueError('bad row\\n  3 cells\\nexpected 4')")


def test_a_note_that_looks_like_a_frame_stays_in_the_message(module_kernel):
    code = "e = ValueError('bad file')\ne.add_note('File data.csv:3, in the header')\nraise e"
    assert summary_of(module_kernel, code) == ErrorSummary(
        "ValueError: bad file\nFile data.csv:3, in the header", 3, "raise e")


def test_syntax_error_in_code_the_cell_compiles(module_kernel):
    # IPython prints this one in another layout: indented frames, no numbered lines
    assert summary_of(module_kernel, "exec('1 +')") == ErrorSummary("SyntaxError: invalid syntax", 1, "exec('1 +')")


def test_keyboard_interrupt(module_kernel):
    # A real SIGINT once the cell is in its loop (not the app's cancel, which drops this
    # traceback); a moment after the print, so it cannot land in the print's own flush.
    code = "import time\nprint('looping', flush=True)\nwhile True: time.sleep(0.05)"

    timer = threading.Timer(0.3, module_kernel.interrupt)  # once: a second one would hit the next test's cell

    def interrupt_soon(name, text):
        if not timer.is_alive() and not timer.finished.is_set():
            timer.start()

    result = module_kernel.execute(code, timeout=30, on_stream=interrupt_soon)
    (item,) = [i for i in result.items if i.kind == "error"]
    assert item.ename == "KeyboardInterrupt"
    assert summarize_error(item.text) == ErrorSummary("KeyboardInterrupt", 3, "while True: time.sleep(0.05)")


# IPython 8.0-8.2 named the cell "Input In [N]"; as those versions print it:
OLD_IPYTHON = """\
---------------------------------------------------------------------------
KeyError                                  Traceback (most recent call last)
Input In [4], in <cell line: 3>()
      1 import pandas as pd
      2 df = pd.DataFrame({'a': [1]})
----> 3 df['month']

File ~/lib/python3.10/site-packages/pandas/core/frame.py:3505, in DataFrame.__getitem__(self, key)
-> 3505 indexer = self.columns.get_loc(key)

KeyError: 'month'"""

OLD_IPYTHON_SYNTAX = """\
  Input In [5]
    def f(:
          ^
SyntaxError: invalid syntax
"""


def test_older_ipython_format():
    assert summarize_error(OLD_IPYTHON) == ErrorSummary("KeyError: 'month'", 3, "df['month']")
    assert summarize_error(OLD_IPYTHON_SYNTAX) == ErrorSummary("SyntaxError: invalid syntax", None, "def f(:")


def test_only_an_empty_message_loses_its_colon():
    assert summarize_error("ValueError: expected one of:").exception == "ValueError: expected one of:"
    assert summarize_error("KeyboardInterrupt: ").exception == "KeyboardInterrupt"


def test_text_without_frames():
    assert summarize_error("UsageError: Line magic function `%foo` not found.") == ErrorSummary(
        "UsageError: Line magic function `%foo` not found.", None, "")
    assert summarize_error("") == ErrorSummary("", None, "")
