"""Markdown rendering helpers."""

from __future__ import annotations

import math

from manymodels.report import fmt, markdown_table


def test_fmt():
    assert fmt(0.12345) == "0.123"
    assert fmt(math.nan) == "—" and fmt(None) == "—"
    assert fmt(3) == "3" and fmt("x") == "x"


def test_markdown_table_selects_columns_and_headers():
    text = markdown_table([{"a": 1, "b": 0.5, "c": "no"}], ["a", "b"], ["A", "B"])
    assert text.splitlines() == ["| A | B |", "|---|---|", "| 1 | 0.500 |"]
