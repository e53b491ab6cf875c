"""Every kind of file a person drops, read and written offline by the kernel's own stack.

Each test makes a real file of its kind (or takes a small committed one), attaches it as
the window does, and lets a scripted model's code read it and write the usual output with
the library models reach for (docs/kernel-stack.md); the produced file is then opened here,
in the test, and its content checked. One restricted kernel, with the network off as by
default, serves the whole module.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from codeact_desktop.agent.loop import AgentSettings, CodeActAgent
from codeact_desktop.engine import kernel_env
from codeact_desktop.kernel.conversation_kernel import ConversationKernel
from codeact_desktop.llm.scripted import ScriptedBackend
from codeact_desktop.resources import messages
from codeact_desktop.store.history import HistoryStore

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).with_name("data")

# The kernel's stack, as docs/kernel-stack.md lists it: distribution -> what models import.
CORE = {
    "numpy": ["numpy"], "pandas": ["pandas"], "scipy": ["scipy", "scipy.signal"], "sympy": ["sympy"],
    "matplotlib": ["matplotlib.pyplot"], "seaborn": ["seaborn"], "scikit-learn": ["sklearn"],
    "pillow": ["PIL.Image"], "openpyxl": ["openpyxl"],
}
FILE_STACK = {
    "pypdf": ["pypdf"], "pdfplumber": ["pdfplumber"], "pdfminer.six": ["pdfminer.high_level"],
    "pypdfium2": ["pypdfium2"], "reportlab": ["reportlab.pdfgen.canvas", "reportlab.platypus"],
    "python-docx": ["docx"], "python-pptx": ["pptx"], "XlsxWriter": ["xlsxwriter"],
    "python-calamine": ["python_calamine"], "odfpy": ["odf.opendocument"], "fastparquet": ["fastparquet"],
    "lxml": ["lxml.etree", "lxml.html"], "beautifulsoup4": ["bs4"], "opencv-python-headless": ["cv2"],
    "scikit-image": ["skimage", "skimage.feature", "skimage.io"], "imageio": ["imageio.v2", "imageio.v3"],
    "imageio-ffmpeg": ["imageio_ffmpeg"], "moviepy": ["moviepy.editor"], "soundfile": ["soundfile"],
    "qrcode": ["qrcode"], "wordcloud": ["wordcloud"], "jieba": ["jieba"],
    "charset-normalizer": ["charset_normalizer"], "tabulate": ["tabulate"],
}


class Desk:
    """One conversation and its restricted kernel; each ``ask`` is a new user turn whose
    scripted model answers with ``code`` (or with replies that read the observation)."""

    def __init__(self, store: HistoryStore, conversation, kernel: ConversationKernel, inbox: Path):
        self.store, self.conversation, self.kernel, self.inbox = store, conversation, kernel, inbox

    @property
    def workspace(self) -> Path:
        return self.conversation.workspace

    def ask(self, text: str, files: list[Path], *replies) -> dict:
        replies = [f"<execute>\n{r}\n</execute>" if isinstance(r, str) else r for r in replies]
        backend = ScriptedBackend([*replies, "Done."])
        agent = CodeActAgent(backend, self.kernel, self.conversation, AgentSettings(action_timeout_s=240))
        record = agent.send(text, files)
        for path in files:  # the model was told the file is there, under its own name
            assert f"./{path.name} (" in backend.calls[0][-1]["content"]
        return {"record": record, "backend": backend, "actions": record.actions}

    def run_ok(self, text: str, files: list[Path], code: str) -> str:
        actions = self.ask(text, files, code)["actions"]
        assert [a["status"] for a in actions] == ["ok"], actions[-1]["observation"][-3000:]
        return actions[0]["observation"]


@pytest.fixture(scope="module")
def desk(kernel_venv, app_paths, tmp_path_factory):
    root = tmp_path_factory.mktemp("file-kinds")
    store = HistoryStore(root / "history.sqlite3")
    conversation = store.create_conversation(root / "workspaces")
    kernel = ConversationKernel(kernel_venv, conversation.workspace,
                           kernel_env(app_paths, kernel_venv, conversation.workspace))
    kernel.start()
    assert not kernel.sandbox.missing, kernel.sandbox.why_not()  # the real restrictions, network off
    inbox = root / "from the user"  # where dropped files come from: outside the workspace
    inbox.mkdir()
    yield Desk(store, conversation, kernel, inbox)
    kernel.shutdown()
    store.close()


# -- the list itself ----------------------------------------------------------------------

def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_stack_is_declared_pinned_and_documented():
    import tomllib

    declared = {_normal(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0])
                for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    lock = {_normal(line.split("==")[0]) for line in (ROOT / "packaging/locks/linux-x86_64.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")}
    doc = (ROOT / "docs/kernel-stack.md").read_text().lower()
    for dist in [*CORE, *FILE_STACK]:
        assert _normal(dist) in declared, f"{dist} is not a dependency in pyproject.toml"
        assert _normal(dist) in lock, f"{dist} is not pinned in packaging/locks/linux-x86_64.txt"
        assert f"`{dist.lower()}`" in doc, f"docs/kernel-stack.md does not list {dist}"
    for left_out in ("pymupdf", "pyarrow", "pydub"):  # docs/kernel-stack.md says why not
        assert left_out not in declared and left_out in doc


def test_every_module_of_the_stack_imports_in_the_restricted_kernel(desk):
    modules = [m for names in [*CORE.values(), *FILE_STACK.values()] for m in names]
    result = desk.kernel.execute(
        "import importlib, json, traceback\n"
        "failed = {}\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except BaseException:\n"
        "        failed[name] = traceback.format_exc(limit=-3)\n"
        "print(json.dumps(failed))", timeout=300)
    out = "".join(i.text for i in result.items if i.kind == "stdout")
    assert result.status == "ok", [i.evalue for i in result.items]
    assert json.loads(out.strip().splitlines()[-1]) == {}


def test_heavy_packages_are_not_imported_at_start(make_kernel, tmp_path):
    kernel = make_kernel(tmp_path / "ws-start")
    result = kernel.execute("import json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(json.loads(result.items[0].text))
    assert {"numpy", "pandas", "matplotlib"} <= loaded  # the warm-up, as before
    assert not loaded & {"cv2", "skimage", "moviepy", "imageio", "jieba", "pdfplumber", "pypdf", "fastparquet",
                         "docx", "pptx", "reportlab", "lxml", "bs4", "wordcloud", "soundfile", "pyarrow"}


# -- one test per kind of file ------------------------------------------------------------

def test_pdf_text_and_table_out_and_a_pdf_written(desk):
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table, TableStyle

    pdf = desk.inbox / "quarterly report.pdf"
    table = Table([["region", "revenue"], ["North", "120"], ["South", "90"]])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 1, colors.black)]))
    styles = getSampleStyleSheet()
    SimpleDocTemplate(str(pdf), pagesize=A4).build([
        Paragraph("Quarterly report 2026", styles["Title"]),
        Paragraph("Revenue grew in every region.", styles["Normal"]),
        PageBreak(), Paragraph("Revenue by region", styles["Heading2"]), table])
    ask = "Extract the text and the table of this PDF, and give me a one-page summary PDF."
    observation = desk.run_ok(ask, [pdf], """
import pdfplumber, pandas as pd
from reportlab.pdfgen import canvas
with pdfplumber.open("quarterly report.pdf") as doc:
    pages = len(doc.pages)
    text = "\\n".join(page.extract_text() or "" for page in doc.pages)
    rows = [row for page in doc.pages for t in page.extract_tables() for row in t]
open("report.txt", "w", encoding="utf-8").write(text)
table = pd.DataFrame(rows[1:], columns=rows[0])
table.to_csv("revenue.csv", index=False)
c = canvas.Canvas("summary.pdf")
c.drawString(72, 770, f"Summary: {pages} pages, total revenue {table['revenue'].astype(int).sum()}")
c.save()
print(pages, "pages;", len(table), "rows")
""")
    assert "2 pages; 2 rows" in observation
    ws = desk.workspace
    text = (ws / "report.txt").read_text()
    assert "Quarterly report 2026" in text and "Revenue by region" in text
    assert (ws / "revenue.csv").read_text().split() == ["region,revenue", "North,120", "South,90"]
    from pypdf import PdfReader

    assert "Summary: 2 pages, total revenue 210" in PdfReader(ws / "summary.pdf").pages[0].extract_text()


def test_word_document_read_and_written(desk):
    import docx

    path = desk.inbox / "minutes.docx"
    document = docx.Document()
    document.add_heading("Board minutes", 1)
    document.add_paragraph("The board approved the budget.")
    grid = document.add_table(rows=3, cols=2)
    for r, (item, cost) in enumerate([("item", "cost"), ("laptops", "1200"), ("chairs", "300")]):
        grid.cell(r, 0).text, grid.cell(r, 1).text = item, cost
    document.save(path)
    desk.run_ok("Add up the costs in this Word file and write the answer into a new Word file.", [path], """
import docx
src = docx.Document("minutes.docx")
print([p.text for p in src.paragraphs])
rows = [[c.text for c in row.cells] for row in src.tables[0].rows]
total = sum(int(cost) for _, cost in rows[1:])
out = docx.Document()
out.add_heading("Costs", 1)
out.add_paragraph(f"Total cost: {total}")
out.save("costs.docx")
""")
    written = docx.Document(desk.workspace / "costs.docx")
    assert [p.text for p in written.paragraphs] == ["Costs", "Total cost: 1500"]


def test_powerpoint_read_and_a_slide_added(desk):
    from pptx import Presentation

    path = desk.inbox / "deck.pptx"
    deck = Presentation()
    for title in ("Plan", "Results"):
        deck.slides.add_slide(deck.slide_layouts[1]).shapes.title.text = title
    deck.save(path)
    desk.run_ok("List the slide titles of this deck and add a summary slide at the end.", [path], """
from pptx import Presentation
deck = Presentation("deck.pptx")
titles = [s.shapes.title.text for s in deck.slides]
slide = deck.slides.add_slide(deck.slide_layouts[1])
slide.shapes.title.text = "Summary"
slide.placeholders[1].text = "\\n".join(titles)
deck.save("deck-with-summary.pptx")
print(titles)
""")
    slides = list(Presentation(desk.workspace / "deck-with-summary.pptx").slides)
    assert [s.shapes.title.text for s in slides] == ["Plan", "Results", "Summary"]
    assert slides[-1].placeholders[1].text == "Plan\nResults"


def test_spreadsheets_ods_and_old_xls_to_xlsx(desk):
    import openpyxl
    import pandas as pd

    ods = desk.inbox / "sales-2026.ods"
    pd.DataFrame({"region": ["North", "South"], "quarter": ["Q3", "Q3"], "revenue": [140, 95]}).to_excel(
        ods, index=False, engine="odf")
    xls = desk.inbox / "sales-1997.xls"
    shutil.copy(DATA / "sales-1997.xls", xls)  # made by xlwt: the old binary format
    observation = desk.run_ok("Combine these two spreadsheets and total the revenue per region in an Excel file.",
                              [ods, xls], """
import pandas as pd
both = pd.concat([pd.read_excel("sales-2026.ods"), pd.read_excel("sales-1997.xls")])
totals = both.groupby("region", as_index=False)["revenue"].sum()
totals.to_excel("totals.xlsx", index=False)
totals.to_excel("totals.ods", index=False)
print(totals.to_markdown(index=False))
""")
    assert "| Ost-Süd" in observation  # to_markdown: tabulate
    sheet = openpyxl.load_workbook(desk.workspace / "totals.xlsx").active
    assert list(sheet.values) == [("region", "revenue"), ("North", 395), ("Ost-Süd", 75), ("South", 295)]
    assert pd.read_excel(desk.workspace / "totals.ods")["revenue"].tolist() == [395, 75, 295]


def test_csv_tsv_and_json_to_parquet(desk):
    import pandas as pd

    csv, tsv, jsn = desk.inbox / "a.csv", desk.inbox / "b.tsv", desk.inbox / "c.json"
    csv.write_text("id,city,temp\n1,Oslo,-3.5\n2,Lima,18.25\n", encoding="utf-8")
    tsv.write_text("id\tcity\ttemp\n3\tKraków\t1.0\n", encoding="utf-8")
    jsn.write_text(json.dumps([{"id": 4, "city": "Nairobi", "temp": 21.5}]), encoding="utf-8")
    observation = desk.run_ok("Put these three tables into one Parquet file.", [csv, tsv, jsn], """
import pandas as pd
frames = [pd.read_csv("a.csv"), pd.read_csv("b.tsv", sep="\\t"), pd.read_json("c.json")]
allrows = pd.concat(frames, ignore_index=True)
allrows.to_parquet("cities.parquet", index=False)
back = pd.read_parquet("cities.parquet")
allrows.to_json("cities.jsonl", orient="records", lines=True, force_ascii=False)
print(back.shape, back["temp"].sum())
""")
    assert "(4, 3) 37.25" in observation
    back = pd.read_parquet(desk.workspace / "cities.parquet")
    assert back["city"].tolist() == ["Oslo", "Lima", "Kraków", "Nairobi"] and back["id"].tolist() == [1, 2, 3, 4]
    assert json.loads((desk.workspace / "cities.jsonl").read_text(encoding="utf-8").splitlines()[2])["city"] == "Kraków"


def test_html_and_xml_to_tables(desk):
    page, feed = desk.inbox / "prices.html", desk.inbox / "catalogue.xml"
    page.write_text("<html><body><h1>Prices</h1><a href='https://example.org/a'>A</a> <a href='/b'>B</a>"
                    "<table><tr><th>fruit</th><th>price</th></tr><tr><td>apple</td><td>1.5</td></tr>"
                    "<tr><td>pear</td><td>2.25</td></tr></table></body></html>", encoding="utf-8")
    feed.write_text("<?xml version='1.0'?><catalogue><book id='b1'><title>Dune</title><year>1965</year></book>"
                    "<book id='b2'><title>Solaris</title><year>1961</year></book></catalogue>", encoding="utf-8")
    desk.run_ok("Get the links and the table from the page, and the books from the XML.", [page, feed], """
import json, pandas as pd
from bs4 import BeautifulSoup
from lxml import etree
soup = BeautifulSoup(open("prices.html", encoding="utf-8").read(), "lxml")
links = [a["href"] for a in soup.find_all("a")]
table = pd.read_html("prices.html")[0]
table.to_csv("prices.csv", index=False)
root = etree.parse("catalogue.xml")
books = [{"id": b.get("id"), "title": b.findtext("title"), "year": int(b.findtext("year"))} for b in root.xpath("//book")]
json.dump({"links": links, "books": books}, open("found.json", "w"))
""")
    found = json.loads((desk.workspace / "found.json").read_text())
    assert found["links"] == ["https://example.org/a", "/b"]
    assert found["books"] == [{"id": "b1", "title": "Dune", "year": 1965}, {"id": "b2", "title": "Solaris", "year": 1961}]
    assert (desk.workspace / "prices.csv").read_text().split() == ["fruit,price", "apple,1.5", "pear,2.25"]


def _square_photo(path: Path) -> None:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (120, 100), "black")
    ImageDraw.Draw(image).rectangle([30, 25, 89, 74], fill=(250, 250, 250))
    image.save(path)


def _edge_image_ok(path: Path) -> None:
    import numpy as np
    from PIL import Image

    edges = np.asarray(Image.open(path).convert("L")) > 0
    assert edges.shape == (100, 120)
    assert edges[20:80, 25:95].sum() > 150  # the square's outline
    assert not edges[:15].any() and not edges[40:60, 45:75].any()  # flat black, flat white: no edges


def test_photo_edges_with_opencv_and_scikit_image(desk):
    photo = desk.inbox / "photo.png"
    _square_photo(photo)
    observation = desk.run_ok("Detect the edges in this photo.", [photo], """
import cv2, numpy as np
from skimage import feature, io, color
img = cv2.imread("photo.png")
gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
edges = cv2.Canny(gray, 100, 200)
cv2.imwrite("edges.png", edges)
sk = feature.canny(color.rgb2gray(io.imread("photo.png")), sigma=1)
io.imsave("edges-skimage.png", (sk * 255).astype(np.uint8))
contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
print(len(contours), "contour;", cv2.boundingRect(contours[0]))
""")
    x, y, w, h = map(int, re.search(r"1 contour; \((\d+), (\d+), (\d+), (\d+)\)", observation).groups())
    assert abs(x - 30) <= 1 and abs(y - 25) <= 1 and abs(w - 60) <= 2 and abs(h - 50) <= 2  # the square
    _edge_image_ok(desk.workspace / "edges.png")
    _edge_image_ok(desk.workspace / "edges-skimage.png")


def test_qr_code_for_a_link(desk):
    import cv2

    link = desk.inbox / "link.txt"
    link.write_text("https://example.org/codeact?lang=fr\n", encoding="utf-8")
    desk.run_ok("Make a QR code for the link in this file.", [link], """
import qrcode
url = open("link.txt", encoding="utf-8").read().strip()
qrcode.make(url).save("qr.png")
""")
    decoded, _, _ = cv2.QRCodeDetector().detectAndDecode(cv2.imread(str(desk.workspace / "qr.png")))
    assert decoded == "https://example.org/codeact?lang=fr"


def test_word_cloud_of_a_report(desk):
    import numpy as np
    from PIL import Image

    report = desk.inbox / "annual report.txt"
    report.write_text(("Solar power grew again. " * 9) + ("Wind power is steady. " * 4) + "Coal fell.", encoding="utf-8")
    observation = desk.run_ok("Make a word cloud of this report.", [report], """
from wordcloud import WordCloud
wc = WordCloud(width=400, height=300, background_color="white").generate(open("annual report.txt").read())
wc.to_file("cloud.png")
print("top:", max(wc.words_, key=wc.words_.get))
""")
    assert "top: Solar" in observation or "top: power" in observation
    cloud = np.asarray(Image.open(desk.workspace / "cloud.png").convert("L"))
    # Words are drawn in random colours (some light yellow), so count what is not white.
    assert cloud.shape == (300, 400) and (cloud < 240).sum() > 2000


def test_audio_cut_to_its_first_ten_seconds(desk):
    import numpy as np
    import soundfile

    song = desk.inbox / "song.mp3"
    rate = 22050
    t = np.arange(rate * 14) / rate
    soundfile.write(song, 0.3 * np.sin(2 * np.pi * 440 * t), rate)
    desk.run_ok("Cut the first 10 seconds of this MP3.", [song], """
import soundfile as sf
data, rate = sf.read("song.mp3")
sf.write("first-10s.mp3", data[: 10 * rate], rate)
sf.write("first-10s.wav", data[: 10 * rate], rate)
print(sf.info("first-10s.mp3").duration)
""")
    for name in ("first-10s.mp3", "first-10s.wav"):
        info = soundfile.info(desk.workspace / name)
        assert abs(info.duration - 10.0) < 0.1 and info.samplerate == rate, (name, info)
    data, _ = soundfile.read(desk.workspace / "first-10s.wav")
    assert 0.25 < np.abs(data).max() < 0.35  # the tone itself, not silence


def test_video_to_gif_and_a_smaller_mp4(desk):
    import imageio.v3 as iio
    import numpy as np
    from PIL import Image

    clip = desk.inbox / "clip.mp4"
    frames = np.zeros((30, 96, 128, 3), dtype=np.uint8)
    for i in range(30):
        frames[i, 30:60, 4 * i:4 * i + 20] = 255  # a white box moving right
    iio.imwrite(clip, frames, fps=10, codec="libx264")
    observation = desk.run_ok("Turn the first two seconds of this video into a GIF, and make a half-size MP4.",
                              [clip], """
from moviepy.editor import VideoFileClip
video = VideoFileClip("clip.mp4")
print("duration", video.duration, "size", video.size)
video.subclip(0, 2).write_gif("clip.gif", fps=5, logger=None)
video.resize(0.5).write_videofile("clip-small.mp4", logger=None)
video.close()
""")
    assert "duration 3.0 size [128, 96]" in observation
    gif = Image.open(desk.workspace / "clip.gif")
    assert gif.size == (128, 96) and gif.n_frames >= 9
    small = iio.imread(desk.workspace / "clip-small.mp4")
    assert small.shape[1:3] == (48, 64) and 28 <= small.shape[0] <= 31
    assert small[-1, :, 40:].mean() > small[0, :, 40:].mean()  # the box did move right


def test_archives_unpacked_and_one_written(desk):
    zipped, tarred = desk.inbox / "monthly.zip", desk.inbox / "older.tar.gz"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("jan.csv", "day,sales\n1,10\n2,12\n")
        z.writestr("feb/feb.csv", "day,sales\n1,7\n")
    source = desk.inbox / "dec.csv"
    source.write_text("day,sales\n31,30\n")
    with tarfile.open(tarred, "w:gz") as t:
        t.add(source, arcname="dec.csv")
    desk.run_ok("Unpack these archives and add up all sales; zip the result.", [zipped, tarred], """
import glob, shutil, zipfile, pandas as pd
shutil.unpack_archive("monthly.zip", "unpacked")
shutil.unpack_archive("older.tar.gz", "unpacked")
sales = pd.concat(pd.read_csv(p) for p in sorted(glob.glob("unpacked/**/*.csv", recursive=True)))
open("total.txt", "w").write(str(sales["sales"].sum()))
with zipfile.ZipFile("result.zip", "w") as z:
    z.write("total.txt")
""")
    with zipfile.ZipFile(desk.workspace / "result.zip") as z:
        assert z.read("total.txt") == b"59"


def test_chinese_text_in_an_old_encoding_segmented(desk):
    article = desk.inbox / "文章.txt"
    text = "我们今天分析数据。数据很重要，数据科学家用数据做决定。北京的天气很好，我们去公园散步。" * 3
    article.write_bytes(text.encode("gb18030"))
    observation = desk.run_ok("Count the words in this Chinese text.", [article], """
import collections, charset_normalizer, jieba
raw = open("文章.txt", "rb").read()
best = charset_normalizer.from_bytes(raw).best()
text = str(best)
words = [w for w in jieba.lcut(text) if w.strip() and w not in "，。"]
counts = collections.Counter(words).most_common(3)
open("words.csv", "w", encoding="utf-8").write("\\n".join(f"{w},{n}" for w, n in counts))
print(best.encoding, counts[0])
""")
    assert re.search(r"gb18030|gbk|gb2312", observation)
    assert (desk.workspace / "words.csv").read_text(encoding="utf-8").splitlines()[0] == "数据,12"


# -- a module that is not there -----------------------------------------------------------

def test_a_missing_module_names_the_installed_one_and_the_model_switches(desk):
    from reportlab.pdfgen import canvas

    pdf = desk.inbox / "invoice.pdf"
    c = canvas.Canvas(str(pdf))
    c.drawString(72, 770, "Invoice 17: 250 EUR")
    c.save()

    def switch(messages_so_far):
        observation = messages_so_far[-1]["content"]
        if "`pypdf`" not in observation:
            return "I cannot read it."
        return ("<execute>\nfrom pypdf import PdfReader\n"
                "print(PdfReader('invoice.pdf').pages[0].extract_text())\n</execute>")

    turn = desk.ask("What is the amount on this invoice?", [pdf],
                    "import PyPDF2\nprint(PyPDF2.PdfReader('invoice.pdf').pages[0].extract_text())", switch)
    first, second = turn["actions"]
    assert first["status"] == "error" and "ModuleNotFoundError" in first["observation"]
    hint = first["observation"].split("ModuleNotFoundError", 1)[1]
    assert "`PyPDF2` is not installed here" in hint and "no network" in hint and "`pypdf`" in hint
    assert second["status"] == "ok" and "Invoice 17: 250 EUR" in second["observation"]
    assert turn["record"].reason == "answered"


def test_an_agpl_module_is_not_there_and_its_stand_ins_are_named(desk):
    observation = desk.ask("Render page 1 of the invoice.", [], "import fitz")["actions"][0]["observation"]
    assert "`fitz` is not installed here" in observation
    for stand_in in ("`pypdf`", "`pdfplumber`", "`pypdfium2`"):
        assert stand_in in observation
    # and the stand-in does what was asked
    rendered = desk.run_ok("Then with pypdfium2.", [], "import pypdfium2\n"
                           "pypdfium2.PdfDocument('invoice.pdf')[0].render(scale=1).to_pil().save('page1.png')")
    from PIL import Image

    assert Image.open(desk.workspace / "page1.png").size in ((595, 842), (596, 842))  # A4 at 72 dpi
    assert "Execution Output" in rendered


@pytest.mark.skipif(any(Path(d, "ffmpeg").exists() for d in ("/usr/local/bin", "/usr/bin", "/bin")),
                    reason="this machine has an ffmpeg of its own on the kernel's PATH")
def test_ffmpeg_by_name_is_answered_with_the_one_that_ships(desk):
    observation = desk.ask("Convert it with ffmpeg.", [], "!ffmpeg -version")["actions"][0]["observation"]
    assert messages()["program_missing"].format(program="ffmpeg") in observation
    path = desk.run_ok("Use that one.", [], "import imageio_ffmpeg, subprocess\n"
                       "print(subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), '-version'], capture_output=True, "
                       "text=True).stdout.split()[:2])")
    assert "['ffmpeg', 'version']" in path
