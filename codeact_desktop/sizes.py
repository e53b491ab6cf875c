"""Byte counts in words, for every part that shows one (models, downloads, files, memory)."""

from __future__ import annotations


def human_size(n: int) -> str:
    """``1536`` → ``"1.5 KB"``; binary units, as file managers show them."""
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            if unit == "bytes":
                return "1 byte" if n == 1 else f"{int(size)} bytes"
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"
