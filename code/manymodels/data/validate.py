"""Checks on the standard table: schema, types, ranges, duplicates, gaps, unknown keys, freshness.

:func:`validate` returns every finding, not just the first, so one run tells a data engineer all
that is wrong. Each finding names the check, the column, the raw source the column comes from,
and up to five offending rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import pandas as pd

from manymodels.config import SourceSettings
from manymodels.data.condition import BASE_COLUMNS, SCHEMA, WEEKDAYS

__all__ = ["Finding", "has_errors", "render_markdown", "source_of", "validate"]

KEY = ["store_id", "product_id", "week"]
NUMERIC = tuple(c for c, kind in SCHEMA.items() if kind == "number")
TEXT = tuple(c for c, kind in SCHEMA.items() if kind == "text")
# where each standard column comes from, when no sources are given (the mock's files)
_SOURCE_OF = {
    "week": "sales",
    "shipped": "sales",
    "units": "sales - returns",
    "returns": "returns",
    "region": "stores",
    "store_type": "stores",
    "store_format": "stores",
    "zip_code": "stores",
    "category": "products",
}
RANGES = {"returns": (0.0, None), "shipped": (0.0, None)}


def source_of(sources: tuple[SourceSettings, ...]) -> dict[str, str]:
    """``{column: "source 'name' (path)"}``: which declared source each column comes from."""
    out = {}
    for src in sources:
        label = f"source {src.name!r} ({src.path})"
        if src.kind == "sales":
            out |= {"week": label, "shipped": label, "units": label}
        if src.kind == "returns":
            out["returns"] = label
        if src.kind == "stores":
            out |= {c: label for c in ("region", "store_format", "store_type", "zip_code")}
        if src.kind == "products":
            out["category"] = label
        if src.kind == "events":
            out[src.name] = label
        out |= {c.name: label for c in src.covariates}
    return out


@dataclass(frozen=True)
class Finding:
    check: str
    column: str
    message: str
    rows: list[dict] = field(default_factory=list)
    severity: str = "error"
    source: str = ""

    def as_dict(self) -> dict:
        return asdict(self) | {"source": self.source or "conditioned table"}


def validate(  # noqa: PLR0914
    table: pd.DataFrame,
    as_of: dt.date,
    *,
    earliest_week: dt.date = dt.date(2000, 1, 1),
    max_units: float = 1_000_000,
    max_age_days: int = 30,
    max_missing_week_share: float = 0.0,
    covariates: Mapping[str, str] | None = None,
    ranges: Mapping[str, tuple[float | None, float | None]] | None = None,
    week_starts: str = "monday",
    sources: Mapping[str, str] | None = None,
) -> list[Finding]:
    """All findings on ``table`` judged on date ``as_of``; an empty list means the data is good.

    Args:
        covariates: ``{column: mode}`` (the manifest's); those not ``known`` in advance are
            only checked on the history rows. None: the numeric columns beyond the standard ones.
        ranges: ``{column: (low, high)}`` for covariates (either bound None: open).
        sources: ``{column: source}`` named by findings (:func:`source_of`).
    """
    missing = [c for c in BASE_COLUMNS if c not in table.columns]
    if missing:
        return [
            Finding("schema", ", ".join(missing), f"missing column(s) {missing}: re-run condition")
        ]
    if covariates is None:
        extra = [c for c in table.columns if c not in SCHEMA]
        covariates = {c: "known" for c in extra if pd.api.types.is_numeric_dtype(table[c])}
    if found := _types(table, covariates):
        return found
    known = table["units"].notna()
    last = table.loc[known, "week"].max() if known.any() else table["week"].max()
    history = table[table["week"] <= last]
    check = _Checker(table, sources or _SOURCE_OF)
    check(
        "duplicates",
        "week",
        table.duplicated(KEY, keep=False),
        "the same store x product x week appears more than once (conflicting export rows)",
    )
    check(
        "unknown_store",
        "region",
        table["region"].isna(),
        "store ids missing from the store master: add them to it or drop their rows",
    )
    check(
        "unknown_product",
        "category",
        table["category"].isna(),
        "product ids missing from the product master: add them to it",
    )
    for col, mode in covariates.items():
        frame = table if mode == "known" else history
        check(
            "missing_covariate",
            col,
            frame[col].isna(),
            "the source lacks these keys/weeks (or set fill: for the covariate)",
            frame,
        )
    check(
        "range",
        "units",
        history["units"] < 0,
        "negative demand after netting returns: returns exceed shipments",
        history,
    )
    check(
        "range",
        "units",
        history["units"] > max_units,
        f"above data.max_units={max_units:g}",
        history,
    )
    for col, (low, high) in (RANGES | dict(ranges or {})).items():
        if col not in table:
            continue
        values = table[col]
        bad = (values < low if low is not None else False) | (
            values > high if high is not None else False
        )
        check(
            "range",
            col,
            pd.Series(bad, index=table.index).fillna(False),
            f"{col} outside [{low}, {high}]",
        )
    start = WEEKDAYS.index(week_starts)
    check(
        "date_range",
        "week",
        table["week"].dt.day_of_week != start,
        f"weeks must start on a {week_starts} (data.week_starts)",
    )
    check(
        "date_range",
        "week",
        table["week"] < pd.Timestamp(earliest_week),
        f"week before data.earliest_week={earliest_week}",
    )
    gaps = history["units"].isna()
    if len(history) and gaps.mean() > max_missing_week_share:
        check(
            "missing_weeks",
            "units",
            gaps,
            "store x product x weeks without shipments: a store's export lacks those weeks "
            f"(allowed share: data.max_missing_week_share={max_missing_week_share:.1%})",
            history,
        )
    return check.findings + _freshness(table, as_of, max_age_days)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


def render_markdown(findings: list[Finding], summary: dict) -> str:
    """A human-readable report: a summary table, then each finding with example rows."""
    lines = ["# Data validation report", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in summary.items()]
    lines += [
        "",
        f"**{'FAILED' if has_errors(findings) else 'PASSED'}**: {len(findings)} finding(s)",
        "",
    ]
    for f in findings:
        source = f.source or "the table"
        lines.append(f"- **{f.severity} / {f.check}** in `{f.column}` (from {source}): {f.message}")
        lines += [f"  - {row}" for row in f.rows]
    return "\n".join(lines) + "\n"


def _last_actual_week(table: pd.DataFrame) -> pd.Timestamp:
    """The last week in which any store reported shipments; later rows are the forecast horizon."""
    return table.loc[table["units"].notna(), "week"].max()


def _types(table: pd.DataFrame, covariates: Mapping[str, str]) -> list[Finding]:
    findings = []
    if missing := [c for c in covariates if c not in table.columns]:
        findings.append(Finding("schema", ", ".join(missing), "covariate column(s) missing"))
        return findings
    if not pd.api.types.is_datetime64_any_dtype(table["week"]):
        findings.append(
            Finding("schema", "week", f"week must be a date, found {table['week'].dtype}")
        )
    for col in (*NUMERIC, *covariates):
        if col in table and not pd.api.types.is_numeric_dtype(table[col]):
            findings.append(
                Finding("schema", col, f"{col} must be numeric, found {table[col].dtype}")
            )
    for col in TEXT:
        if col in table and pd.api.types.is_numeric_dtype(table[col]):
            findings.append(Finding("schema", col, f"{col} must be text, found {table[col].dtype}"))
    return findings


class _Checker:
    """Collects a :class:`Finding` for each check whose mask flags any row."""

    def __init__(self, table: pd.DataFrame, sources: Mapping[str, str]) -> None:
        self.table = table
        self.sources = sources
        self.findings: list[Finding] = []

    def __call__(self, check: str, column: str, mask, message: str, frame=None) -> None:
        frame = self.table if frame is None else frame
        count = int(mask.sum())
        if count:
            cols = list(dict.fromkeys(c for c in (*KEY, column) if c in frame.columns))
            # pandas 3 keeps NaN through astype(str); the JSON report needs strings
            rows = frame.loc[mask, cols].head(5).astype(str).fillna("nan").to_dict("records")
            source = self.sources.get(column, "")
            self.findings.append(
                Finding(check, column, f"{count} row(s): {message}", rows, source=source)
            )


def _freshness(table: pd.DataFrame, as_of: dt.date, max_age_days: int) -> list[Finding]:
    last = _last_actual_week(table)
    if pd.isna(last):
        return [Finding("freshness", "units", "no week has any shipments")]
    week_end = (last + pd.Timedelta(days=6)).date()
    if week_end > as_of:
        message = f"shipments dated after the as-of date {as_of}: the last week ends {week_end}"
        return [Finding("freshness", "week", message)]
    age = (as_of - week_end).days
    if age > max_age_days:
        message = (
            f"the newest shipments end {week_end}, {age} days before {as_of} (allowed: "
            f"data.max_age_days={max_age_days}): deliver a fresh export, or pass --as-of "
            "(a historical export: set data.as_of to the Monday after it ends)"
        )
        return [Finding("freshness", "week", message)]
    return []
