"""The note the model reads when its code imports a module that is not installed
(agent/missing_module.py); the real agent and kernel: tests/kernel/test_file_kinds.py."""

import pytest

from codeact_desktop.agent import missing_module as mm
from codeact_desktop.kernel.outputs import OutputItem
from codeact_desktop.resources import messages


def no_module(name):
    return OutputItem(kind="error", ename="ModuleNotFoundError", evalue=f"No module named '{name}'",
                      traceback=[f"ModuleNotFoundError: No module named '{name}'"])


def import_error(text):
    return OutputItem(kind="error", ename="ImportError", evalue=text, traceback=[f"ImportError: {text}"])


def test_pypdf2_points_to_pypdf_and_says_the_network_is_off():
    note = mm.module_note([no_module("PyPDF2")], "import PyPDF2", network=False)
    assert note.startswith("[`PyPDF2` is not installed here, and code in this conversation has no network")
    assert "`pypdf` (from pypdf import PdfReader, PdfWriter" in note


def test_an_agpl_library_gets_its_stand_ins():
    note = mm.module_note([no_module("fitz")], "import fitz", network=False)
    assert all(f"`{name}`" in note for name in ("pypdf", "pdfplumber", "pypdfium2"))


@pytest.mark.parametrize("missing, stand_in", [
    ("pydub", "soundfile"), ("pyarrow", "fastparquet"), ("chardet", "charset_normalizer"), ("xlrd", "pandas"),
    ("py7zr", "shutil"), ("pkuseg", "jieba"), ("segno", "qrcode"), ("ffmpeg", "imageio"), ("librosa", "soundfile"),
    ("sklearn.externals.joblib", "joblib"), ("html5lib", "bs4"), ("fpdf", "reportlab"), ("docx2txt", "docx"),
])
def test_curated_stand_ins(missing, stand_in):
    assert f"`{stand_in}`" in mm.module_note([no_module(missing)], f"import {missing}", network=False)


def test_every_curated_stand_in_is_installed():
    offered = {name for choices in mm.ALTERNATIVES.values() for name, _ in choices}
    assert [name for name in offered if not mm.installed(name)] == []


def test_a_misspelling_finds_the_installed_module():
    assert "`sklearn`" in mm.module_note([no_module("sklean")], "import sklean", network=False)


def test_with_the_network_on_pip_is_the_way():
    note = mm.module_note([no_module("PyPDF2")], "import PyPDF2", network=True)
    assert note.startswith("[`PyPDF2` is not installed here. The network is on") and "`pypdf`" in note


def test_nothing_close_says_so_unless_the_network_line_already_does():
    note = mm.module_note([no_module("zzqx_unheard_of")], "import zzqx_unheard_of", network=False)
    assert messages()["module_no_choice"] in note
    assert mm.module_note([no_module("zzqx_unheard_of")], "", network=False, network_failed=True) == ""


def test_a_missing_submodule_of_an_installed_package_is_left_to_the_traceback():
    assert mm.module_note([no_module("numpy.does_not_exist")], "", network=False) == ""


def test_pandas_optional_dependency_message():
    error = import_error("Missing optional dependency 'pyarrow'.  Use pip or conda to install pyarrow.")
    assert "`fastparquet`" in mm.module_note([error], "df.to_feather('x')", network=False)


def test_old_names_in_installed_packages():
    note = mm.module_note([import_error("cannot import name 'PdfFileReader' from 'pypdf' (/x/pypdf/__init__.py)")],
                          "from pypdf import PdfFileReader", network=False)
    assert "use PdfReader" in note
    note = mm.module_note([import_error("cannot import name 'VideoFileClip' from 'moviepy' (/x/__init__.py)")],
                          "from moviepy import VideoFileClip", network=False)
    assert "from moviepy.editor import VideoFileClip" in note and "version 1." in note


def test_pip_install_of_something_installed_under_another_name():
    code = "!pip install python-docx 'opencv-python>=4' --quiet\n!pip install -U PyPDF2"
    assert mm.pip_requests(code) == ["python-docx", "opencv-python", "PyPDF2"]
    note = mm.module_note([], code, network=False, network_failed=True)
    assert "[`python-docx` is already installed: `import docx`.]" in note
    assert "[`opencv-python` is already installed: `import cv2`.]" in note
    assert "`pypdf`" in note
    assert mm.module_note([], code, network=True) == ""  # with the network on pip did its own work


def test_an_ffmpeg_program_by_name():
    shell = OutputItem(kind="stdout", text="/bin/bash: line 1: ffmpeg: command not found\n")
    assert mm.module_note([shell], "!ffmpeg -i a.mp4 a.gif", network=False) == \
        messages()["program_missing"].format(program="ffmpeg")
    error = OutputItem(kind="error", ename="FileNotFoundError",
                       evalue="[Errno 2] No such file or directory: 'ffprobe'")
    assert "`ffprobe`" in mm.module_note([error], "", network=False)


def test_other_errors_say_nothing():
    error = OutputItem(kind="error", ename="ValueError", evalue="No module named 'x' is not a module error")
    assert mm.module_note([error], "", network=False) == ""
