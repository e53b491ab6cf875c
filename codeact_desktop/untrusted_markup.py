"""HTML and Markdown that came from the kernel or the model, made safe to show or export.

An output's ``text/html`` and a reply's Markdown are written by code and instructions the
app does not trust: a ``<script>``, an ``onerror=``, a ``javascript:`` link or a remote
``<img>`` would run or call out when the window or an exported page shows them. HTML goes
through nh3 (the Rust ammonia sanitizer) with an allow-list fit for tables and
formatted text; images only as inline ``data:image/...``, links only to http(s) and
mailto. Markdown keeps its formatting, but raw HTML in it is escaped so it shows as text
(``&lt;``, which CommonMark and Python-Markdown both read as a plain "<"), images become
links (nothing loads until a person clicks), and links use no other scheme. SVG from the
kernel keeps its drawing and loses whatever could run or read: scripts, foreign objects,
animations, handlers, and every reference that is not to the image itself or to inline
image data (``<image href="file:...">`` would have the window read a file).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from html import escape, unescape

import nh3

from .image_size import MAX_IMAGE_PIXELS, data_url_pixels

_TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details",
         "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "mark",
         "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup", "table",
         "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var"}
_ATTRIBUTES = {"*": {"title", "style", "align"}, "a": {"href"}, "img": {"src", "alt", "width", "height"},
               "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan", "scope"}, "ol": {"start"},
               "table": {"border"}}
# Colours and layout, nothing that can load a resource (no url(), no backgrounds with images)
# (no font-family: a name holding both quote kinds broke out of Qt's exported CSS into a url())
_STYLE = {"color", "background-color", "font-weight", "font-style", "text-align",
          "text-decoration", "vertical-align", "white-space", "border", "border-collapse", "border-bottom",
          "border-top", "padding", "margin", "min-width", "max-width", "width", "line-height", "margin-top",
          "margin-bottom", "margin-left", "margin-right", "text-indent", "font-size", "list-style-type",
          "-qt-block-indent", "-qt-list-indent", "-qt-paragraph-type", "-qt-user-state"}  # Qt's own, for its layout
# In the window a kernel's HTML keeps text styles only: with borders, backgrounds, padding
# and margins it drew a convincing fake of the app's own approval card and buttons inside
# an output (GitHub strips styles from what users write for the same reason).
_BOX_STYLE = {"background-color", "border", "border-collapse", "border-bottom", "border-top", "padding", "margin",
              "margin-top", "margin-bottom", "margin-left", "margin-right", "min-width", "max-width", "width"}
_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*\Z")
MAX_SPAN = 1000
# Qt builds and lays out rich text on the UI thread, at once and at every opening, in time
# that grows faster than its size: a 50,000-row table took 74 s, 20,000 nested spans 43 s,
# one row of 20,000 cells 10 s, a 20,000-row Markdown table 59 s, and each level of nested
# tables doubles the time (19 levels in 666 bytes took 80 s). Costs are counted in elements:
# 20,000 paragraphs take about as long as 3,000 table cells, about a second here. Past the
# bounds the text is shown without its layout.
MAX_LAYOUT_COST = 20_000
LAYOUT_COST_PER_RUN = 3 * MAX_LAYOUT_COST  # what one run's rich outputs may cost together
_CELL_COST = 7
MAX_RICH_DEPTH = 100
# nh3's parser itself takes time growing with the square of the nesting: 1.5 s for 20,000
# nested <div>. HTML that opens more tags than this, as written, is shown as its words.
MAX_RAW_DEPTH = 2_000
MAX_TABLE_DEPTH = 6
_BEYOND = 1 << 40  # the cost of what no budget covers
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)[^>]*>?")
# Tags that end a word where they stand; inline ones (<b>, <span>) do not
_BLOCK_TAG = re.compile(r"</?(td|th|tr|p|div|br|li|ul|ol|dl|dt|dd|h[1-6]|pre|blockquote|table|thead|tbody|tfoot|"
                        r"caption|hr|img|details|summary)\b[^>]*>?", re.IGNORECASE)
_IMG_SRC = re.compile(r"<img\b[^>]*?\ssrc=\"(data:[^\"]*)\"", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_LINE_BREAK = re.compile(r"\r\n?")
_INLINE_MARKS = ("`", "*", "_", "[", "~", "<", "://")
# Qt breaks a word into lines in time growing with the square of its length: one of
# 200,000 characters took 13 s. Longer words than this are shown as plain text.
MAX_WORD = 10_000
_WORD = re.compile(r"\S+")
_VOID = {"br", "hr", "img", "col", "wbr"}
_ROW_END = re.compile(r"\t+\n")  # the tab after a row's last cell
_CELL_END = re.compile(r"</t[dh]\s*>", re.IGNORECASE)
_LINE_END = re.compile(r"<br\s*/?>|</(tr|p|div|li|h[1-6]|pre|blockquote|dt|dd|caption)\s*>", re.IGNORECASE)
_LINK = re.compile(r"(https?:|mailto:|#)", re.IGNORECASE)
_DROPPED_WITH_CONTENT = {"script", "style", "template", "noscript"}

# For an exported page: nothing loads from anywhere, nothing runs, even if the sanitizer missed it.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'"


def _keep(tag: str, attribute: str, value: str, svg_images: bool = False, budget: list[int] | None = None
          ) -> str | None:
    if tag == "img" and attribute == "src":
        if svg_images and _SVG_IMAGE.match(value):
            return value
        return value if _IMAGE.match(value) and _fits(value, budget) else None
    if attribute in ("colspan", "rowspan"):
        # Qt lays out every cell a span covers: 100 rows of colspan=65000 took 4 GB and minutes
        return value if value.strip().isdigit() and int(value) <= MAX_SPAN else None
    if tag == "a" and attribute == "href":
        return value if _LINK.match(value.strip()) else None
    return value


def _fits(url: str, budget: list[int] | None) -> bool:
    """An inline image whose header says it is small enough to decode, within what is left."""
    pixels = data_url_pixels(url)
    if pixels is None or pixels > MAX_IMAGE_PIXELS or (budget is not None and pixels > budget[0]):
        return False
    if budget is not None:
        budget[0] -= pixels
    return True


def clean_html(html: str, svg_images: bool = False, pixels: int | None = None, boxes: bool = True) -> str:
    """The HTML with only formatting left: no scripts, handlers, frames, forms or remote loads.
    ``svg_images``: inline SVG images kept (a browser draws them inert, as images; the window's
    rich text would not). Inline images: each within MAX_IMAGE_PIXELS, and ``pixels`` together.
    ``boxes``: borders, backgrounds, padding and margins kept (not for the window's outputs)."""
    budget = [pixels] if pixels is not None else None
    if _nests_deeper_than(html, MAX_RAW_DEPTH):
        return escape(_TAG.sub(" ", html), quote=False)  # its words, as text

    def keep(tag: str, attribute: str, value: str) -> str | None:
        return _keep(tag, attribute, value, svg_images, budget)

    return nh3.clean(html, tags=_TAGS, clean_content_tags=_DROPPED_WITH_CONTENT,
                     attributes=_ATTRIBUTES, attribute_filter=keep, url_schemes={"http", "https", "mailto", "data"},
                     filter_style_properties=_STYLE if boxes else _STYLE - _BOX_STYLE, link_rel="noopener noreferrer")


def _nests_deeper_than(html: str, limit: int) -> bool:
    """Whether tags as written open deeper than ``limit`` (an unclosed ``<p>`` counts too:
    the bound is loose enough for that)."""
    depth = 0
    for closing, tag in _TAG.findall(html):
        if closing:
            depth = max(0, depth - 1)
        elif tag.lower() not in _VOID:
            depth += 1
            if depth > limit:
                return True
    return False


def inline_image_pixels(html: str) -> int:
    """Pixels the inline images of sanitized HTML claim together."""
    return sum(data_url_pixels(src) or 0 for src in _IMG_SRC.findall(html))


def _longest_word(text: str) -> int:
    return max(map(len, text.split()), default=0)


def _pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def html_layout_cost(html: str) -> int:
    """What laying out sanitized HTML costs Qt (nh3 has balanced its tags), in elements;
    nesting past the bounds costs more than any budget."""
    if _longest_word(_TAG.sub("", _BLOCK_TAG.sub(" ", html))) > MAX_WORD:  # words as Qt sees them
        return _BEYOND
    cost = html.count("\n") + html.count("\r")  # each line of a <pre> is a block of its own
    depth = tables = 0
    for closing, tag in _TAG.findall(html):
        tag = tag.lower()
        if closing:
            depth = max(0, depth - 1)
            tables = max(0, tables - 1) if tag == "table" else tables
            continue
        cost += _CELL_COST if tag in ("td", "th") else 1
        if tag not in _VOID:
            depth += 1
            tables += tag == "table"
            if depth > MAX_RICH_DEPTH or tables > MAX_TABLE_DEPTH:
                return _BEYOND
    return cost


def markdown_cost(text: str) -> int:
    """What Qt's Markdown reader and layout cost, in elements, estimated from the source
    before it is read: the reader builds all of it first. A GitHub table's row has as many
    cells as its header, written or not, and runs to the next blank line; so a block of
    lines holding a ``|`` counts its lines times its widest line's cells. Inline marks (code,
    emphasis, links) each make a piece of their own."""
    if _longest_word(text) > MAX_WORD:
        return _BEYOND
    text = _LINE_BREAK.sub("\n", text)  # the reader ends lines at a lone CR too
    cost = sum(text.count(mark) for mark in _INLINE_MARKS)
    for block in _BLANK_LINES.split(text):
        lines = block.count("\n") + 1
        widest = max(line.count("|") for line in block.split("\n"))
        cost += lines + (_CELL_COST * lines * (widest + 1) if widest else 0)
    return cost


def text_only(html: str) -> str:
    """The HTML's text, no tags at all, rows and paragraphs on lines of their own, cells
    apart: what is shown where its layout would take too long."""
    spaced = _LINE_END.sub("\n", _CELL_END.sub("\t", html))
    return _ROW_END.sub("\n", unescape(nh3.clean(spaced, tags=set(), clean_content_tags=_DROPPED_WITH_CONTENT)))


def plain_text_html(text: str) -> str:
    """Text as rich text that shows it as it is, lines kept; words too long to break into
    lines at once get a zero-width space every MAX_WORD characters."""
    text = _WORD.sub(lambda word: "\u200b".join(_pieces(word.group(), MAX_WORD)), text)
    return f'<div style="white-space: pre-wrap">{escape(text, quote=False)}</div>'


# -- SVG ------------------------------------------------------------------------------

MAX_SVG_CHARS = 8 << 20
_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"
# Elements that run, embed another document, or change the drawing (and its references) over time
_SVG_DROPPED = {"script", "foreignObject", "iframe", "object", "embed", "audio", "video", "handler", "listener",
                "animate", "animateColor", "animateMotion", "animateTransform", "set", "discard", "prefetch"}
_SVG_IMAGE = re.compile(r"data:image/svg\+xml;base64,[A-Za-z0-9+/=\s]*\Z")
_INLINE_IMAGE = re.compile(r"\s*data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*\Z")
_URL = re.compile(r"url\s*\(\s*['\"]?\s*([^)'\"\s]*)", re.IGNORECASE)
# Written back with the usual prefixes: Qt's SVG reader looks for "xlink:href" by that name.
ElementTree.register_namespace("", _SVG_NS)
ElementTree.register_namespace("xlink", _XLINK_NS)


# A ``<use>`` draws its target again: 3 KB of uses nested eight deep, ten a level, draw 10^8
# circles (minutes for any renderer: the window's QtSvg, a browser opening an export).
MAX_DRAWN_ELEMENTS = 300_000  # about 2 s for QtSvg; a plot of 100,000 markers draws 200,000
_REFERENCE = re.compile(r"url\(\s*['\"]?#([^)'\"\s]+)")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def drawn_elements(svg: str | ElementTree.Element, limit: int = MAX_DRAWN_ELEMENTS) -> int | None:
    """How many elements drawing ``svg`` takes, references followed (a ``<use>``'s target, a
    ``url(#...)`` paint, clip, mask or marker, a marker once per vertex); counting stops just
    past ``limit``. None: not XML, or nested too deep to count."""
    try:
        root = ElementTree.fromstring(svg) if isinstance(svg, str) else svg
    except (ElementTree.ParseError, ValueError):
        return None
    by_id = {e.get("id"): e for e in root.iter() if e.get("id")}
    known: dict[int, int] = {}

    def count(element, path: set[int]) -> int:
        key = id(element)
        if key in known:
            return known[key]
        if key in path:  # a reference cycle: QtSvg draws it once, then refuses
            return 0
        path.add(key)
        total = 1 + sum(count(child, path) for child in element)
        for attribute, value in element.attrib.items():
            targets = _REFERENCE.findall(value)
            if attribute.rpartition("}")[2] == "href" and value.startswith("#"):
                targets.append(value[1:])
            times = 1
            if "marker" in attribute or "marker" in value:
                times = max(1, len(_NUMBER.findall(element.get("d", "") + element.get("points", ""))))
            for target in targets:
                if target in by_id and total <= limit:
                    total += times * count(by_id[target], path)
        path.discard(key)
        known[key] = total = min(total, limit + 1)
        return total

    try:
        return count(root, set())
    except RecursionError:
        return None


def clean_svg(svg: str) -> str | None:
    """The SVG with only its drawing left, or None when it is not one this can vouch for
    (too long, not XML, entity declarations, not an ``<svg>`` at the top)."""
    if len(svg) > MAX_SVG_CHARS or "<!ENTITY" in svg.upper():
        return None
    try:
        root = ElementTree.fromstring(svg.encode("utf-8"))  # the parser fetches no DTD, keeps no PI
    except (ElementTree.ParseError, ValueError):
        return None
    if root.tag != f"{{{_SVG_NS}}}svg":
        return None
    try:
        _clean_svg_element(root)
        drawn = drawn_elements(root)
        if drawn is None or drawn > MAX_DRAWN_ELEMENTS:
            return None  # it stays inside the image, but drawing it would take minutes
        return ElementTree.tostring(root, encoding="unicode")
    except (ValueError, RecursionError):  # a million nested groups
        return None


def _clean_svg_element(element: ElementTree.Element) -> None:
    for child in list(element):
        namespace, _, name = child.tag.rpartition("}")
        style_loads = name == "style" and _loads_anything(child.text or "", style_sheet=True)
        if namespace != f"{{{_SVG_NS}" or name in _SVG_DROPPED or style_loads:
            element.remove(child)  # a foreign namespace too: XHTML, XInclude
        else:
            _clean_svg_element(child)
    image = element.tag.rpartition("}")[2] in ("image", "feImage")
    for attribute, value in list(element.attrib.items()):
        name = attribute.rpartition("}")[2].lower()
        if name.startswith("on") or name == "base":  # xml:base would move where "#..." points
            del element.attrib[attribute]
        elif name == "href" and not (value.strip().startswith("#") or (
                image and _INLINE_IMAGE.match(value) and _fits(value, None))):
            del element.attrib[attribute]
        elif _loads_anything(value):
            del element.attrib[attribute]


def _loads_anything(value: str, style_sheet: bool = False) -> bool:
    """A style or attribute that names a resource outside the image (``url(file:...)``, ``@import``)."""
    if style_sheet and "@import" in value.lower():
        return True
    return any(not target.startswith("#") for target in _URL.findall(value))


# Code is left as written only where every Markdown reader agrees it is code: a fence at
# the start of a line (no backtick in a backtick fence's info string) that is closed,
# and a code span on one line that does not start on an escaped backtick. Anything a
# reader might take for prose is escaped, even where another would show it as code (a
# stray "&lt;" in code is the price of no reader seeing raw HTML).
_OPEN_FENCE = re.compile(r"^(`{3,}(?!.*`)|~{3,})")
_CLOSE_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*$")
# What CommonMark reads as the start of raw HTML: a tag, a closing tag, a comment, a
# declaration or a processing instruction (autolinks too).
_RAW_HTML = re.compile(r"<(?=[A-Za-z/!?])")
# A link's destination, inline or in a reference definition, unless it is http(s), mailto
# or a fragment: written as a fragment, so it goes nowhere.
_UNSAFE_LINK = re.compile(r"(\]\(\s*<?\s*|^ {0,3}\[[^\]\n]+\]:[ \t]*<?)(?!https?://|mailto:|#)",
                          re.IGNORECASE | re.MULTILINE)


def neutral_markdown(text: str) -> str:
    """Markdown whose raw HTML shows as text (``&lt;script>``), whose images are links and
    whose links go to http(s), mailto or nowhere; code is left as written."""
    lines = text.splitlines(keepends=True)
    out, prose, i = [], [], 0
    while i < len(lines):
        opening = _OPEN_FENCE.match(lines[i])
        closing = None
        if opening:
            fence = opening.group(1)
            closing = next((j for j in range(i + 1, len(lines)) if (m := _CLOSE_FENCE.match(lines[j]))
                            and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)), None)
        if closing is None:  # not a fence, or one never closed (then not code to every reader)
            prose.append(lines[i])
            i += 1
            continue
        out.append(_neutral_prose("".join(prose)))
        prose = []
        out += lines[i:closing + 1]
        i = closing + 1
    out.append(_neutral_prose("".join(prose)))
    return "".join(out)


def _neutral_prose(text: str) -> str:
    return "".join(_neutral_line(line) for line in text.splitlines(keepends=True))


def _neutral_line(line: str) -> str:
    """One line of prose: its one-line code spans kept, the rest escaped."""
    pieces, i, start = [], 0, 0
    while i < len(line):
        if line[i] == "\\":
            i += 2  # an escaped character (a backtick too) starts nothing
            continue
        if line[i] != "`":
            i += 1
            continue
        run = len(line[i:]) - len(line[i:].lstrip("`"))
        end = _closing_run(line, i + run, run)
        if end is None:
            i += run
            continue
        pieces.append(_escape(line[start:i]))
        pieces.append(line[i:end])
        i = start = end
    pieces.append(_escape(line[start:]))
    return "".join(pieces)


def _closing_run(line: str, at: int, run: int) -> int | None:
    """Where the code span opened by ``run`` backticks ends (after its closing run)."""
    for match in re.finditer(r"`+", line[at:]):
        if len(match.group()) == run:
            return at + match.end()
    return None


# TeX commands a notebook's MathJax acts on (links, styles that load a url(), attributes,
# its extensions) written with a look-alike backslash (U+2216), so they show and do nothing.
# Entities go first: `\hr&#101;f` and `&bsol;href` are \href once the Markdown is rendered.
_MATH_ACTION = re.compile(r"\\(href|url|style|class|cssId|data|unicode|require|mmlToken|bbox)(?![a-zA-Z])")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")


def _escape(text: str) -> str:
    text = _ENTITY.sub("&amp;", text)  # shown as written, never turned into a character
    text = _MATH_ACTION.sub("\u2216\\1", text)
    text = _UNSAFE_LINK.sub(r"\1#blocked-link:", text)
    text = _escape_images(text)
    return _RAW_HTML.sub("&lt;", text)


def _escape_images(text: str) -> str:
    """``![`` becomes ``\\![`` (a link, loading nothing) unless its ``!`` is escaped already."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            out.append(text[i:i + 2])
            i += 2
        elif text.startswith("![", i):
            out.append("\\![")
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
