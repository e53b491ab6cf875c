"""What the model reads when its code imports a module the kernel does not have.

The network is off by default, so ``pip install`` is no way out. Without a word the model
spends its next action retrying the import or pip; told that the module is missing for
good and which installed module does the same job (``PyPDF2`` → ``pypdf``, ``fitz`` →
``pdfplumber``), it switches at once. Pure: the caller passes the run's output items and
code, and adds the returned note to the observation (``loop.CodeActAgent._act``).

What "installed" means is what the kernel's base layer holds (``kernel.venv``): the same
folders the restricted kernel imports from, searched without importing anything.
"""

from __future__ import annotations

import difflib
import importlib.machinery
import importlib.metadata
import json
import pkgutil
import re
import sys
from functools import lru_cache
from pathlib import Path

from ..kernel.venv import base_layer_paths
from ..resources import messages, prompt_text

_NO_MODULE = re.compile(r"No module named '([A-Za-z0-9_.]+)'")
_OPTIONAL = re.compile(r"Missing optional dependency '([A-Za-z0-9_.\-]+)'")  # pandas' own ImportError
_NO_NAME = re.compile(r"cannot import name '(\w+)' from '([A-Za-z0-9_.]+)'")
_PIP = re.compile(r"(?:^|[\s;!%&|(])(?:python3? -m )?pip3?\s+install\s+([^\n;&|#)]+)", re.M)
_NO_PROGRAM = re.compile(r"(?:(?<![\w-])(ffmpeg|ffprobe): (?:command )?not found|"
                         r"No such file or directory: '(ffmpeg|ffprobe)')")


Choice = tuple[str, str]  # an installed module, and the call that does the job with it


def _load_alternatives() -> tuple[dict[str, tuple[Choice, ...]], dict[tuple[str, str], str], dict[str, Choice]]:
    """resources/prompts/module_alternatives.json: what the model is offered is data, beside
    the other texts it reads (its layout is described in the file)."""
    table = json.loads(prompt_text("module_alternatives.json"))
    shared = {name: tuple(choice) for name, choice in table["shared"].items()}
    alternatives: dict[str, tuple[Choice, ...]] = {}
    for rows in table["missing"].values():
        for row in rows:
            choices = tuple(shared[use] if isinstance(use, str) else tuple(use) for use in row["use"])
            alternatives.update(dict.fromkeys(row["missing"], choices))
    renamed = {(module, name): instead for module, names in table["renamed"].items() for name, instead in names.items()}
    return alternatives, renamed, shared


# ALTERNATIVES: installed modules that do the job of a missing one, each with the call that
# does it. Keys are lowercased import names; only alternatives found installed are offered.
# _RENAMED: `from MODULE import NAME` failing where MODULE is installed: the name it has here.
ALTERNATIVES, _RENAMED, _SHARED = _load_alternatives()

# What `pip install NAME` means as an import: where the two differ.
_IMPORT_NAME = {
    "python-docx": "docx", "python-pptx": "pptx", "opencv-python": "cv2", "opencv-python-headless": "cv2",
    "opencv-contrib-python": "cv2", "opencv-contrib-python-headless": "cv2", "scikit-image": "skimage",
    "scikit-learn": "sklearn", "sklearn": "sklearn", "beautifulsoup4": "bs4", "pillow": "PIL", "pyyaml": "yaml",
    "odfpy": "odf", "pymupdf": "fitz", "pdfminer-six": "pdfminer", "python-dateutil": "dateutil",
    "imageio-ffmpeg": "imageio_ffmpeg", "charset-normalizer": "charset_normalizer", "ffmpeg-python": "ffmpeg",
    "fpdf2": "fpdf", "python-magic": "magic", "opencv": "cv2",
}


def module_note(items, code: str, network: bool, network_failed: bool = False) -> str:
    """One note for the observation, or ''. ``items``: the run's output items; ``code``: what
    ran; ``network``: whether this conversation's code has the network; ``network_failed``:
    the run already hit the network being off (that line says what the user can do)."""
    texts = messages()
    errors = [i for i in items if getattr(i, "kind", "") == "error"]
    for item in errors:
        text = f"{item.ename}: {item.evalue}"
        found = _NO_MODULE.search(text) if item.ename == "ModuleNotFoundError" else None
        if found:
            return _missing(found.group(1), network, network_failed)
        optional = _OPTIONAL.search(text) if item.ename == "ImportError" else None
        if optional:  # pandas names the distribution (python-calamine), not the module
            return _missing(import_name(optional.group(1)), network, network_failed)
        renamed = _NO_NAME.search(text) if item.ename == "ImportError" else None
        if renamed:
            return _renamed(renamed.group(2), renamed.group(1))
    streams = "".join(i.text for i in items if getattr(i, "kind", "") in ("stdout", "stderr"))
    program = _NO_PROGRAM.search(streams + "\n" + "\n".join(i.evalue for i in errors))
    if program and installed("imageio_ffmpeg"):
        return texts["program_missing"].format(program=program.group(1) or program.group(2))
    if not network and network_failed:
        notes = [_already_installed(name) for name in pip_requests(code)]
        return "\n".join(n for n in notes if n)
    return ""


def pip_requests(code: str) -> list[str]:
    """The distributions ``pip install`` was asked for in ``code`` (options and versions dropped)."""
    names = []
    for match in _PIP.finditer(code):
        for token in match.group(1).split():
            if token.startswith("-") or "/" in token or token.startswith("{"):
                continue
            name = re.split(r"[\[<>=!~;]", token.strip("'\""), maxsplit=1)[0]
            if name and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-]*", name):
                names.append(name)
    return names


def import_name(distribution: str) -> str:
    normal = re.sub(r"[-_.]+", "-", distribution).lower()
    return _IMPORT_NAME.get(normal, re.sub(r"[-.]+", "_", distribution))


def _missing(module: str, network: bool, network_failed: bool) -> str:
    texts = messages()
    top = module.split(".")[0]
    if installed(top) and module.lower() not in ALTERNATIVES:
        return ""  # a submodule of an installed package: the traceback says what is wrong
    choices = alternatives(module)
    if not choices and network_failed:
        return ""  # the network line already says it cannot be fetched
    listed = texts["module_choices"].format(choices="; ".join(f"`{name}` ({how})" for name, how in choices)) \
        if choices else texts["module_no_choice"]
    key = "module_missing_network_on" if network else "module_missing"
    return texts[key].format(module=module, choices=listed)


def _renamed(module: str, name: str) -> str:
    texts = messages()
    top = module.split(".")[0]
    if (top, name) in _RENAMED:
        return texts["module_renamed"].format(module=module, name=name, instead=_RENAMED[(top, name)])
    if top == "moviepy" and installed("moviepy"):
        return texts["module_other_version"].format(module=module, name=name, version=_version("moviepy"),
                                                    how=_SHARED["moviepy"][1])
    return ""


def _already_installed(distribution: str) -> str:
    module = import_name(distribution)
    if installed(module):
        return messages()["package_installed"].format(package=distribution, module=module)
    return _missing(module, network=False, network_failed=False) if alternatives(module) else ""


def alternatives(module: str) -> list[tuple[str, str]]:
    """Installed modules that can stand in for ``module``: curated first, then names that
    are spelled alike (``sklean`` → ``sklearn``)."""
    curated = ALTERNATIVES.get(module.lower()) or ALTERNATIVES.get(module.split(".")[0].lower(), ())
    found = [(name, how) for name, how in curated if installed(name)]
    if found:
        return found
    names = {n.lower(): n for n in _importable()}
    close = difflib.get_close_matches(module.split(".")[0].lower(), list(names), n=3, cutoff=0.8)
    return [(names[c], f"import {names[c]}") for c in close]


def installed(module: str) -> bool:
    """Whether the kernel's base layer (or the standard library) has this top-level module."""
    top = module.split(".")[0]
    if top in sys.builtin_module_names:
        return True
    try:
        return importlib.machinery.PathFinder.find_spec(top, _search_path()) is not None
    except (ImportError, ValueError):
        return False


@lru_cache(maxsize=1)
def _search_path() -> list[str]:
    # The kernel runs the base interpreter isolated: its standard library, then the layers.
    base = Path(sys.base_prefix).resolve()
    stdlib = [p for p in sys.path if p and "site-packages" not in p and Path(p).resolve().is_relative_to(base)]
    return list(dict.fromkeys([*stdlib, *(str(p) for p in base_layer_paths())]))


@lru_cache(maxsize=1)
def _importable() -> tuple[str, ...]:
    return tuple(m.name for m in pkgutil.iter_modules(_search_path()) if not m.name.startswith("_"))


def _version(module: str) -> str:
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return "?"
