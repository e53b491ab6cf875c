"""A real error in each export: the HTML page shows the traceback as plain, escaped text
(no highlighter boxing its quotes in red), Markdown keeps it in a plain fence, and the
notebook keeps ename, evalue and traceback as nbformat has them."""

import re

import nbformat
import pytest

from codeact_desktop.export import export_conversation
from codeact_desktop.kernel.observation import strip_ansi

from ._recorded import recorded_conversation

# as IPython prints it, colours stripped
QUOTED = """\
---------------------------------------------------------------------------
KeyError                                  Traceback (most recent call last)
Cell In[3], line 4
      1 def f(d):
      2     return d['month']
----> 4 f({})

Cell In[3], line 2, in f(d)
      1 def f(d):
----> 2     return d['month']

KeyError: 'month'"""
REPLIES = [
    ("<execute>\nimport pandas as pd\ndf = pd.DataFrame({'sales': [1, 2]})\n"
     "raise ValueError(\"<script>alert('x')</script> in 'sales'\")\n</execute>"),
    # the model quoting an error in a fence without a language
    f"It failed like this:\n```\n{QUOTED}\n```",
]


@pytest.fixture(scope="module")
def conversation(tmp_path_factory, app_paths):
    yield from recorded_conversation(tmp_path_factory.mktemp("export-errors"), app_paths, REPLIES, "Errors",
                                     "sum sales")


def test_html_traceback_is_plain_escaped_preformatted_text(conversation, tmp_path):
    page = export_conversation(conversation, tmp_path / "errors.html").read_text()
    blocks = re.findall(r"<pre[^>]*>(.*?)</pre>", page, re.DOTALL)
    (traceback,) = [b for b in blocks if "Traceback (most recent call last)" in b and "ValueError" in b]
    assert "<span" not in traceback and "<code" not in traceback and "\x1b" not in traceback
    assert "----&gt; 3 raise ValueError" in traceback
    assert traceback.endswith("ValueError: &lt;script&gt;alert('x')&lt;/script&gt; in 'sales'")
    assert "<script" not in page  # the code's own <script> is text wherever it shows
    # the model's quoted traceback, in a fence without a language: not highlighted either
    (quoted,) = [b for b in blocks if "KeyError: 'month'" in b]
    assert "<span style" not in quoted
    assert "solid #F" not in page.split("<body>")[1]  # no lexer-error box anywhere


def test_markdown_keeps_the_traceback_in_a_plain_fence(conversation, tmp_path):
    text = export_conversation(conversation, tmp_path / "errors.md").read_text()
    assert "\x1b" not in text
    fence = re.search(r"```text\n(-+\nValueError .*?)\n```", text, re.DOTALL)
    assert fence and re.search(r"Cell In\[\d+\], line 3", fence[1])
    assert fence[1].endswith("ValueError: <script>alert('x')</script> in 'sales'")


def test_notebook_error_output_keeps_ename_evalue_traceback(conversation, tmp_path):
    nb = nbformat.read(str(export_conversation(conversation, tmp_path / "errors.ipynb")), as_version=4)
    nbformat.validate(nb)
    (cell,) = [c for c in nb.cells if c.cell_type == "code"]
    (error,) = cell.outputs
    assert error.output_type == "error" and error.ename == "ValueError"
    assert error.evalue == "<script>alert('x')</script> in 'sales'"
    assert isinstance(error.traceback, list) and all(isinstance(line, str) for line in error.traceback)
    plain = strip_ansi("\n".join(error.traceback))  # ANSI colours stay: Jupyter shows them
    assert "Cell In[" in plain and plain.endswith("ValueError: <script>alert('x')</script> in 'sales'")
