"""Quantities in words for people: `human_size(n)` ("512 bytes", "64 KB", "2.5 MB") and
`duration_words(delta)` ("3 hours 5 minutes", for the timed rules' messages).

Shared by the composer's limits, the attachment lists and the outbound size limit, so an
agent reads one way of writing sizes everywhere.
"""
from __future__ import annotations

from datetime import timedelta


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    return f"{n} bytes"


def duration_words(delta: timedelta) -> str:
    """A duration in words: "45 minutes", "3 hours 5 minutes", "2 days"."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute")) if n]
    return " ".join(parts) or "0 minutes"
