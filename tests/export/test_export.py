"""Exports of a real conversation (real kernel, scripted model): a notebook nbformat
accepts, with code, outputs and the image; Markdown with its image file; one HTML file."""

import base64

import nbformat
import pytest

from codeact_desktop.export import export_conversation

from ._recorded import recorded_conversation

REPLIES = [
    "Plotting.\n<execute>\nimport matplotlib.pyplot as plt\nimport pandas as pd\nprint('hello')\n"
    "plt.plot([1, 2]); plt.show()\npd.DataFrame({'x': [1]})\n</execute>",
    "<execute>1/0</execute>",
    "Done: **one** plot.",
]


@pytest.fixture(scope="module")
def conversation(tmp_path_factory, kernel_venv, app_paths):
    root = tmp_path_factory.mktemp("export")
    data = root / "data.csv"
    data.write_text("x\n1\n")
    yield from recorded_conversation(root, app_paths, REPLIES, "Plot it", "plot", [data])


def test_notebook_validates_and_holds_outputs(conversation, tmp_path):
    path = export_conversation(conversation, tmp_path / "out.ipynb")
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) == 2 and "plt.plot" in code[0].source
    kinds = [o.output_type for o in code[0].outputs]
    assert kinds == ["stream", "display_data", "execute_result"]
    png = base64.b64decode(code[0].outputs[1].data["image/png"])
    assert png.startswith(b"\x89PNG")
    assert "<table" in code[0].outputs[2].data["text/html"]
    assert code[1].outputs[0].output_type == "error" and code[1].outputs[0].ename == "ZeroDivisionError"
    md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert md[0] == "# Plot it" and md[1].startswith("**You:** plot") and "data.csv" in md[1]
    assert "Done: **one** plot." in md


def test_markdown_and_html(conversation, tmp_path):
    md = export_conversation(conversation, tmp_path / "chat é.md")
    text = md.read_text()
    assert "```python\nimport matplotlib" in text and "![output](chat é_files/image-1.png)" in text
    assert (tmp_path / "chat é_files" / "image-1.png").read_bytes().startswith(b"\x89PNG")
    page = export_conversation(conversation, tmp_path / "chat.html").read_text()
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
    assert "<strong>one</strong>" in page and "ZeroDivisionError" in page


def test_unknown_format_is_refused(conversation, tmp_path):
    with pytest.raises(ValueError, match="ipynb"):
        export_conversation(conversation, tmp_path / "out.pdf")


ESCAPES = [
    # OSC 52 ended by ESC \ (not BEL), in print and in an error; an HTML table's text twin
    # with a screen clear and a title change; a reply with OSC 52, ESC[8m and a C1 CSI.
    "<execute>\nimport pandas as pd\nfrom IPython.display import HTML, display\n"
    "print('\\x1b]52;c;Y3VybCBldmlsIHwgc2g=\\x1b\\\\ok\\rfake line')\n"
    "display(HTML('<p>\\x1b[2J\\x1b]0;pwned\\x07table</p>'))\n"
    "raise ValueError('\\x1b]52;c;Y3VybA==\\x1b\\\\')\n</execute>",
    "Done \x1b]52;c;Y3VybA==\x07 \x1b[8mhidden\x1b[0m \x9b2J \u202etxt.exe",
]


def test_markdown_and_html_exports_hold_no_terminal_escapes(tmp_path, tmp_path_factory, kernel_venv, app_paths):
    # `cat chat.md` in a terminal that honours OSC 52 put the code's command on the clipboard.
    root = tmp_path_factory.mktemp("escapes")
    for conversation in recorded_conversation(root, app_paths, ESCAPES, "Escapes", "show it", []):
        for name in ("chat.md", "chat.html"):
            text = export_conversation(conversation, tmp_path / name).read_text()
            odd = [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f or c == "\u202e"]
            assert not odd, (name, odd[:5])
            assert "\\x1b]52;c;" in text  # shown, as an escape
