"""An image's width and height from its header, without decoding it.

Qt decodes an image at the size its header claims: 180 KB of PNG zeros claim 8,000 x 8,000
pixels, 256 MB and 0.8 s of the window's UI thread each time its conversation opens. The
app reads the size first and refuses what is too large (an output's image, an ``<img>``'s
inline data in an HTML output).
"""

from __future__ import annotations

import base64
import binascii

MAX_IMAGE_PIXELS = 25_000_000  # 5,000 x 5,000; a 16-inch figure at 300 dpi is 4,800 x 3,600
# What one run's images (or one HTML output's) may ask the window to decode, 4 bytes a pixel:
# a hundred of 25 million pixels would be 10 GB from a few megabytes of PNG.
MAX_PIXELS_PER_RUN = 64_000_000
# Images inside HTML or Markdown are decoded and kept by Qt's rich text at their own size,
# for as long as the conversation is open: 10 outputs of 64 million pixels took 2.4 GB.
# One run's together (the window's own images are drawn at the size shown instead).
MAX_INLINE_PIXELS_PER_RUN = 8_000_000


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, JPEG, GIF or WebP; None when the header is none of those."""
    return png_size(data) or jpeg_size(data) or gif_size(data) or webp_size(data)


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG header, without decoding the image."""
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a JPEG's start-of-frame segment, the markers before it read as
    libjpeg reads them (``next_marker``): bytes that are not a marker are skipped, and the
    markers that carry no length (RSTn, TEM) are one step, so a file cannot show this parser
    one frame and the decoder another."""
    if not data.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:  # stray bytes: libjpeg warns and looks for the next marker
            at = data.find(b"\xff", at)
            if at < 0:
                return None
            continue
        marker = data[at + 1]
        if marker == 0xFF:  # fill bytes before a marker
            at += 1
            continue
        if marker == 0x00:  # a stuffed zero, not a marker: libjpeg discards the pair and scans on
            at += 2
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length follows these
            at += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[at + 7:at + 9], "big"), int.from_bytes(data[at + 5:at + 7], "big")
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    return None


def gif_size(data: bytes) -> tuple[int, int] | None:
    """The logical screen's size (a frame larger than it is clipped by Qt's reader)."""
    if len(data) >= 10 and data[:6] in (b"GIF87a", b"GIF89a"):
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    return None


def webp_size(data: bytes) -> tuple[int, int] | None:
    """From the first chunk: VP8X (extended), VP8L (lossless) or VP8 (lossy)."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


def data_url_pixels(url: str) -> int | None:
    """Pixels an inline ``data:image/...;base64,`` image claims; None when its size cannot be
    read. The first 64 KB are enough: a JPEG's frame comes after its EXIF and tables."""
    encoded = "".join(url.partition(",")[2][:90_000].split())
    try:
        size = image_size(base64.b64decode(encoded[: len(encoded) // 4 * 4]))
    except (binascii.Error, ValueError):
        return None
    return size[0] * size[1] if size else None
