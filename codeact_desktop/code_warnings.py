"""What the person who approves code must be told about how it is drawn: characters shown
as escapes (``visible_text.for_code_view``), and names spelled with letters beyond ASCII,
which may pass for others: a Cyrillic ``р`` makes ``раth`` a name of its own that draws as
``path``.

Names are read as the kernel reads the code: IPython's transform first (a ``%magic`` or
``!command`` line is a call, and a ``'''`` in one once hid every later line from a plain
tokenizer), then Python's own parser, so a name inside an f-string or given to
``globals()`` as a string is seen too.
"""

from __future__ import annotations

import ast
import io
import tokenize
import unicodedata
import warnings

from .visible_text import for_code_view, visible_name

# Calls whose string argument names a variable or an attribute.
_NAMING_CALLS = {"getattr", "setattr", "delattr", "hasattr"}
_NAMESPACES = {"globals", "locals", "vars"}


def code_warnings(code: str, names: list[str] | None = None) -> list[str]:
    """``names``: ``lookalike_names(code)``, where the caller has it already."""
    warnings = ["This code holds characters that are invisible, reorder the text around them or break lines "
                "only on screen. They are shown as escapes such as \\u202e, so what you see is what runs."
                ] if for_code_view(code)[1] else []
    spelled = [f"{visible_name(name)} ({_spelled(name)})"
               for name in (lookalike_names(code) if names is None else names)]
    if spelled:
        warnings.append("Names here use letters from beyond ASCII that may pass for others, marked in the code: "
                        + "; ".join(spelled) + ".")
    return warnings


def lookalike_names(code: str) -> list[str]:
    """The names in ``code`` holding a letter beyond ASCII, as written; text in strings and
    comments is left alone, since it holds other scripts by right."""
    found: dict[str, None] = {}
    source = _as_python(code)
    for text in (code, source):  # as written (a name Python folds to ASCII draws otherwise) and as run
        try:
            for token in tokenize.generate_tokens(io.StringIO(text).readline):
                if token.type == tokenize.NAME and not token.string.isascii():
                    found.setdefault(token.string)
        except (tokenize.TokenError, SyntaxError):
            pass  # the names before that point
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return list(found)  # code that does not parse does not run either
    for node in ast.walk(tree):
        for name in _names_in(node):
            if not name.isascii():
                found.setdefault(name)
    return list(found)


def _as_python(code: str) -> str:
    """The Python that IPython runs for ``code``."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return code
    try:
        with warnings.catch_warnings():  # odd line ends (a lone \x0b) make it warn; the code is judged anyway
            warnings.simplefilter("ignore")
            return TransformerManager().transform_cell(code)
    except Exception:  # noqa: BLE001 - IPython's own failure: the code as it is
        return code


def _names_in(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword):
        return [node.arg] if node.arg else []
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return list(node.names)
    if isinstance(node, ast.alias):
        return [part for name in (node.name, node.asname) if name for part in name.split(".")]
    if isinstance(node, ast.ExceptHandler):
        return [node.name] if node.name else []
    if isinstance(node, ast.Subscript) and _is_namespace(node.value) and _is_identifier_string(node.slice):
        return [node.slice.value]  # globals()["раth"], vars(m)["раth"], obj.__dict__["раth"]; not df["Größe"]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _NAMING_CALLS:
        return [arg.value for arg in node.args[1:2] if _is_identifier_string(arg)]
    return []


def _is_namespace(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _NAMESPACES) \
        or (isinstance(node, ast.Attribute) and node.attr == "__dict__")


def _is_identifier_string(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier()


def _spelled(name: str) -> str:
    return ", ".join(f"{c} is U+{ord(c):04X} {unicodedata.name(c, 'unnamed')}"
                     for c in dict.fromkeys(name) if not c.isascii())
