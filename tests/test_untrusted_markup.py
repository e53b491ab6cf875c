"""HTML and Markdown from the kernel or the model, made inert; text made safe for a terminal."""

from codeact_desktop.untrusted_markup import clean_html, neutral_markdown
from codeact_desktop.visible_text import for_terminal, visible_name


def test_clean_html_keeps_tables_and_drops_what_runs_or_loads():
    html = ('<table class="dataframe"><tr><th>a</th><td style="color:red;background:url(http://x/y)">1</td></tr>'
            '</table><script>alert(1)</script><img src="http://x/p.png" onerror="x()">'
            '<img src="data:image/png;base64,iVBOR"><a href="javascript:alert(1)">j</a><a href="https://ok">ok</a>'
            '<iframe src="file:///etc/passwd"></iframe><style>*{}</style><svg onload="x()"></svg>')
    cleaned = clean_html(html)
    assert "<table>" in cleaned and "<th>a</th>" in cleaned and 'style="color:red"' in cleaned
    for gone in ("script", "alert", "onerror", "http://x", "javascript", "iframe", "passwd", "<style", "svg"):
        assert gone not in cleaned, gone
    assert 'src="data:image/png;base64,iVBOR"' in cleaned and 'href="https://ok"' in cleaned


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
