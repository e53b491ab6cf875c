"""Outputs kept whole: every type a real kernel sends is in the item's bundle, the shown type
is picked by DISPLAY_PRIORITY, and whatever the kernel sends is checked (hostile SVG,
malformed bundles, LaTeX that would hang mathtext)."""

import base64
import json
import time

import nbformat
from nbformat import v4

from codeact_desktop.kernel.latex_image import latex_png, math_source
from codeact_desktop.kernel.observation import observation_text
from codeact_desktop.kernel.outputs import DISPLAY_PRIORITY, item_from_message, item_from_output, item_from_stored


def _displays(result):
    return [i for i in result.items if i.is_display]


def _valid_notebook(items) -> None:
    cell = v4.new_code_cell("x", execution_count=1)
    cell.outputs = [i.to_output() for i in items]
    nbformat.validate(v4.new_notebook(cells=[cell]))


def test_sympy_latex_is_kept_with_its_plain_twin(module_kernel):
    result = module_kernel.execute("import sympy\nx = sympy.Symbol('x')\ndisplay(sympy.sqrt(x))\nsympy.sqrt(x) + 1")
    shown, value = _displays(result)
    assert shown.mime == "text/latex" and shown.kind == "text" and r"\sqrt{x}" in shown.text
    assert shown.bundle["text/latex"] == shown.text and shown.bundle["text/plain"] == "sqrt(x)"
    assert shown.output_type == "display_data" and value.output_type == "execute_result"
    assert value.execution_count is not None
    assert observation_text([shown]) == "sqrt(x)"  # the model reads what it read before
    _valid_notebook(result.items)
    assert latex_png(shown.text).startswith(b"\x89PNG")


def test_every_type_of_a_bundle_is_kept_and_the_priority_picks(module_kernel):
    result = module_kernel.execute(
        "display({'text/plain': 'p', 'text/html': '<b>h</b>', 'text/markdown': '# m', 'application/json': {'a': 1},"
        " 'text/latex': '$y$', 'application/vnd.custom+json': [1, 2]}, raw=True)")
    (item,) = _displays(result)
    assert set(item.bundle) == {"text/plain", "text/html", "text/markdown", "application/json", "text/latex",
                                "application/vnd.custom+json"}
    assert item.mime == "text/latex" == next(m for m in DISPLAY_PRIORITY if m in item.bundle)
    assert item.bundle["application/vnd.custom+json"] == [1, 2]
    assert item.kept_size >= sum(len(json.dumps(v)) for v in item.bundle.values()) - 20
    again = item_from_output(json.loads(json.dumps(item.to_output())))
    assert again == item  # stored and read back: the same item


def test_json_is_shown_as_text_and_markdown_as_its_source(module_kernel):
    result = module_kernel.execute("from IPython.display import JSON, Markdown\n"
                                   "display(JSON({'k': [1, 2]}))\ndisplay(Markdown('**bold** <script>x</script>'))")
    as_json, as_markdown = _displays(result)
    assert as_json.mime == "application/json" and json.loads(as_json.text) == {"k": [1, 2]}
    assert as_markdown.mime == "text/markdown" and as_markdown.text.startswith("**bold**")
    _valid_notebook(result.items)


def test_jpeg_is_kept_as_jpeg(module_kernel):
    result = module_kernel.execute(
        "import io\nfrom PIL import Image as P\nfrom IPython.display import Image\nb = io.BytesIO()\n"
        "P.new('RGB', (40, 30), 'red').save(b, 'JPEG')\ndisplay(Image(data=b.getvalue(), format='jpeg'))")
    (item,) = _displays(result)
    assert item.kind == "image" and item.mime == "image/jpeg" and item.data.startswith(b"\xff\xd8\xff")
    assert observation_text([item]) == "<image: JPEG, shown to the user>"
    assert base64.b64decode(item.bundle["image/jpeg"]) == item.data


def test_matplotlib_svg_is_kept_as_svg(module_kernel):
    result = module_kernel.execute(
        "import matplotlib.pyplot as plt\nfrom matplotlib_inline.backend_inline import set_matplotlib_formats\n"
        "set_matplotlib_formats('svg')\nplt.plot([1, 3, 2])\nplt.show()\nset_matplotlib_formats('png')")
    (item,) = _displays(result)
    assert item.kind == "image" and item.mime == "image/svg+xml"
    svg = item.data.decode()
    assert svg.startswith("<svg") and "<path" in svg and 'xlink:href="#' in svg  # glyphs and clips kept
    assert observation_text([item]) == "<image: SVG, shown to the user>"
    _valid_notebook(result.items)


def test_hostile_svg_loses_every_reference_and_script(module_kernel, tmp_path):
    marker = tmp_path / "marker-never-read.png"
    svg = ("<svg xmlns='http://www.w3.org/2000/svg' xmlns:xlink='http://www.w3.org/1999/xlink' width='50' "
           f"height='50' onload='alert(1)'><image xlink:href='file://{marker}' width='9' height='9'/>"
           f"<image href='{marker}'/><script>alert(2)</script><style>@import url(file://{marker});</style>"
           "<foreignObject><p xmlns='http://www.w3.org/1999/xhtml'>x</p></foreignObject>"
           f"<rect width='5' height='5' fill='url(file://{marker})' style='fill: url(http://127.0.0.1:9/x)'/>"
           f"<set attributeName='href' to='file://{marker}'/><circle r='4'/></svg>")
    result = module_kernel.execute(f"from IPython.display import SVG\ndisplay(SVG({svg!r}))")
    (item,) = _displays(result)
    assert item.mime == "image/svg+xml"
    for kept in (item.data.decode(), item.bundle["image/svg+xml"]):
        assert "marker" not in kept and "script" not in kept and "foreignObject" not in kept
        assert "onload" not in kept and "127.0.0.1" not in kept and "<set" not in kept
        assert "<circle" in kept and "<rect" in kept  # the drawing stays


def test_an_svg_that_cannot_be_vouched_for_falls_back_to_the_next_type():
    def shown(svg):
        msg = {"header": {"msg_type": "display_data"},
               "content": {"data": {"image/svg+xml": svg, "text/plain": "<SVG>"}, "metadata": {}}}
        return item_from_message(msg)

    billion_laughs = ("<?xml version='1.0'?><!DOCTYPE svg [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;'>]>"
                      "<svg xmlns='http://www.w3.org/2000/svg'>&b;</svg>")
    for svg in (billion_laughs, "<svg", "<html xmlns='http://www.w3.org/1999/xhtml'/>",
                "<svg xmlns='http://www.w3.org/2000/svg'>" + "<g>" * 5000 + "</g>" * 5000 + "</svg>"):
        item = shown(svg)
        assert item.kind == "text" and item.text == "<SVG>" and "image/svg+xml" not in item.bundle


def test_malformed_bundles_keep_what_is_well_formed():
    png = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"))
    msg = {"header": {"msg_type": "execute_result"},
           "content": {"data": {"image/jpeg": "aGVsbG8=", 5: "x", "not a type": "y", "text/html": ["<i>", 3],
                                "text/markdown": ["# a", "b"], "text/plain": "plain"},
                       "metadata": {"image/png": 5, "isolated": True, 7: 1}, "execution_count": "seven"}}
    item = item_from_message(msg)
    assert item.mime == "text/markdown" and item.text == "# ab"  # not JPEG, not HTML: not shown
    assert set(item.bundle) == {"image/jpeg", "text/markdown", "text/plain"}  # kept as sent, text only
    assert item.metadata == {"isolated": True} and item.execution_count is None
    _valid_notebook([item])
    msg["content"]["data"] = {"image/png": png.decode(), "text/plain": "fig"}
    assert item_from_message(msg).kind == "image"
    assert item_from_message({"header": "x", "content": {}}) is None
    assert item_from_output({"output_type": "stream", "name": 5, "text": ["a", "b"]}).text == "ab"


def test_huge_latex_is_kept_but_not_drawn_and_costs_no_time(module_kernel):
    result = module_kernel.execute("from IPython.display import Latex\n"
                                   "display(Latex('$' + '{' * 50000 + 'x' + '}' * 50000 + '$'))")
    (item,) = _displays(result)
    assert item.mime == "text/latex" and len(item.text) == 100_003
    started = time.monotonic()
    assert math_source(item.text) is None and latex_png(item.text) is None
    assert latex_png("$" + "{" * 40 + "x" + "}" * 40 + "$") is None  # under the length cap, too deep
    assert time.monotonic() - started < 0.5
    assert latex_png(r"$\left[\begin{matrix}1\end{matrix}\right]$") is None  # mathtext lacks it: not drawn


def test_rows_of_older_versions_are_rebuilt():
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000002000000030806000000")
    image = item_from_stored("image", "<Figure>", png, {"plain": "<Figure>", "bytes": len(png)})
    assert image.kind == "image" and image.data == png and image.to_output()["data"]["text/plain"] == "<Figure>"
    html = item_from_stored("html", "<table></table>", None, {"plain": "   a"})
    assert html.kind == "html" and html.plain == "   a"
    error = item_from_stored("error", "Traceback\nValueError: x", None,
                             {"ename": "ValueError", "evalue": "x", "traceback": ["Traceback", "ValueError: x"]})
    assert error.ename == "ValueError" and error.traceback == ["Traceback", "ValueError: x"]
    assert item_from_stored("text", "4", None, {}).to_output()["data"] == {"text/plain": "4"}
    _valid_notebook([image, html, error])


def test_drawing_a_formula_imports_mathtext_only_when_needed_and_never_pyplot():
    import subprocess
    import sys

    probe = ("import sys\nimport codeact_desktop.ui.chat_view, codeact_desktop.export\n"
             "print('matplotlib' in sys.modules)\nfrom codeact_desktop.kernel.latex_image import latex_png\n"
             "assert latex_png('$x^2$').startswith(b'\\x89PNG')\nprint('matplotlib.pyplot' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert done.stdout.split() == ["False", "False"], done.stderr[-2000:]


def test_sympys_display_maths_keeps_display_size_fractions():
    # mathtext has no \displaystyle: without \dfrac a sympy fraction came out at script size.
    assert math_source(r"$\displaystyle - \frac{e^{- x^{2}}}{2}$") == r"$- \dfrac{e^{- x^{2}}}{2}$"
    assert math_source(r"$\frac{a}{b}$") == r"$\frac{a}{b}$"  # inline maths stays inline
    assert latex_png(r"$\displaystyle \frac{1}{2}$").startswith(b"\x89PNG")


def test_a_jpeg_and_a_png_are_sized_from_their_headers_and_refused_past_the_pixel_bound():
    """The size comes from the header (a JPEG's start of frame, after its EXIF and tables),
    so a bomb is refused before anything decodes it, from a live message or a stored row."""
    import io

    from PIL import Image

    from codeact_desktop.image_size import MAX_IMAGE_PIXELS, image_size, jpeg_size

    buffer = io.BytesIO()
    Image.new("RGB", (321, 123)).save(buffer, "JPEG", exif=Image.Exif(), progressive=True)
    jpeg = buffer.getvalue()
    assert jpeg_size(jpeg) == image_size(jpeg) == (321, 123)
    assert jpeg_size(b"\xff\xd8\xff\xe0\x00") is None and jpeg_size(b"not a jpeg") is None
    huge = jpeg.replace(b"\x00\x7b\x01\x41", (6000).to_bytes(2, "big") + (5000).to_bytes(2, "big"), 1)
    assert jpeg_size(huge) == (5000, 6000) and 5000 * 6000 > MAX_IMAGE_PIXELS
    def shown(data: bytes):
        return item_from_output({"output_type": "display_data", "metadata": {},
                                 "data": {"image/jpeg": base64.b64encode(data).decode(), "text/plain": "x"}})

    assert (shown(jpeg).kind, shown(jpeg).mime) == ("image", "image/jpeg")
    assert shown(huge).kind == "stderr" and "5,000 × 6,000 pixels was not shown" in shown(huge).text

    # libjpeg skips bytes that are not a marker (with a warning) and steps over RSTn, which
    # carry no length; a parser that stopped there let a 65,000 × 65,000 frame through
    # unmeasured, each draw 2.5 s of the window's thread. Measured as libjpeg reads it now,
    # and an image whose size cannot be read is not kept.
    stray = huge.replace(b"\xff\xc2", b"\x00\x00\xff\xc2", 1)
    restart = huge.replace(b"\xff\xc2", b"\xff\xd0\xff\xc2", 1)
    # FF 00 is a stuffed zero to libjpeg, not a marker with a length: read as one, it hid a
    # comment holding a 16 x 16 frame from this parser, which then measured that one
    small_frame = b"\xff\xc0\x00\x11\x08\x00\x10\x00\x10\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    stuffed = huge[:2] + b"\xff\x00\x00\x06\xff\xfe\x00\x15" + small_frame + huge[2:]
    assert jpeg_size(stray) == jpeg_size(restart) == jpeg_size(stuffed) == (5000, 6000)
    for bomb in (stray, restart, stuffed):
        assert Image.open(io.BytesIO(bomb)).size == (5000, 6000)  # what a decoder reads too
        assert shown(bomb).kind == "stderr" and "5,000 × 6,000 pixels" in shown(bomb).text
    headless = jpeg[:2] + b"\xff\xfe\x00\x04hi"  # a JPEG with no frame at all
    assert shown(headless).kind == "stderr" and "size cannot be read" in shown(headless).text
