"""Small text renderers shared by the steps: Markdown tables for reports, job summaries and logs."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["fmt", "markdown_table"]


def fmt(value: object, digits: int = 3) -> str:
    """A table cell: floats rounded, NaN/None as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(
    rows: Iterable[dict], columns: Sequence[str], headers: Sequence[str] | None = None
) -> str:
    """A GitHub-flavoured Markdown table of ``rows`` (dicts) restricted to ``columns``."""
    headers = list(headers or columns)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"
