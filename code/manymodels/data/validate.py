"""Checks on the standard table: schema, types, ranges, duplicates, gaps, unknown keys, freshness.

:func:`validate` returns every finding, not just the first, so one run tells a data engineer all
that is wrong. Each finding names the check, the column, the raw source the column comes from,
and up to five offending rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

import pandas as pd

from manymodels.data.condition import SCHEMA, STANDARD_COLUMNS

__all__ = ["SOURCE_OF", "Finding", "has_errors", "render_markdown", "validate"]

KEY = ["store_id", "product_id", "week"]
NUMERIC = tuple(c for c, kind in SCHEMA.items() if kind == "number")
TEXT = tuple(c for c, kind in SCHEMA.items() if kind == "text")
COVARIATES = ("temp_f", "precip_in", "median_income", "household_size", "share_age_65_plus")
SOURCE_OF = {
    "week": "shipments.csv",
    "shipped": "shipments.csv",
    "units": "shipments.csv - returns.jsonl",
    "returns": "returns.jsonl",
    "region": "stores.csv",
    "store_type": "stores.csv",
    "store_format": "stores.csv",
    "zip_code": "stores.csv",
    "category": "products.csv",
    "temp_f": "weather.csv",
    "precip_in": "weather.csv",
    "median_income": "demographics.parquet",
    "household_size": "demographics.parquet",
    "share_age_65_plus": "demographics.parquet",
}
RANGES = {
    "temp_f": (-80.0, 135.0),
    "precip_in": (0.0, 40.0),
    "returns": (0.0, None),
    "shipped": (0.0, None),
}


@dataclass(frozen=True)
class Finding:
    check: str
    column: str
    message: str
    rows: list[dict] = field(default_factory=list)
    severity: str = "error"

    def as_dict(self) -> dict:
        return asdict(self) | {"source": SOURCE_OF.get(self.column, "conditioned table")}


def validate(
    table: pd.DataFrame,
    as_of: dt.date,
    *,
    earliest_week: dt.date = dt.date(2017, 1, 2),
    max_units: float = 100_000,
    max_age_days: int = 30,
    max_missing_week_share: float = 0.0,
) -> list[Finding]:
    """All findings on ``table`` judged on date ``as_of``; an empty list means the data is good."""
    missing = [c for c in STANDARD_COLUMNS if c not in table.columns]
    if missing:
        return [
            Finding("schema", ", ".join(missing), f"missing column(s) {missing}: re-run condition")
        ]
    if found := _types(table):
        return found
    known = table["units"].notna()
    history = table[table["week"] <= table.loc[known, "week"].max()] if known.any() else table
    check = _Checker(table)
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
        "store ids missing from the store master: add them to stores.csv or drop their rows",
    )
    check(
        "unknown_product",
        "category",
        table["category"].isna(),
        "product ids missing from the product master: add them to products.csv",
    )
    for col in COVARIATES:
        check(
            "missing_covariate", col, table[col].isna(), f"{SOURCE_OF[col]} lacks these keys/weeks"
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
    for col, (low, high) in RANGES.items():
        bad = (table[col] < low) | ((table[col] > high) if high is not None else False)
        check("range", col, bad.fillna(False), f"{col} outside [{low}, {high}]")
    check("date_range", "week", table["week"].dt.day_of_week != 0, "weeks must start on a Monday")
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
        source = SOURCE_OF.get(f.column, "the table")
        lines.append(f"- **{f.severity} / {f.check}** in `{f.column}` (from {source}): {f.message}")
        lines += [f"  - {row}" for row in f.rows]
    return "\n".join(lines) + "\n"


def _last_actual_week(table: pd.DataFrame) -> pd.Timestamp:
    """The last week in which any store reported shipments; later rows are the forecast horizon."""
    return table.loc[table["units"].notna(), "week"].max()


def _types(table: pd.DataFrame) -> list[Finding]:
    findings = []
    if not pd.api.types.is_datetime64_any_dtype(table["week"]):
        findings.append(
            Finding("schema", "week", f"week must be a date, found {table['week'].dtype}")
        )
    for col in NUMERIC:
        if not pd.api.types.is_numeric_dtype(table[col]):
            findings.append(
                Finding("schema", col, f"{col} must be numeric, found {table[col].dtype}")
            )
    for col in TEXT:
        if pd.api.types.is_numeric_dtype(table[col]):
            findings.append(Finding("schema", col, f"{col} must be text, found {table[col].dtype}"))
    return findings


class _Checker:
    """Collects a :class:`Finding` for each check whose mask flags any row."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table
        self.findings: list[Finding] = []

    def __call__(self, check: str, column: str, mask, message: str, frame=None) -> None:
        frame = self.table if frame is None else frame
        count = int(mask.sum())
        if count:
            cols = list(dict.fromkeys(c for c in (*KEY, column) if c in frame.columns))
            # pandas 3 keeps NaN through astype(str); the JSON report needs strings
            rows = frame.loc[mask, cols].head(5).astype(str).fillna("nan").to_dict("records")
            self.findings.append(Finding(check, column, f"{count} row(s): {message}", rows))


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
            f"data.max_age_days={max_age_days}): deliver a fresh export, or pass --as-of"
        )
        return [Finding("freshness", "week", message)]
    return []
