"""Ops › Metrics' estimates from a histogram's buckets and how it writes figures (`app.ops.figures`)."""
from __future__ import annotations

import math

from app.ops.figures import Bound, Row, number


def test_p50_and_p95_are_the_upper_bounds_of_the_buckets_holding_them():
    # 100 observations: 60 up to 0.1 s, 30 more up to 0.5 s, 6 up to 1 s, 4 above the last bound.
    row = Row((), count=100, total=42.0, buckets=[(0.1, 60), (0.5, 90), (1.0, 96), (math.inf, 100)])
    assert row.p50 == Bound(0.1) and row.average == 0.42
    assert row.quantile(0.9) == Bound(0.5) and row.quantile(0.91) == Bound(1.0)
    assert row.p95 == Bound(1.0) and row.quantile(0.99) == Bound(1.0, over=True)
    assert Row((), count=0, buckets=[(0.1, 0), (math.inf, 0)]).p95 is None
    assert Row((), count=0).average is None


def test_figures_are_written_whole_or_to_a_few_digits():
    assert [number(v) for v in (None, 3.0, 0.0439123, 2.34567, 1712345678.4, math.inf)] == \
        ["—", "3", "0.04391", "2.346", "1712345678", "+Inf"]
