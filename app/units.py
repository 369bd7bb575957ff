"""Quantities in words for people: `human_size(n)` ("512 bytes", "64 KB", "2.5 MB").

Shared by the composer's limits, the attachment lists and the outbound size limit, so an
agent reads one way of writing sizes everywhere.
"""
from __future__ import annotations


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    return f"{n} bytes"
