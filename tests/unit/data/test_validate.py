"""Validation: one corrupted copy of the conditioned sample per kind of finding."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from manymodels.data.validate import Finding, has_errors, render_markdown, source_of, validate

# one history row and its key, as the report's example rows spell them
STORE, PRODUCT, WEEK = "S0002", "P004", "2017-03-06"


@pytest.fixture
def run(as_of, settings, condition_stats):
    """``validate`` on the sample's fresh date unless told otherwise, as the step calls it."""
    step = {
        "covariates": condition_stats["covariates"],
        "ranges": {c.name: (c.min, c.max) for s in settings.sources for c in s.covariates},
        "sources": source_of(settings.sources),
        "max_units": 100_000,
    }

    def run_validate(table: pd.DataFrame, **kwargs) -> list[Finding]:
        return validate(table, kwargs.pop("as_of", as_of), **(step | kwargs))

    return run_validate


def at(table: pd.DataFrame, store=STORE, product=PRODUCT, week=WEEK) -> pd.Series:
    mask = (
        (table["store_id"] == store)
        & (table["product_id"] == product)
        & (table["week"] == pd.Timestamp(week))
    )
    assert mask.sum() == 1
    return mask


def only(findings: list[Finding], check: str, column: str) -> Finding:
    """The single finding of ``check`` on ``column``; fails when there is none or more."""
    matching = [f for f in findings if (f.check, f.column) == (check, column)]
    assert len(matching) == 1, [f.as_dict() for f in findings]
    return matching[0]


def names(finding: Finding, store=STORE, product=PRODUCT, week=WEEK) -> bool:
    """Whether an example row of ``finding`` is the given store x product x week."""
    key = {"store_id": store, "product_id": product, "week": week}
    return any(all(row.get(k) == v for k, v in key.items()) for row in finding.rows)


def test_the_clean_sample_passes(table, run):
    assert run(table) == []
    assert not has_errors([])


def test_duplicate_keys(table, run):
    corrupt = pd.concat([table, table[at(table)].assign(shipped=1.0)], ignore_index=True)
    finding = only(run(corrupt), "duplicates", "week")
    assert finding.message.startswith("2 row(s): ")
    assert names(finding)
    assert len(run(corrupt)) == 1


def test_a_store_missing_from_the_store_master(table, run):
    rows = table["store_id"] == STORE
    stores = ["region", "store_type", "store_format", "zip_code"]
    table.loc[rows, "store_id"] = "S9999"
    table.loc[rows, stores] = np.nan
    finding = only(run(table), "unknown_store", "region")
    assert finding.message.startswith(f"{int(rows.sum())} row(s): ")
    assert "store master" in finding.message
    assert all(row["store_id"] == "S9999" for row in finding.rows)
    assert finding.as_dict()["source"] == "source 'stores' (stores.csv)"


def test_a_product_missing_from_the_product_master(table, run):
    rows = table["product_id"] == PRODUCT
    table.loc[rows, "product_id"] = "P999"
    table.loc[rows, "category"] = np.nan
    finding = only(run(table), "unknown_product", "category")
    assert finding.source == "source 'products' (products.csv)"
    assert names(finding, store="S0001", product="P999", week="2017-01-09")


@pytest.mark.parametrize(
    ("column", "source"),
    [
        ("tmax_f", "source 'weather' (weather.csv)"),
        ("precip_in", "source 'weather' (weather.csv)"),
        ("median_income", "source 'demographics' (demographics.parquet)"),
        ("share_age_65_plus", "source 'demographics' (demographics.parquet)"),
    ],
)
def test_a_missing_covariate(table, run, column, source):
    table.loc[at(table), column] = np.nan
    finding = only(run(table), "missing_covariate", column)
    assert finding.message.startswith("1 row(s): the source lacks these keys/weeks")
    assert finding.source == source
    assert names(finding)
    assert finding.rows[0][column] == "nan"


def test_a_missing_covariate_in_a_future_row_counts_if_known_in_advance(table, run):
    future = table["week"] > table.loc[table["units"].notna(), "week"].max()
    assert table.loc[future, "tmax_f"].isna().all()  # weather is not known in advance: fine
    table.loc[future.idxmax(), "median_income"] = np.nan
    only(run(table), "missing_covariate", "median_income")


def test_negative_units_after_returns(table, run):
    row = at(table)
    table.loc[row, "returns"] = table.loc[row, "shipped"] + 5
    table.loc[row, "units"] = -5.0
    finding = only(run(table), "range", "units")
    assert "returns exceed shipments" in finding.message
    assert names(finding)
    assert finding.rows[0]["units"] == "-5.0"


def test_units_above_the_maximum(table, run):
    row = at(table)
    table.loc[row, ["shipped", "units"]] = 250_000.0
    finding = only(run(table), "range", "units")
    assert "above data.max_units=100000" in finding.message
    assert names(finding)
    assert run(table, max_units=300_000) == []


@pytest.mark.parametrize(
    ("column", "value"),
    [("tmax_f", 150.0), ("tmin_f", -99.0), ("precip_in", -0.5), ("shipped", -1.0)],
)
def test_a_value_outside_its_range(table, run, column, value):
    table.loc[at(table), column] = value
    finding = only(run(table), "range", column)
    assert f"{column} outside [" in finding.message
    assert names(finding)


def test_a_week_that_is_not_a_monday(table, run):
    row = at(table)
    table.loc[row, "week"] = pd.Timestamp(WEEK) + pd.Timedelta(days=2)
    finding = only(run(table), "date_range", "week")
    assert "must start on a monday (data.week_starts)" in finding.message
    assert names(finding, week="2017-03-08")


def test_a_week_before_the_earliest_week(table, run):
    first = table["week"].min()
    row = table.index[table["week"] == first][0]
    table.loc[row, "week"] = pd.Timestamp("2016-12-26")
    finding = only(run(table, earliest_week=dt.date(2017, 1, 2)), "date_range", "week")
    assert "before data.earliest_week=2017-01-02" in finding.message
    assert finding.rows[0]["week"] == "2016-12-26"
    # a later earliest_week flags the whole first week too (plus the row moved above)
    cut = first + pd.Timedelta(weeks=1)
    before = int((table["week"] < cut).sum())
    later = only(run(table, earliest_week=cut.date()), "date_range", "week")
    assert later.message.startswith(f"{before} row(s): week before")


def test_a_store_export_lacking_weeks(raw_dir, run, conditioner):
    ship = pd.read_csv(raw_dir / "shipments.csv", dtype=str, keep_default_na=False)
    week = pd.to_datetime(ship["Week Start"], format="mixed")
    lacking = (ship["Store"] == STORE) & week.between("2017-03-06", "2017-03-13")
    ship[~lacking].to_csv(raw_dir / "shipments.csv", index=False)
    table, _ = conditioner(raw_dir)
    finding = only(run(table), "missing_weeks", "units")
    lacking = table[
        (table["store_id"] == STORE) & table["week"].between("2017-03-06", "2017-03-13")
    ]
    assert finding.message.startswith(f"{len(lacking)} row(s): ")  # its series x 2 weeks
    assert {row["store_id"] for row in finding.rows} == {STORE}
    assert {row["week"] for row in finding.rows} <= {"2017-03-06", "2017-03-13"}
    assert all(row["units"] == "nan" for row in finding.rows)
    json.dumps(finding.as_dict(), allow_nan=False)  # the JSON report stays strict JSON
    assert run(table, max_missing_week_share=0.05) == []


def test_stale_data(table, run):
    finding = only(run(table, as_of=dt.date(2018, 6, 1)), "freshness", "week")
    assert "the newest shipments end 2018-02-25" in finding.message
    assert "data.max_age_days=30" in finding.message
    assert run(table, as_of=dt.date(2018, 6, 1), max_age_days=100) == []


def test_shipments_after_the_as_of_date(table, run):
    finding = only(run(table, as_of=dt.date(2018, 2, 21)), "freshness", "week")
    assert "after the as-of date 2018-02-21" in finding.message


def test_no_shipments_at_all(table, run):
    table[["shipped", "returns", "units"]] = np.nan
    finding = only(run(table), "freshness", "units")
    assert "no week has any shipments" in finding.message


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("units", lambda s: s.astype(str), "units must be numeric"),
        ("week", lambda s: s.dt.strftime("%Y-%m-%d"), "week must be a date"),
        ("store_id", lambda s: s.str[1:].astype(int), "store_id must be text"),
    ],
)
def test_a_column_of_the_wrong_type(table, run, column, value, message):
    table[column] = value(table[column])
    findings = run(table)
    assert [(f.check, f.column) for f in findings] == [("schema", column)]
    assert message in findings[0].message


def test_a_missing_column(table, run):
    findings = run(table.drop(columns=["speed"]))
    assert len(findings) == 1
    assert (findings[0].check, findings[0].column) == ("schema", "speed")
    assert "re-run condition" in findings[0].message
    findings = run(table.drop(columns=["tmax_f"]))
    assert [(f.check, f.column) for f in findings] == [("schema", "tmax_f")]


def test_every_problem_is_reported_in_one_run(table, run):
    table.loc[at(table), "tmax_f"] = 200.0
    table.loc[at(table, week="2017-04-03"), "median_income"] = np.nan
    findings = run(table, as_of=dt.date(2019, 1, 1))
    assert {(f.check, f.column) for f in findings} == {
        ("range", "tmax_f"),
        ("missing_covariate", "median_income"),
        ("freshness", "week"),
    }


def test_render_markdown_lists_the_summary_and_each_finding(table, run):
    table.loc[at(table), "tmax_f"] = 150.0
    findings = run(table)
    text = render_markdown(findings, {"file": "demand.parquet", "rows": len(table)})
    assert text.startswith("# Data validation report\n")
    assert "| file | demand.parquet |" in text
    assert f"| rows | {len(table)} |" in text
    assert "**FAILED**: 1 finding(s)" in text
    assert (
        "- **error / range** in `tmax_f` (from source 'weather' (weather.csv)): 1 row(s): "
        "tmax_f outside" in text
    )
    assert f"'store_id': '{STORE}'" in text
    assert f"'week': '{WEEK}'" in text
    assert "**PASSED**: 0 finding(s)" in render_markdown([], {"rows": 1})


def test_warnings_alone_are_not_errors():
    warning = Finding("freshness", "week", "old", severity="warning")
    assert not has_errors([warning])
    assert has_errors([warning, Finding("range", "units", "bad")])
    assert "**PASSED**: 1 finding(s)" in render_markdown([warning], {})
    assert Finding("schema", "x, y", "m").as_dict()["source"] == "conditioned table"
    assert dataclasses.asdict(warning).keys() <= warning.as_dict().keys()
