"""A conversation as a Jupyter notebook, Markdown or a self-contained HTML page.

Notebook: markdown cells for the talk, code cells with their outputs (images included),
written by nbformat. HTML: the Markdown rendered by Python-Markdown with images inlined,
so one file can be mailed. What the model and the code wrote is untrusted: raw HTML in
the talk is escaped, HTML outputs and the whole page are sanitized
(``untrusted_markup``), and the page forbids itself every script and remote load.
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

from .agent.timeline import Entry, StoredOutput, timeline
from .kernel.observation import strip_ansi
from .store.history import Conversation
from .untrusted_markup import CONTENT_SECURITY_POLICY, clean_html, neutral_markdown
from .visible_text import visible_name

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
            ran = entry.status not in ("skipped", "cut_off", "over_limit", "proposed")
            count += ran
            cell = v4.new_code_cell(entry.text, execution_count=count if ran else None)
            cell.outputs = [_nb_output(o, count) for o in entry.outputs]
            cell.metadata["codeact"] = {"status": entry.status}
            cells.append(cell)
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def _nb_output(out: StoredOutput, count: int):
    if out.kind in ("stdout", "stderr"):
        return v4.new_output("stream", name=out.kind, text=out.text)
    if out.kind == "image" and out.image:
        return v4.new_output("display_data", data={
            "image/png": base64.b64encode(out.image).decode("ascii"), "text/plain": out.text or "<image>"})
    if out.kind == "error":
        return v4.new_output("error", ename=out.meta.get("ename", "Error"), evalue=out.meta.get("evalue", ""),
                             traceback=out.meta.get("traceback") or out.text.splitlines())
    data = {"text/plain": out.meta.get("plain") or out.text}
    if out.kind == "html":
        data["text/html"] = clean_html(out.text)
    return v4.new_output("execute_result", data=data, execution_count=count)


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
            parts.append(_fenced(entry.text, "python"))
            if entry.status not in ("ok", ""):
                parts.append(f"*({entry.status.replace('_', ' ')})*")
            for out in entry.outputs:
                if out.kind == "image" and out.image:
                    name = f"image-{len(images) + 1}.png"
                    images[name] = out.image
                    src = ("data:image/png;base64," + base64.b64encode(out.image).decode("ascii")
                           if inline_images else image_prefix + name)
                    parts.append(f"![output]({src})")
                elif out.kind == "html" and html_as_text:
                    parts.append(_fenced(out.meta.get("plain") or strip_ansi(out.text).strip(), "text"))
                elif out.kind == "html":
                    parts.append(clean_html(out.text).strip())
                elif out.text.strip() and text_as_pre:
                    parts.append(f"<pre>{html.escape(strip_ansi(out.text).rstrip())}</pre>")
                elif out.text.strip():
                    # "text": tracebacks and printed text are not highlighted as if they were code
                    parts.append(_fenced(strip_ansi(out.text).rstrip(), "text"))
    return "\n\n".join(parts) + "\n", images


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
    return PAGE.format(title=html.escape(title), body=clean_html(body), csp=CONTENT_SECURITY_POLICY)


def _files_md(entry: Entry) -> str:
    if not entry.files:
        return ""
    return "\n\n" + "\n".join(f"- attached: {_fenced_inline(visible_name(f['name']))}" for f in entry.files)


def _fenced_inline(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    return f"{ticks} {text} {ticks}"
