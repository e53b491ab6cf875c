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
import pkgutil
import re
import sys
from functools import lru_cache
from pathlib import Path

from ..kernel.venv import base_layer_paths
from ..resources import messages

_NO_MODULE = re.compile(r"No module named '([A-Za-z0-9_.]+)'")
_OPTIONAL = re.compile(r"Missing optional dependency '([A-Za-z0-9_.\-]+)'")  # pandas' own ImportError
_NO_NAME = re.compile(r"cannot import name '(\w+)' from '([A-Za-z0-9_.]+)'")
_PIP = re.compile(r"(?:^|[\s;!%&|(])(?:python3? -m )?pip3?\s+install\s+([^\n;&|#)]+)", re.M)
_NO_PROGRAM = re.compile(r"(?:(?<![\w-])(ffmpeg|ffprobe): (?:command )?not found|"
                         r"No such file or directory: '(ffmpeg|ffprobe)')")

# Installed modules that do the job of a missing one, each with the call that does it. Keys
# are lowercased import names; only alternatives found installed are offered.
_PDF_TEXT = ("pypdf", "pypdf.PdfReader(path).pages[i].extract_text(); PdfWriter splits and merges")
_PDF_TABLES = ("pdfplumber", "pdfplumber.open(path).pages[i].extract_text() and .extract_tables()")
_PDF_IMAGES = ("pypdfium2", "pypdfium2.PdfDocument(path)[i].render(scale=2).to_pil() makes a page an image")
_PDF_WRITE = ("reportlab", "reportlab.pdfgen.canvas.Canvas(path) or reportlab.platypus.SimpleDocTemplate")
_AUDIO = ("soundfile", "data, rate = soundfile.read(path); soundfile.write('out.mp3', data[:10 * rate], rate) "
                       "(WAV, FLAC, OGG, MP3)")
_MOVIEPY = ("moviepy", "moviepy 1.x: from moviepy.editor import VideoFileClip, AudioFileClip; "
                       "clip.subclip(0, 10).write_audiofile(...) / .write_gif(...) / .write_videofile(...)")
_IMAGEIO = ("imageio", "imageio.v3.imread(path) reads a video's frames; imageio.mimsave('out.gif', frames) "
                       "writes GIF or MP4")
_FFMPEG = ("imageio_ffmpeg", "imageio_ffmpeg.get_ffmpeg_exe() is the path of an ffmpeg program, for subprocess")
_ARCHIVES = ("shutil", "shutil.unpack_archive(path, folder) opens zip and tar (gz, bz2, xz); zipfile, tarfile; "
                       "7z and RAR cannot be opened here")
_PLOTS = ("matplotlib", "matplotlib.pyplot, or seaborn, for the same chart as a PNG")
_ML = ("sklearn", "scikit-learn: sklearn.ensemble.HistGradientBoostingClassifier/Regressor, "
                  "sklearn.neural_network.MLPClassifier, sklearn.linear_model")
_TEXT = ("sklearn", "sklearn.feature_extraction.text.CountVectorizer/TfidfVectorizer; re and "
                    "collections.Counter for word counts; wordcloud.STOPWORDS for English stop words")

ALTERNATIVES: dict[str, tuple[tuple[str, str], ...]] = {
    # PDF
    **dict.fromkeys(("pypdf2", "pypdf3", "pypdf4"), (("pypdf", "from pypdf import PdfReader, PdfWriter: "
                                                     "PyPDF2's successor, the same API"),)),
    **dict.fromkeys(("fitz", "pymupdf", "pymupdf4llm"), (_PDF_TEXT, _PDF_TABLES, _PDF_IMAGES)),
    **dict.fromkeys(("tabula", "camelot"), (_PDF_TABLES,)),
    **dict.fromkeys(("pdf2image", "pdftotext", "textract"), (_PDF_IMAGES, _PDF_TEXT)),
    **dict.fromkeys(("fpdf", "fpdf2", "weasyprint", "pdfkit", "xhtml2pdf", "borb"), (_PDF_WRITE,)),
    # Office files
    **dict.fromkeys(("docx2txt", "mammoth"), (("docx", "docx.Document(path).paragraphs (python-docx)"),)),
    "xlwt": (("openpyxl", "write .xlsx instead: df.to_excel('out.xlsx') or openpyxl.Workbook()"),),
    **dict.fromkeys(("xlrd", "pyxlsb", "pyexcel", "pyexcel_xls", "pyexcel_ods", "pyexcel_ods3", "ezodf"),
                    (("pandas", "pandas.read_excel(path, sheet_name=None) reads .xlsx, .xls, .xlsb and .ods"),
                     ("python_calamine", "python_calamine.CalamineWorkbook.from_path(path)"
                                         ".get_sheet_by_index(0).to_python() gives the rows"))),
    # tables
    "pyarrow": (("fastparquet", "pandas.read_parquet(path) and df.to_parquet(path) work through fastparquet; "
                                "Feather and ORC cannot be read here"),),
    "polars": (("pandas", "the same with pandas: pd.read_csv / read_parquet / read_json"),),
    "duckdb": (("sqlite3", "SQL on a DataFrame: df.to_sql('t', con := sqlite3.connect(':memory:')); "
                           "pd.read_sql(query, con)"),),
    # HTML and XML
    **dict.fromkeys(("html5lib", "html2text", "markdownify", "requests_html"),
                    (("bs4", "BeautifulSoup(html, 'lxml').get_text('\\n'); soup.find_all(...)"),
                     ("lxml", "lxml.html / lxml.etree; pandas.read_html(path) for tables"))),
    # images
    **dict.fromkeys(("cv", "opencv", "opencv_python", "imutils"), (("cv2", "OpenCV (headless): import cv2"),)),
    "image": (("PIL", "from PIL import Image"),),
    **dict.fromkeys(("pyzbar", "zbar", "qreader"), (("cv2", "cv2.QRCodeDetector().detectAndDecode(img) reads "
                                                           "a QR code"),)),
    **dict.fromkeys(("segno", "pyqrcode"), (("qrcode", "qrcode.make(text).save('qr.png')"),)),
    "barcode": (("reportlab", "reportlab.graphics.barcode.createBarcodeDrawing('Code128', value=...)"),),
    # audio and video
    **dict.fromkeys(("pydub", "audioread"), (_AUDIO, _MOVIEPY)),
    "librosa": (_AUDIO, ("scipy", "scipy.signal (resample, spectrogram, filters) on soundfile's samples")),
    **dict.fromkeys(("ffmpeg", "av", "ffmpy", "skvideo", "vidgear"), (_IMAGEIO, _MOVIEPY, _FFMPEG)),
    # text
    **dict.fromkeys(("chardet", "cchardet", "charamel"),
                    (("charset_normalizer", "charset_normalizer.detect(raw_bytes): chardet's detect(), the same "
                                            "dict; or charset_normalizer.from_path(path).best().encoding"),)),
    **dict.fromkeys(("pkuseg", "spacy_pkuseg", "thulac", "lac", "hanlp", "snownlp"),
                    (("jieba", "jieba.lcut(text) segments Chinese words"),)),
    **dict.fromkeys(("nltk", "spacy", "textblob", "gensim"), (_TEXT, ("jieba", "jieba.lcut(text) for Chinese"))),
    "unidecode": (("unicodedata", "unicodedata.normalize('NFKD', s).encode('ascii', 'ignore').decode()"),),
    **dict.fromkeys(("magic", "filetype", "puremagic"), (("mimetypes", "mimetypes.guess_type(path)"),)),
    "toml": (("tomllib", "tomllib.load(open(path, 'rb'))"),),
    # archives
    **dict.fromkeys(("py7zr", "rarfile", "patoolib", "unrar", "libarchive"), (_ARCHIVES,)),
    # charts, models
    **dict.fromkeys(("plotly", "bokeh", "altair", "pygal"), (_PLOTS,)),
    "statsmodels": (("scipy", "scipy.stats (tests, regressions: linregress)"),
                    ("sklearn", "sklearn.linear_model")),
    **dict.fromkeys(("xgboost", "lightgbm", "catboost", "torch", "tensorflow", "keras", "jax"), (_ML,)),
    # a dotted name that moved
    "sklearn.externals.joblib": (("joblib", "import joblib"),),
}

# What `pip install NAME` means as an import: where the two differ.
_IMPORT_NAME = {
    "python-docx": "docx", "python-pptx": "pptx", "opencv-python": "cv2", "opencv-python-headless": "cv2",
    "opencv-contrib-python": "cv2", "opencv-contrib-python-headless": "cv2", "scikit-image": "skimage",
    "scikit-learn": "sklearn", "sklearn": "sklearn", "beautifulsoup4": "bs4", "pillow": "PIL", "pyyaml": "yaml",
    "odfpy": "odf", "pymupdf": "fitz", "pdfminer-six": "pdfminer", "python-dateutil": "dateutil",
    "imageio-ffmpeg": "imageio_ffmpeg", "charset-normalizer": "charset_normalizer", "ffmpeg-python": "ffmpeg",
    "fpdf2": "fpdf", "python-magic": "magic", "opencv": "cv2",
}

# `from MODULE import NAME` failing where MODULE is installed: the name it has here.
_RENAMED = {
    ("pypdf", "PdfFileReader"): "PdfReader", ("pypdf", "PdfFileWriter"): "PdfWriter",
    **dict.fromkeys((("pypdf", "PdfFileMerger"), ("pypdf", "PdfMerger")), "PdfWriter (its append method)"),
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
                                                    how=_MOVIEPY[1])
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
