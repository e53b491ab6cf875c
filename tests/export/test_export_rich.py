"""Rich outputs of a real kernel exported whole: the notebook holds every type as the kernel
sent it (nbformat validates it), the HTML page shows each by the window's priority, its
LaTeX drawn as an image, its SVG inert, its HTML sanitized."""

import base64
import re
from html.parser import HTMLParser

import nbformat
import pytest

from codeact_desktop.export import export_conversation

from ._recorded import recorded_conversation

CODE = """\
import sympy
from IPython.display import HTML, JSON, SVG, Markdown, display
x = sympy.Symbol('x')
display(sympy.sqrt(x))
display(SVG("<svg xmlns='http://www.w3.org/2000/svg' width='20' height='10'><script>alert(1)</script>"
            "<rect width='20' height='10' fill='teal'/></svg>"))
display(HTML("<b>bold</b><script>alert(2)</script>"))
display(JSON({'k': [1, 2]}))
display(Markdown('**md** <img src=x onerror=alert(3)>'))
"""


@pytest.fixture(scope="module")
def conversation(tmp_path_factory, app_paths):
    yield from recorded_conversation(tmp_path_factory.mktemp("rich"), app_paths,
                                     [f"<execute>\n{CODE}</execute>", "Done."], "Rich", "show me", timeout_s=60)


def test_the_notebook_holds_every_type_as_sent(conversation, tmp_path):
    notebook = nbformat.read(str(export_conversation(conversation, tmp_path / "rich.ipynb")), as_version=4)
    nbformat.validate(notebook)
    (cell,) = [c for c in notebook.cells if c.cell_type == "code"]
    latex, svg, html, as_json, md = (o.data for o in cell.outputs)
    assert latex["text/latex"] == r"$\displaystyle \sqrt{x}$" and latex["text/plain"] == "sqrt(x)"
    assert "<rect" in svg["image/svg+xml"] and "script" not in svg["image/svg+xml"]
    assert "<b>bold</b>" in html["text/html"] and "script" not in html["text/html"]
    assert as_json["application/json"] == {"k": [1, 2]}
    assert md["text/markdown"].startswith("**md**")


def test_the_page_shows_each_by_priority_and_inert(conversation, tmp_path):
    page = export_conversation(conversation, tmp_path / "rich.html").read_text()
    formula, drawing = re.findall(r'src="data:(image/[a-z+]+);base64,([^"]+)"', page)
    assert formula[0] == "image/png" and base64.b64decode(formula[1]).startswith(b"\x89PNG")  # sqrt(x), drawn
    assert drawing[0] == "image/svg+xml" and b"<rect" in base64.b64decode(drawing[1])
    assert "<b>bold</b>" in page and "<strong>md</strong>" in page and '"k": [' in page
    tags = _Tags()
    tags.feed(page)
    assert "script" not in tags.names and "svg" not in tags.names
    assert not any(a.startswith("on") for a in tags.attributes)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.names, self.attributes = [], []

    def handle_starttag(self, tag, attrs):
        self.names.append(tag)
        self.attributes += [name for name, _ in attrs]


def test_markdown_keeps_the_formula_as_math(conversation, tmp_path):
    text = export_conversation(conversation, tmp_path / "rich.md").read_text()
    assert "```math\n\\sqrt{x}\n```" in text and "![output](rich_files/image-1.svg)" in text
    assert (tmp_path / "rich_files" / "image-1.svg").read_bytes().startswith(b"<svg")


def test_a_stored_svg_bomb_and_a_pixel_bomb_reach_no_export():
    """A history from before the SVG count (stop 24) or the pixel bound can hold what is
    refused now; each export reads the rows again through the same checks, so a browser
    opening the page, the Markdown's image folder or a notebook viewer draws neither."""
    import struct
    import zlib

    from codeact_desktop.agent.timeline import Entry, StoredOutput
    from codeact_desktop.export import to_html, to_markdown, to_notebook
    from tests.security.test_attacks_new_surfaces import _use_bomb

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(bytes(9000 * 3 + 1) * 10)) + chunk(b"IEND", b""))
    bundles = [{"image/svg+xml": _use_bomb(7)}, {"image/png": base64.b64encode(png).decode()}]
    entries = [Entry(type="action", text="x", action={"status": "ok"}, outputs=[
        StoredOutput(kind="image", text="", meta={"output": {"output_type": "display_data", "metadata": {},
                                                              "data": {**b, "text/plain": "plot"}}})
        for b in bundles])]
    page = to_html("t", entries)
    assert "<img" not in page and "9,000 × 9,000 pixels was not shown" in page
    assert to_markdown("t", entries)[1] == {}
    shown = [o.get("data", {}) for c in to_notebook("t", entries).cells for o in c.get("outputs", [])]
    assert not [d for d in shown if "image/svg+xml" in d or "image/png" in d], shown
