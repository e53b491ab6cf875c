"""A ``text/latex`` output (sympy's results) drawn as a PNG with matplotlib's mathtext, which
needs no TeX install. matplotlib is imported on first use only, and only mathtext and
Agg: pyplot would pick a GUI backend and slow the app's start.

mathtext is slow on long input (300 fractions take seconds; 50 nested braces exhaust its
parser's recursion) and draws whatever size the input asks for: callers in the window run
this off the UI thread, and anything over the caps below (input, or the drawing's size) is
not drawn (the text/plain twin shows instead).
"""

from __future__ import annotations

import io
import re
import threading

MAX_LATEX_CHARS = 2000
MAX_BRACE_DEPTH = 12
# The drawing's size, from mathtext's layout before any pixel is drawn: "\hspace{4000}" in
# 1.8 KB of input asked for a 59539 x 6167 image (1.5 GB, 25 s); a larger one, more than RAM.
MAX_PIXELS = 16_000_000  # 64 MB of RGBA
MAX_SIDE = 16_384
# The one formula of sympy's output: "$\displaystyle ...$" (or $$...$$, \[...\])
_FORMULA = re.compile(r"\s*(?:\$\$(?P<a>.+)\$\$|\$(?P<b>.+)\$|\\\[(?P<c>.+)\\\])\s*\Z", re.DOTALL)
_lock = threading.Lock()  # mathtext keeps parser state: one drawing at a time


def math_source(latex: str) -> str | None:
    """The formula mathtext can try, as ``$...$``; None when it is not one formula or over the caps."""
    if len(latex) > MAX_LATEX_CHARS:
        return None
    match = _FORMULA.match(latex)
    if match is None:
        return None
    body = next(group for group in match.groups() if group is not None)
    display = re.search(r"\\displaystyle\b", body) is not None or match.group("b") is None
    body = re.sub(r"\\(displaystyle|textstyle)\b", "", body).strip()
    if display:  # mathtext has no \displaystyle; its display-size fraction is \dfrac
        body = re.sub(r"\\frac(?![a-zA-Z])", r"\\dfrac", body)
    depth = deepest = 0
    for char in body:
        depth += {"{": 1, "}": -1}.get(char, 0)
        deepest = max(deepest, depth)
    if not body or "$" in body or deepest > MAX_BRACE_DEPTH:
        return None
    return f"${body}$"


def latex_png(latex: str, dpi: int = 120, color: str = "black") -> bytes | None:
    """The formula as PNG bytes on a transparent ground, or None when mathtext cannot draw it (a matrix, a macro it
    lacks, input over the caps)."""
    source = math_source(latex)
    if source is None:
        return None
    import matplotlib
    from matplotlib import mathtext

    out = io.BytesIO()
    try:
        # Transparent: the formula sits on the chat's own background, light or dark.
        with _lock, matplotlib.rc_context({"savefig.transparent": True}):
            width, height, *_ = mathtext.MathTextParser("path").parse(source, dpi=72)  # points: layout only
            width, height = width * dpi / 72, height * dpi / 72
            if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
                return None
            mathtext.math_to_image(source, out, dpi=dpi, format="png", color=color)
    except Exception:  # noqa: BLE001 - whatever mathtext raises on input it cannot draw: not drawn
        return None
    return out.getvalue() or None
