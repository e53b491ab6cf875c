"""The texts the model reads are data in resources/prompts/, not literals in the code: what
reaches the model is the file's text, and no module spells a text of those files itself."""

import json
from pathlib import Path

from codeact_desktop.agent import context, missing_module
from codeact_desktop.kernel.observation import item_text
from codeact_desktop.kernel.outputs import OutputItem

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "resources" / "prompts"
MESSAGES = json.loads((PROMPTS / "messages.json").read_text(encoding="utf-8"))
ALTERNATIVES = json.loads((PROMPTS / "module_alternatives.json").read_text(encoding="utf-8"))


def test_a_shortened_observation_carries_the_files_marker():
    content = "a" * 200 + "b" * 200
    half = context.SHORT_OBSERVATION_CHARS // 2
    assert MESSAGES["observation_shortened"] == "\n[... shortened to fit the context ...]\n"
    assert context._shorten(content) == content[:half] + MESSAGES["observation_shortened"] + content[-half:]


def test_an_image_that_is_not_a_png_gets_the_files_placeholder():
    jpeg = OutputItem(kind="image", data=b"\xff\xd8\xff\xe0" + b"\0" * 16)
    assert MESSAGES["image_placeholder_kind"] == "<image: {kind}, shown to the user>"
    assert item_text(jpeg) == MESSAGES["image_placeholder_kind"].format(kind="JPEG")


def test_the_stand_ins_for_a_missing_module_are_the_files():
    shared = ALTERNATIVES["shared"]
    assert missing_module.ALTERNATIVES["fitz"] == tuple(tuple(shared[n]) for n in ("pdf_text", "pdf_tables",
                                                                                    "pdf_images"))
    note = missing_module.module_note(
        [OutputItem(kind="error", ename="ModuleNotFoundError", evalue="No module named 'fitz'")],
        "import fitz", network=False)
    assert f"`pypdf` ({shared['pdf_text'][1]})" in note
    assert missing_module._RENAMED[("pypdf", "PdfMerger")] == ALTERNATIVES["renamed"]["pypdf"]["PdfMerger"]


def _texts(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def test_no_module_spells_a_text_of_the_resource_files():
    texts = {t for t in [*_texts(MESSAGES), *_texts(ALTERNATIVES)] if len(t) > 20}
    texts |= {t.strip() for t in texts}  # a marker's words without the line breaks around it
    sources = {path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
               for path in (ROOT / "codeact_desktop").rglob("*.py")}
    spelled = [(name, text) for name, source in sources.items() for text in texts if text in source]
    assert spelled == []
