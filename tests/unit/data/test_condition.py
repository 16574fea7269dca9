"""Conditioning: the standard table from the raw sample, and errors that point at the bad input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pandas as pd
import pytest
import yaml

from manymodels.data.condition import (
    STANDARD_COLUMNS,
    ConditioningError,
    condition,
    data_version,
    read_raw,
)
from manymodels.data.mock import RAW_FILES
from manymodels.data.partition import assign_speed

COVARIATES = ["temp_f", "precip_in", "events", "median_income", "household_size",
              "share_age_65_plus", "region", "store_format", "category", "speed"]  # fmt: skip


@pytest.fixture(scope="module")
def raw(sample_raw):
    return read_raw(sample_raw)


def history_of(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["week"] <= table.loc[table["units"].notna(), "week"].max()]


def future_of(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["week"] > table.loc[table["units"].notna(), "week"].max()]


def raw_shipments(raw) -> pd.DataFrame:
    """The raw shipment rows parsed independently of the code under test."""
    ship = raw.shipments.drop_duplicates()
    return pd.DataFrame(
        {
            "week": pd.to_datetime(ship["Week Start"], format="mixed"),
            "store_id": ship["Store"],
            "product_id": ship["SKU"],
            "expected": ship["Units Shipped"].str.replace(",", "").astype(float),
        }
    )


# --- a clean run on the sample -----------------------------------------------------------


def test_the_table_has_the_standard_columns_one_row_per_key(table):
    assert tuple(table.columns) == STANDARD_COLUMNS
    assert not table.duplicated(["store_id", "product_id", "week"]).any()
    assert table.equals(table.sort_values(["store_id", "product_id", "week"], ignore_index=True))
    assert pd.api.types.is_datetime64_any_dtype(table["week"])
    assert (table["week"].dt.day_of_week == 0).all()
    series = table.groupby(["store_id", "product_id"]).size()
    assert series.nunique() == 1  # a full grid: every series has every week


def test_shipments_are_parsed_whatever_their_date_or_number_format(table, raw):
    expected = raw_shipments(raw)
    assert (raw.shipments["Week Start"].str.contains("/")).any()  # the sample has US dates
    merged = expected.merge(table, how="left", on=["week", "store_id", "product_id"])
    assert len(merged) == len(expected)
    assert (merged["shipped"] == merged["expected"]).all()


def test_future_rows_have_covariates_but_no_units(table, settings):
    future = future_of(table)
    horizon = settings.data.horizon_weeks
    assert future["week"].nunique() == horizon
    assert len(future) == horizon * table.groupby(["store_id", "product_id"]).ngroups
    assert future[["shipped", "returns", "units"]].isna().all().all()
    assert future[COVARIATES].notna().all().all()
    assert history_of(table)[COVARIATES].notna().all().all()


def test_returns_are_netted_from_shipments(table, raw):
    history = history_of(table)
    known = history["units"].notna()
    assert (history["returns"] > 0).any()
    assert (history.loc[known, "units"] == (history["shipped"] - history["returns"])[known]).all()
    assert table["returns"].sum() == pd.to_numeric(raw.returns["qty"]).sum()


def test_duplicates_are_dropped_and_zero_weeks_filled(table, raw, condition_stats):
    duplicates = int(raw.shipments.duplicated().sum())
    assert duplicates > 0  # the sample carries re-sent rows
    assert condition_stats == {
        "raw_shipment_rows": len(raw.shipments),
        "duplicates_dropped": duplicates,
        "zero_weeks_filled": int((table["shipped"] == 0).sum()),
    }
    assert condition_stats["zero_weeks_filled"] > 0
    assert int((table["shipped"] > 0).sum()) == len(raw.shipments) - duplicates


def test_speed_follows_the_partition_rule(table):
    assert (table["speed"] == assign_speed(table, 0.3)).all()
    assert set(table["speed"]) == {"slow", "fast"}
    assert table.groupby("product_id")["speed"].nunique().eq(1).all()


def test_events_count_in_their_week_and_regions(table, sample_raw):
    events = yaml.safe_load((sample_raw / "events.yaml").read_text())["events"]
    expected = {}
    for event in events:
        date = dt.date.fromisoformat(event["date"])
        monday = pd.Timestamp(date - dt.timedelta(days=date.weekday()))
        scope = table["region"].unique() if event["regions"] == "all" else event["regions"]
        for region in scope:
            expected[region, monday] = expected.get((region, monday), 0) + 1
    got = table.groupby(["region", "week"])["events"].first()
    assert got[got > 0].to_dict() == expected


def test_observed_weather_replaces_the_forecast_for_the_same_day(raw, table):
    first = raw.weather.iloc[[0]].assign(kind="forecast", tmax_f="500", tmin_f="400")
    weather = pd.concat([first, raw.weather, first], ignore_index=True)
    again, _ = condition(dataclasses.replace(raw, weather=weather))
    pd.testing.assert_frame_equal(again, table)


def test_demographics_and_masters_are_joined_per_store(table, raw):
    demo = table.groupby("store_id")["median_income"].first()
    expected = raw.demographics.set_index("store_id")["median_income"]
    assert demo.to_dict() == expected.to_dict()
    formats = table.groupby("store_type")["store_format"].first().to_dict()
    assert formats == {"supermarket": "large", "pharmacy": "small"}


def test_horizon_weeks_sets_the_future_rows(raw):
    table, _ = condition(raw, horizon_weeks=2)
    assert future_of(table)["week"].nunique() == 2


def test_an_event_scoped_to_one_region_by_name_counts_only_there(raw):
    events = [{"name": "Rodeo", "date": "2017-03-08", "regions": "South Texas"}]
    table, _ = condition(dataclasses.replace(raw, events=events))
    week = table[table["week"] == pd.Timestamp("2017-03-06")]
    assert week.groupby("region")["events"].max().to_dict() == {"North Texas": 0, "South Texas": 1}
    assert table["events"].sum() == len(week[week["region"] == "South Texas"])


def test_no_events_at_all_is_fine(raw):
    table, _ = condition(dataclasses.replace(raw, events=[]))
    assert (table["events"] == 0).all()


def test_data_version_is_a_content_hash(table, raw):
    again, _ = condition(raw)
    assert data_version(again) == data_version(table)
    assert len(data_version(table)) == 16
    changed = table.copy()
    changed.loc[0, "temp_f"] += 0.1
    assert data_version(changed) != data_version(table)
    assert data_version(table.rename(columns={"temp_f": "t"})) != data_version(table)


# --- corrupted copies of the sample ---------------------------------------------------------


def edit_csv(path, line: int, column: str, value: str) -> None:
    """Set ``column`` on file line ``line`` (1-based; line 1 is the header) of a CSV."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[line - 2, column] = value
    frame.to_csv(path, index=False)


def edit_jsonl(path, line: int, column: str, value) -> None:
    lines = path.read_text().splitlines()
    record = json.loads(lines[line - 1])
    record[column] = value
    lines[line - 1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("where", "value", "problem"),
    [
        (("shipments.csv", "Week Start", 5), "2017-02-30", "neither YYYY-MM-DD nor MM/DD/YYYY"),
        (("shipments.csv", "Week Start", 7), "2017-01-03", "must be a Monday"),
        (("shipments.csv", "Units Shipped", 9), "12a", "non-numeric quantities"),
        (("returns.jsonl", "return_date", 3), "yesterday", "neither YYYY-MM-DD"),
        (("returns.jsonl", "qty", 4), "two", "non-numeric quantities"),
        (("weather.csv", "date", 11), "2017/01/12", "neither YYYY-MM-DD"),
        (("weather.csv", "tmax_f", 12), "hot", "non-numeric quantities"),
        (("stores.csv", "store_type", 3), "kiosk", "unknown values"),
    ],
)
def test_a_bad_value_names_the_file_column_and_line(raw_dir, where, value, problem):
    source, column, line = where
    path = raw_dir / source
    (edit_jsonl if source.endswith(".jsonl") else edit_csv)(path, line, column, value)
    assert value in path.read_text().splitlines()[line - 1]  # the line the message must name
    with pytest.raises(ConditioningError, match=problem) as err:
        condition(read_raw(raw_dir))
    message = str(err.value)
    assert message.startswith(f"{source}: ")
    assert f"'{column}'" in message
    assert f"row {line}: " in message
    if problem != "must be a Monday":  # that one shows the parsed date
        assert f"row {line}: {value!r}" in message


@pytest.mark.parametrize(
    ("source", "column"),
    [
        ("shipments.csv", "SKU"),
        ("weather.csv", "kind"),
        ("returns.jsonl", "qty"),
        ("stores.csv", "zip_code"),
        ("products.csv", "category"),
    ],
)
def test_a_missing_column_is_named_with_its_file(raw_dir, source, column):
    path = raw_dir / source
    if source.endswith(".jsonl"):
        frame = pd.read_json(path, lines=True).drop(columns=column)
        frame.to_json(path, orient="records", lines=True)
    else:
        pd.read_csv(path, dtype=str).drop(columns=column).to_csv(path, index=False)
    with pytest.raises(ConditioningError, match=rf"^{source}: missing column\(s\) \['{column}'\]"):
        condition(read_raw(raw_dir))


@pytest.mark.parametrize("name", RAW_FILES)
def test_a_missing_raw_file_is_named(raw_dir, name):
    (raw_dir / name).unlink()
    with pytest.raises(ConditioningError, match=f"lacks {name}: run `manymodels mock"):
        read_raw(raw_dir)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("demographics.parquet", "not parquet", "could not be read"),
        ("events.yaml", "events: [unclosed", "could not be read"),
        ("events.yaml", "- a list\n- not a mapping\n", "expected a list under 'events:'"),
        ("events.yaml", "events: {name: x}\n", "expected a list under 'events:'"),
        ("returns.jsonl", "{not json\n", "could not be read"),
    ],
)
def test_an_unreadable_raw_file_is_named(raw_dir, name, content, problem):
    (raw_dir / name).write_text(content)
    with pytest.raises(ConditioningError, match=problem) as err:
        read_raw(raw_dir)
    assert str(raw_dir / name) in str(err.value)


@pytest.mark.parametrize(
    "event",
    [
        {"name": "Store Anniversary", "regions": "all"},
        {"name": "Store Anniversary", "date": "2017-02-30"},
        {"name": "Store Anniversary", "date": None},
    ],
)
def test_an_event_without_a_valid_date_is_named(raw_dir, event):
    path = raw_dir / "events.yaml"
    events = yaml.safe_load(path.read_text())["events"] + [event]
    path.write_text(yaml.safe_dump({"events": events}))
    with pytest.raises(ConditioningError, match=f"^events.yaml: event #{len(events)} ") as err:
        condition(read_raw(raw_dir))
    assert "Store Anniversary" in str(err.value)
    assert "needs a date" in str(err.value)


def test_an_empty_events_file_means_no_events(raw_dir):
    (raw_dir / "events.yaml").write_text("events:\n")
    assert read_raw(raw_dir).events == []
