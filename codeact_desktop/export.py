"""A conversation as a Jupyter notebook, Markdown or a self-contained HTML page.

Notebook: markdown cells for the talk, code cells with their outputs as the history keeps
them, of the types the window shows (no JavaScript or extension types a viewer would
run), written by nbformat. Markdown and HTML: each output by
the window's display priority (``DISPLAY_PRIORITY``); the HTML page is rendered by
Python-Markdown with images inlined (LaTeX drawn as one), so one file can be mailed.
What the model and the code wrote is untrusted: raw HTML in the talk is escaped, HTML
outputs and the whole page are sanitized (``untrusted_markup``), and the page forbids
itself every script and remote load.
"""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path

import markdown
import nbformat
from nbformat import v4

from .action_status import ActionStatus
from .agent.timeline import Entry, StoredOutput, timeline
from .kernel.latex_image import latex_png, math_source
from .kernel.observation import strip_ansi
from .kernel.outputs import DISPLAY_PRIORITY, OutputItem, image_type, item_from_stored
from .store.history import Conversation
from .untrusted_markup import CONTENT_SECURITY_POLICY, clean_html, neutral_markdown
from .visible_text import for_code_view, for_terminal, visible_name

FORMATS = {"ipynb": "Jupyter notebook", "md": "Markdown", "html": "HTML page"}


def export_conversation(conversation: Conversation, target: Path) -> Path:
    """Writes the conversation to ``target``; the suffix picks the format."""
    target = Path(target)
    fmt = target.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"Cannot export as .{fmt}: choose .ipynb, .md or .html.")
    title = conversation.title()
    entries = timeline(conversation)
    if fmt == "ipynb":
        nb = to_notebook(title, entries)
        nbformat.validate(nb)
        _write_new(target, nbformat.writes(nb).encode("utf-8"))
    elif fmt == "md":
        images_dir = target.with_name(target.stem + "_files")
        text, images = to_markdown(title, entries, image_prefix=images_dir.name + "/", html_as_text=True)
        if images:
            if images_dir.is_symlink():
                raise OSError(f"{images_dir} is a link; choose another name for the export.")
            images_dir.mkdir(exist_ok=True)
            for name, data in images.items():
                _write_new(images_dir / name, data)
        _write_new(target, text.encode("utf-8"))
    else:
        _write_new(target, to_html(title, entries).encode("utf-8"))
    return target


def _write_new(path: Path, data: bytes) -> None:
    """Writes the file itself, never through a link in its place (the user may export into
    the conversation's folder, where the code could have planted one under that name)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


# -- notebook -----------------------------------------------------------------------

def to_notebook(title: str, entries: list[Entry]) -> nbformat.NotebookNode:
    cells, count = [v4.new_markdown_cell(f"# {neutral_markdown(title)}")], 0
    for entry in entries:
        if entry.type == "user":
            cells.append(v4.new_markdown_cell(f"**You:** {neutral_markdown(entry.text)}" + _files_md(entry)))
        elif entry.type == "assistant":
            cells.append(v4.new_markdown_cell(neutral_markdown(entry.text)))
        elif entry.type == "notice":
            cells.append(v4.new_markdown_cell(f"> *{neutral_markdown(entry.text)}*"))
        elif entry.type == "action":
            status = ActionStatus.of(entry.status)
            ran = status is not None and status.ran
            count += ran
            cell = v4.new_code_cell(entry.text, execution_count=count if ran else None)
            cell.outputs = [output for output in (_nb_output(o, count) for o in entry.outputs) if output]
            cell.metadata["codeact"] = {"status": entry.status}
            cells.append(cell)
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def _item(out: StoredOutput) -> OutputItem | None:
    return item_from_stored(out.kind, out.text, out.image, out.meta)


def _nb_output(out: StoredOutput, count: int):
    """The output as it was stored, renumbered; its HTML sanitized (a notebook viewer may trust it)."""
    item = _item(out)
    if item is None:
        return None
    if not item.output_type and item.kind in ("html", "text"):
        item.output_type = "execute_result"  # as older versions exported a history's rows
    output = item.to_output()
    if output.output_type == "execute_result":
        output.execution_count = count
    if "data" in output:
        output.data = _inert_bundle(output.data)
        if not output.data:
            return None
    return output


def _inert_bundle(data: dict) -> dict:
    """The types the window shows, each as inert as there. Viewers run the rest: VS Code and
    nbconvert's HTML an ``application/javascript``, extensions their ``application/vnd.*``
    (widgets, Bokeh); a ``text/markdown`` is rendered with its raw HTML; MathJax follows
    ``\\href`` (``javascript:`` too)."""
    kept = {mime: value for mime, value in data.items() if mime in DISPLAY_PRIORITY}
    if "text/html" in kept:
        kept["text/html"] = clean_html(kept["text/html"])
    if "text/markdown" in kept:
        kept["text/markdown"] = neutral_markdown(kept["text/markdown"])
    if "text/latex" in kept and _LATEX_LINK.search(kept["text/latex"]):
        del kept["text/latex"]
    return kept


_LATEX_LINK = re.compile(r"\\(href|url)(?![a-zA-Z])")


# -- markdown and html ----------------------------------------------------------------

def to_markdown(title: str, entries: list[Entry], image_prefix: str = "", inline_images: bool = False,
                html_as_text: bool = False, text_as_pre: bool = False) -> tuple[str, dict[str, bytes]]:
    """``html_as_text``: an HTML output (a table) as its plain-text twin in a fence, for a
    Markdown file, where a reader would take Markdown inside the HTML for its own.
    ``text_as_pre``: printed text and tracebacks as escaped ``<pre>`` blocks, for the HTML
    page: they reach it verbatim, never through the renderer's highlighter."""
    parts, images = [f"# {neutral_markdown(title)}"], {}
    for entry in entries:
        if entry.type == "user":
            parts.append(f"**You:** {neutral_markdown(entry.text)}{_files_md(entry)}")
        elif entry.type == "assistant":
            parts.append(neutral_markdown(entry.text))
        elif entry.type == "notice":
            parts.append(f"> *{neutral_markdown(entry.text)}*")
        elif entry.type == "action":
            parts.append(_fenced(for_code_view(entry.text)[0], "python"))  # drawn as the window draws it
            if entry.status not in (ActionStatus.OK, ""):
                parts.append(f"*({entry.status.replace('_', ' ')})*")
            for out in entry.outputs:
                item = _item(out)
                if item is not None:
                    parts += _markdown_output(item, images, image_prefix, inline_images, html_as_text, text_as_pre)
    # Read with `cat` too: no escape sequence (OSC 52 writes the clipboard), carriage return
    # or bidi control from a reply, a stream or a table's text reaches the terminal.
    return for_terminal("\n\n".join(parts)) + "\n", images


_IMAGE_MIME = {"png": "image/png", "jpeg": "image/jpeg", "svg": "image/svg+xml"}


def _markdown_output(item: OutputItem, images: dict[str, bytes], image_prefix: str, inline_images: bool,
                     html_as_text: bool, text_as_pre: bool) -> list[str]:
    """One output as Markdown, by what the window shows of it."""
    if item.kind == "image" and item.data:
        return [_image_md(item.data, images, image_prefix, inline_images)]
    if item.kind == "html" and html_as_text:
        return [_fenced(item.plain or strip_ansi(item.text).strip(), "text")]
    if item.kind == "html":
        return [clean_html(item.text).strip()]
    if item.mime == "text/latex":
        drawn = latex_png(item.text, dpi=150) if inline_images else None
        if drawn is not None:
            return [_image_md(drawn, images, image_prefix, inline_images, alt="formula")]
        source = math_source(item.text)
        if source is not None and not text_as_pre:
            return [_fenced(source.strip("$"), "math")]  # GitHub and others draw a math fence
    if item.mime == "text/markdown":
        return [neutral_markdown(item.text)]
    text = item.plain if item.mime == "text/latex" and item.plain else item.text
    if item.kind == "error":
        text = "\n".join(item.traceback) or item.text
    if text.strip() and text_as_pre:
        return [f"<pre>{html.escape(strip_ansi(text).rstrip())}</pre>"]
    if text.strip():
        # "text": tracebacks and printed text are not highlighted as if they were code
        return [_fenced(strip_ansi(text).rstrip(), "text")]
    return []


def _image_md(data: bytes, images: dict[str, bytes], image_prefix: str, inline: bool, alt: str = "output") -> str:
    kind = image_type(data)
    name = f"image-{len(images) + 1}.{kind}"
    images[name] = data
    src = (f"data:{_IMAGE_MIME[kind]};base64," + base64.b64encode(data).decode("ascii")
           if inline else image_prefix + name)
    return f"![{alt}]({src})"


def _fenced(text: str, language: str) -> str:
    """A fenced block that the text cannot close early: its fence is longer than any run
    of backticks inside."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 860px; margin: 2em auto; padding: 0 1em; line-height: 1.5; }}
pre {{ background: #f6f8fa; padding: .8em; overflow-x: auto; border-radius: 6px; }}
img {{ max-width: 100%; }}
table {{ border-collapse: collapse; }} th, td {{ padding: 3px 10px; border-bottom: 1px solid #ddd; }}
blockquote {{ color: #666; margin-left: 0; padding-left: 1em; border-left: 3px solid #ddd; }}
</style></head><body>
{body}
</body></html>
"""


def to_html(title: str, entries: list[Entry]) -> str:
    text, _ = to_markdown(title, entries, inline_images=True, text_as_pre=True)
    # guess_lang off: a fence without a language (the model quoting a traceback) stays
    # plain; a guessed lexer boxes every quote it cannot parse in red.
    body = markdown.markdown(text, extensions=["fenced_code", "tables", "codehilite"],
                             extension_configs={"codehilite": {"noclasses": True, "guess_lang": False}})
    # SVG images stay: a browser draws an <img>'s SVG inert (no script, no load), and the
    # page's own policy forbids both again.
    return PAGE.format(title=html.escape(title), body=clean_html(body, svg_images=True), csp=CONTENT_SECURITY_POLICY)


def _files_md(entry: Entry) -> str:
    if not entry.files:
        return ""
    return "\n\n" + "\n".join(f"- attached: {_fenced_inline(visible_name(f['name']))}" for f in entry.files)


def _fenced_inline(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    return f"{ticks} {text} {ticks}"
