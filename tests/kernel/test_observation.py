from codeact_desktop.kernel.observation import observation_text, strip_ansi, truncate_middle
from codeact_desktop.kernel.outputs import OutputItem, StreamBuffer


def test_ansi_codes_are_stripped_from_tracebacks():
    item = OutputItem(kind="error", ename="ValueError", traceback=["\x1b[0;31mValueError\x1b[0m: bad"])
    assert observation_text([item]) == "ValueError: bad"


def test_image_is_a_short_placeholder_with_its_size():
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big") + (480).to_bytes(4, "big") + b"rest"
    text = observation_text([OutputItem(kind="stdout", text="plotted\n"), OutputItem(kind="image", data=png)])
    assert text == "plotted\n<image: 640x480 PNG, shown to the user>"


def test_html_table_reads_as_its_plain_twin():
    item = OutputItem(kind="html", text="<table>…</table>", plain="   a\n0  1")
    assert observation_text([item]) == "   a\n0  1"


def test_truncation_keeps_head_and_tail_and_says_what_was_cut():
    text = "".join(f"line {i}\n" for i in range(10_000))
    short = truncate_middle(text, 1000)
    assert short.startswith("line 0\n") and short.endswith("line 9999\n")
    assert "characters" in short and "cut here" in short and len(short) < 1200


def test_empty_output_is_empty():
    assert observation_text([]) == ""
    assert strip_ansi("\x1b[1mbold\x1b[0m") == "bold"


def test_stream_buffer_keeps_head_and_tail():
    buf = StreamBuffer("stdout", keep=100)
    for i in range(1000):
        buf.add(f"{i:04d}\n")
    item = buf.item()
    assert item.text.startswith("0000\n") and item.text.endswith("0999\n")
    assert item.dropped_chars == 5000 - 100
