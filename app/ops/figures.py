"""Ops › Metrics: the families a `/metrics` scrape produces, as tables for people without Prometheus.

The figures are collected from the registries the scrape exposes (`app.ops.metrics.registries()`), not
computed again, so the page and `/metrics` cannot disagree. One `Table` per family: its name as in the
exposition, its type and HELP text, a row per label set. Counters and gauges give their value; histograms
their count, sum and average, and p50/p95 estimated from the buckets: the upper bound of the bucket that
holds the quantile (the true value is at most that; "over" the last finite bound when it fell in `+Inf`).
Pigeonhole's families come first, in the scrape's order, then the answering process's own (Python's).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

from app.ops.metrics import registries

PREFIX = "pigeonhole_"


@dataclass(frozen=True)
class Bound:
    """A quantile's estimate: at most `value`, or above it when `over` (it fell in the `+Inf` bucket)."""

    value: float
    over: bool = False


@dataclass
class Row:
    labels: tuple[str, ...]
    value: float | None = None  # counters, gauges and any other sample
    sample: str = ""  # the sample's name, for a family of a type this page does not summarise
    count: float = 0.0  # histograms
    total: float = 0.0
    buckets: list[tuple[float, float]] = field(default_factory=list)  # (upper bound, cumulative count)

    @property
    def average(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> Bound | None:
        """The upper bound of the bucket holding the q-quantile of the observations (None: none observed)."""
        if not self.count:
            return None
        rank = q * self.count
        finite = [bound for bound, _ in self.buckets if not math.isinf(bound)]
        for bound, cumulative in sorted(self.buckets):
            if cumulative >= rank:
                if math.isinf(bound):
                    return Bound(finite[-1], over=True) if finite else None
                return Bound(bound)
        return None

    @property
    def p50(self) -> Bound | None:
        return self.quantile(0.5)

    @property
    def p95(self) -> Bound | None:
        return self.quantile(0.95)

    @property
    def when(self) -> datetime | None:
        """A `_timestamp_seconds` gauge's value as a moment."""
        return datetime.fromtimestamp(self.value, timezone.utc) if self.value else None


@dataclass
class Table:
    name: str  # as the exposition names it (a counter with its `_total`)
    kind: str  # counter, gauge, histogram, or another of Prometheus's types
    help: str
    labels: list[str]
    rows: list[Row]

    @property
    def seconds(self) -> bool:
        return self.name.endswith("_seconds") and not self.name.endswith("_timestamp_seconds")

    @property
    def timestamp(self) -> bool:
        return self.name.endswith("_timestamp_seconds")


def tables() -> list[Table]:
    """Every family of a scrape now, Pigeonhole's first."""
    found = [_table(family) for registry in registries() for family in registry.collect()]
    return ([t for t in found if t.name.startswith(PREFIX)]
            + [t for t in found if not t.name.startswith(PREFIX)])


def _exposed_name(family) -> str:
    return {"counter": f"{family.name}_total", "info": f"{family.name}_info"}.get(family.type, family.name)


def _table(family) -> Table:
    labels: list[str] = []
    for sample in family.samples:
        for name in sample.labels:
            if name not in labels and not (family.type == "histogram" and name == "le"):
                labels.append(name)
    rows: dict[tuple[str, ...], Row] = {}
    others: list[Row] = []

    def row(sample) -> Row:
        key = tuple(sample.labels.get(name, "") for name in labels)
        return rows.setdefault(key, Row(key))

    for sample in family.samples:
        if sample.name.endswith("_created"):
            continue  # when the series began: not a figure
        if family.type == "histogram":
            if sample.name.endswith("_bucket"):
                row(sample).buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_count"):
                row(sample).count = sample.value
            elif sample.name.endswith("_sum"):
                row(sample).total = sample.value
        elif family.type in ("counter", "gauge"):
            row(sample).value = sample.value
        else:
            key = tuple(sample.labels.get(name, "") for name in labels)
            others.append(Row(key, value=sample.value, sample=sample.name))
    return Table(_exposed_name(family), family.type, family.documentation, labels, list(rows.values()) + others)


def number(value: float | None) -> str:
    """A figure as the page writes it: whole numbers whole, others to a few significant digits."""
    if value is None:
        return "—"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1000:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return f"{value:.4g}"
