"""The two lines of a traceback a user needs first: what went wrong, and which line of
their own cell it happened on.

IPython's tracebacks list every frame, library frames included, so the user's line and
the exception can sit far apart in a long text. This reads the text IPython prints
(coloured or plain) and picks them out; it never fails, it only finds less.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .observation import strip_ansi

# A frame of the user's cell: "Cell In[3], line 2, in f(d)" (IPython >= 8.3) or
# "Input In [3], in <cell line: 2>()" (IPython 8.0-8.2); a syntax error's frame has the
# same header without "in ...".
_CELL_FRAME = re.compile(
    r"^\s*(?:Cell In\[\d+\], line (?P<line>\d+)|Input In \[\d+\](?:, in <cell line: (?P<cell_line>\d+)>)?)"
)
# Any other frame: IPython's "File /path.py:12, in f()" or Python's 'File "x.py", line 12'.
_OTHER_FRAME = re.compile(r'^\s*File (?:".*", line \d+|\S.*:\d+(?:,? in .*)?$)')
# A source line of a verbose frame, "      1 import x" or the failing one, "----> 2 f()".
_NUMBERED = re.compile(r"^\s*-*>?\s*\d+(?: |$)")
_ARROW = re.compile(r"^\s*-*>\s*(?P<line>\d+) ?(?P<code>.*)$")
# Where one exception of a chain ends and the next one's traceback starts.
_CHAIN = re.compile(r"Traceback \(most recent call last\)|^During handling of the above exception"
                    r"|^The above exception was the direct cause")

_NAME_ONLY = re.compile(r"[\w.]+:")


@dataclass(frozen=True)
class ErrorSummary:
    """An error in a few words for the user and the model: the exception and the failing line."""

    exception: str  # "KeyError: 'month'": every line of a multi-line message
    line_number: int | None  # the failing line of the user's cell, None when not found
    code_line: str  # that line's code, stripped; "" when not found


def summarize_error(traceback_text: str | Sequence[str]) -> ErrorSummary:
    """The exception and the user's failing line, from an IPython traceback (the joined
    text, or the kernel's list of pieces)."""
    if not isinstance(traceback_text, str):
        traceback_text = "\n".join(traceback_text)
    lines = strip_ansi(traceback_text).splitlines()
    headers, start = [], 0
    for i, line in enumerate(lines):
        if not (_CELL_FRAME.match(line) or _OTHER_FRAME.match(line)):
            continue
        if headers and i > start and not any(_CHAIN.search(seen) for seen in lines[start:i]):
            break  # past the last frame: a line of the message (a note) that only looks like one
        headers.append(i)
        start = _exception_start(lines, i)
    # With no frames at all (a UsageError, a bare "Name: message") all of it is the message.
    exception = "\n".join(lines[start:]).strip()
    if _NAME_ONLY.fullmatch(exception):  # "KeyboardInterrupt: " has no message
        exception = exception[:-1]
    line_number, code_line = _user_line(lines, headers, start) if headers else (None, "")
    return ErrorSummary(exception, line_number, code_line)


def _exception_start(lines: list[str], header: int) -> int:
    """The first line after the last frame's source lines. Source lines are numbered or
    indented (a syntax error's line and its caret); the exception starts at column 0."""
    i = header + 1
    while i < len(lines) and (not lines[i].strip() or lines[i][0].isspace() or _NUMBERED.match(lines[i])):
        i += 1
    return i


def _user_line(lines: list[str], headers: list[int], end: int) -> tuple[int | None, str]:
    """The innermost frame of the user's cell in the last exception of a chain: for an
    error deep in a library, the cell's line that called into it."""
    section = max((i for i in range(end) if _CHAIN.search(lines[i])), default=0)
    cells = [h for h in headers if _CELL_FRAME.match(lines[h])]
    cells = [h for h in cells if h > section] or cells
    if not cells:
        return None, ""
    header = cells[-1]
    found = _CELL_FRAME.match(lines[header])
    number = found["line"] or found["cell_line"]
    body = lines[header + 1:next((h for h in headers if h > header), end)]
    for line in body:
        arrow = _ARROW.match(line)
        if arrow:
            return int(arrow["line"]), arrow["code"].strip()
    # A syntax error: the offending line follows the header unnumbered, then its caret.
    code = next((line.strip() for line in body if line.strip()), "")
    if not code or set(code) <= set("^~ "):
        code = ""
    return (int(number) if number else None), code
