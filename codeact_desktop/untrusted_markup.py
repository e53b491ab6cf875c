"""HTML and Markdown that came from the kernel or the model, made safe to show or export.

An output's ``text/html`` and a reply's Markdown are written by code and instructions the
app does not trust: a ``<script>``, an ``onerror=``, a ``javascript:`` link or a remote
``<img>`` would run or call out when the window or an exported page shows them. HTML goes
through nh3 (the Rust ammonia sanitizer) with an allow-list fit for tables and
formatted text; images only as inline ``data:image/...``, links only to http(s) and
mailto. Markdown keeps its formatting, but raw HTML in it is escaped so it shows as text
(``&lt;``, which CommonMark and Python-Markdown both read as a plain "<"), images become
links (nothing loads until a person clicks), and links use no other scheme.
"""

from __future__ import annotations

import re

import nh3

_TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details",
         "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "mark",
         "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup", "table",
         "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var"}
_ATTRIBUTES = {"*": {"title", "style", "align"}, "a": {"href"}, "img": {"src", "alt", "width", "height"},
               "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan", "scope"}, "ol": {"start"},
               "table": {"border"}}
# Colours and layout, nothing that can load a resource (no url(), no backgrounds with images)
_STYLE = {"color", "background-color", "font-weight", "font-style", "font-family", "text-align",
          "text-decoration", "vertical-align", "white-space", "border", "border-collapse", "border-bottom",
          "border-top", "padding", "margin", "min-width", "max-width", "width", "line-height", "margin-top",
          "margin-bottom", "margin-left", "margin-right", "text-indent", "font-size", "list-style-type",
          "-qt-block-indent", "-qt-list-indent", "-qt-paragraph-type", "-qt-user-state"}  # Qt's own, for its layout
_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*\Z")
_LINK = re.compile(r"(https?:|mailto:|#)", re.IGNORECASE)

# For an exported page: nothing loads from anywhere, nothing runs, even if the sanitizer missed it.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'"


def _keep(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        return value if _IMAGE.match(value) else None
    if tag == "a" and attribute == "href":
        return value if _LINK.match(value.strip()) else None
    return value


def clean_html(html: str) -> str:
    """The HTML with only formatting left: no scripts, handlers, frames, forms or remote loads."""
    return nh3.clean(html, tags=_TAGS, clean_content_tags={"script", "style", "template", "noscript"},
                     attributes=_ATTRIBUTES, attribute_filter=_keep, url_schemes={"http", "https", "mailto", "data"},
                     filter_style_properties=_STYLE, link_rel="noopener noreferrer")


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:.|\n)*?(?<!`)\1(?!`)")
# What CommonMark reads as the start of raw HTML: a tag, a closing tag, a comment, a
# declaration or a processing instruction.
_RAW_HTML = re.compile(r"<(?=[A-Za-z/!?])")
_IMAGE_MARK = re.compile(r"(?<!\\)!\[")
_UNSAFE_LINK = re.compile(r"\]\(\s*<?\s*(?!https?:|mailto:|#)[A-Za-z][A-Za-z0-9+.-]*:", re.IGNORECASE)


def neutral_markdown(text: str) -> str:
    """Markdown whose raw HTML shows as text (``&lt;script>``), whose images are links and
    whose links use no scheme but http(s) and mailto; code spans and fenced code are left
    as written."""
    out, prose, fence = [], [], None
    for line in text.splitlines(keepends=True):
        match = _FENCE.match(line)
        if fence is None and match:
            out.append(_neutral_prose("".join(prose)))
            prose = []
            fence = match.group(1)
            out.append(line)
        elif fence is not None:
            out.append(line)
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                    and not line.strip()[len(match.group(1)):].strip():
                fence = None
        else:
            prose.append(line)
    out.append(_neutral_prose("".join(prose)))
    return "".join(out)


def _neutral_prose(text: str) -> str:
    pieces, last = [], 0
    for span in _CODE_SPAN.finditer(text):
        pieces.append(_escape_html(text[last:span.start()]))
        pieces.append(span.group())
        last = span.end()
    pieces.append(_escape_html(text[last:]))
    return "".join(pieces)


def _escape_html(text: str) -> str:
    text = _UNSAFE_LINK.sub("](#blocked-link:", text)
    text = _IMAGE_MARK.sub(r"\\![", text)
    return _RAW_HTML.sub("&lt;", text)
