"""Text that came from the kernel, the model or a dropped file's name, made safe to show.

A terminal obeys escape sequences (retitle the window, write the clipboard with OSC 52,
clear the screen), a carriage return overwrites what was printed before it, and bidi
controls reorder what a reader sees (Trojan Source). Such characters are shown as
visible escapes instead: ``\\x1b``, ``\\r``, ``\\u202e``.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls (0x9b is CSI to some terminals),
# bidi embeddings, overrides and isolates, and the zero-width marks that steer them.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Unicode's default-ignorable code points (DerivedCoreProperties.txt): drawn as nothing.
# Variation selectors and the combining grapheme joiner are legal inside a Python name, so
# `path\ufe00 = "./build"` drew exactly as `path = "./build"` yet left `path` as it was.
# Also the Hangul fillers, which draw as blank space and are legal in names too.
_IGNORABLE = ("\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
              "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
              "\U000e0000-\U000e0fff")
# Names: also what draws as a line break (U+2028): a name with U+2028s drew a second,
# made-up entry in the Files panel.
NOT_IN_NAMES = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_IGNORABLE}\ud800-\udfff]")
# For code shown for approval: C0 but tab and newline, C1, what Qt draws as a line break
# but Python does not read as one (U+2028, U+2029, form feed, vertical tab), and the
# default-ignorable code points a token can hide behind.
_CODE_ODD = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_IGNORABLE}\ud800-\udfff]")


# For text shown in the window (printed output, errors, replies): what makes it lie there.
# Bidi overrides and isolates turn "invoice_\u202efdp.exe" into "invoice_exe.pdf"; controls
# draw as boxes. Tab, newline and CR stay (a stream view breaks the line at a CR), and so do
# the joiners, variation selectors and direction marks that emoji and right-to-left text need.
_SHOWN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    char = match.group()
    if char == "\r":
        return "\\r"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def well_formed(text: str) -> str:
    """The text with any lone surrogate (from a kernel's or a server's JSON, ``"\\ud800"``)
    replaced, so it can be stored, encoded and printed."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def for_terminal(text: str) -> str:
    """Printable as it is: only tab, newline and visible characters reach the terminal."""
    return _CONTROLS.sub(_escape, well_formed(text).replace("\r\n", "\n"))


def visible_name(name: str) -> str:
    """A file name on one line, every odd character visible (newlines included)."""
    return NOT_IN_NAMES.sub(lambda m: "\\n" if m.group() == "\n" else "\\t" if m.group() == "\t" else _escape(m),
                              name)


def for_code_view(code: str) -> tuple[str, bool]:
    """Code as it must be shown to a person who decides whether it runs: every character
    that is invisible, reorders what is around it (Trojan Source) or breaks a line only on
    screen becomes a visible escape, so no line is hidden or drawn out of order. Also
    whether there was any: the card then says so. Inside a string literal the escape
    means the same character, so copied code still runs the same."""
    text = code.replace("\r\n", "\n")
    shown = _CODE_ODD.sub(_escape, text)
    return shown, shown != text


def for_display(text: str) -> str:
    """Output or a reply as the window draws it: nothing reorders what a reader sees, no
    control draws as a box (``\\u202e``, ``\\x1b`` instead)."""
    return _SHOWN.sub(_escape, text)
