"""Conditioning: the standard table from the raw sample as pipelines/data.yaml declares it, the
series lifecycle, and errors that point at the bad input (source, column and rows)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pandas as pd
import pytest
import yaml

from manymodels.config import CovariateSettings, SourceSettings
from manymodels.data.condition import (
    STANDARD_COLUMNS,
    ConditioningError,
    condition,
    data_version,
)
from manymodels.data.partition import assign_speed
from manymodels.data.sources import SourceError, read_sources

COVARIATES = ["events", "tmax_f", "tmin_f", "precip_in", "median_income", "household_size",
              "share_age_65_plus"]  # fmt: skip
KNOWN = ["events", "median_income", "household_size", "share_age_65_plus", "region",
         "store_format", "category", "speed"]  # fmt: skip


@pytest.fixture(scope="module")
def raw(sample_raw):
    return pd.read_csv(sample_raw / "shipments.csv", dtype=str, keep_default_na=False)


def history_of(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["week"] <= table.loc[table["units"].notna(), "week"].max()]


def future_of(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["week"] > table.loc[table["units"].notna(), "week"].max()]


def raw_shipments(ship: pd.DataFrame) -> pd.DataFrame:
    """The raw shipment rows parsed independently of the code under test."""
    ship = ship.drop_duplicates()
    return pd.DataFrame(
        {
            "week": pd.to_datetime(ship["Week Start"], format="mixed"),
            "store_id": ship["Store"],
            "product_id": ship["SKU"],
            "expected": ship["Units Shipped"].str.replace(",", "").astype(float),
        }
    )


def run(settings, raw_dir, **data):
    """Condition ``raw_dir`` with the repository's sources and ``data`` settings overridden."""
    d = dataclasses.replace(settings.data, **data)
    return condition(read_sources(settings.sources, str(raw_dir)), d, 0.3, 8)


def with_sources(settings, *changed: SourceSettings):
    """The settings with the named sources replaced (or added)."""
    by_name = {s.name: s for s in settings.sources} | {s.name: s for s in changed}
    return dataclasses.replace(settings, sources=tuple(by_name.values()))


def source(settings, name: str) -> SourceSettings:
    return next(s for s in settings.sources if s.name == name)


# --- a clean run on the sample -----------------------------------------------------------


def test_the_table_has_the_standard_columns_one_row_per_key(table):
    assert tuple(table.columns) == (*STANDARD_COLUMNS, *COVARIATES)
    assert not table.duplicated(["store_id", "product_id", "week"]).any()
    assert table.equals(table.sort_values(["store_id", "product_id", "week"], ignore_index=True))
    assert pd.api.types.is_datetime64_any_dtype(table["week"])
    assert (table["week"].dt.day_of_week == 0).all()


def test_a_series_starts_at_its_first_sale(table, raw):
    first_sale = raw_shipments(raw).groupby(["store_id", "product_id"])["week"].min()
    first_row = table.groupby(["store_id", "product_id"])["week"].min()
    pd.testing.assert_series_equal(first_row, first_sale, check_names=False, check_dtype=False)


def test_shipments_are_parsed_whatever_their_date_or_number_format(table, raw):
    expected = raw_shipments(raw)
    assert (raw["Week Start"].str.contains("/")).any()  # the sample has US dates
    merged = expected.merge(table, how="left", on=["week", "store_id", "product_id"])
    assert len(merged) == len(expected)
    assert (merged["shipped"] == merged["expected"]).all()


def test_future_rows_carry_only_what_is_known_in_advance(table, settings, condition_stats):
    future = future_of(table)
    horizon = settings.data.horizon_weeks
    active = table.groupby(["store_id", "product_id"]).ngroups
    active -= condition_stats["discontinued_series"]["count"]
    assert future["week"].nunique() == horizon
    assert len(future) == horizon * active
    assert future[["shipped", "returns", "units"]].isna().all().all()
    assert future[KNOWN].notna().all().all()
    # weather is not known in advance: the mock's forecast rows are not used
    assert future[["tmax_f", "tmin_f", "precip_in"]].isna().all().all()
    assert history_of(table)[COVARIATES].notna().all().all()


def test_returns_are_netted_from_shipments(table, sample_raw):
    history = history_of(table)
    known = history["units"].notna()
    assert (history["returns"] > 0).any()
    assert (history.loc[known, "units"] == (history["shipped"] - history["returns"])[known]).all()
    returns = pd.read_json(sample_raw / "returns.jsonl", lines=True)
    assert table["returns"].sum() <= returns["qty"].sum()  # before a series' first sale: none


def test_duplicates_are_dropped_and_zero_weeks_filled(table, raw, condition_stats):
    duplicates = int(raw.duplicated().sum())
    assert duplicates > 0  # the sample carries re-sent rows
    assert condition_stats["raw_shipment_rows"] == len(raw)
    assert condition_stats["duplicates_dropped"] == duplicates
    assert condition_stats["zero_weeks_filled"] == int((table["shipped"] == 0).sum()) > 0
    assert int((table["shipped"] > 0).sum()) == len(raw) - duplicates


def test_speed_is_decided_on_the_training_window_only(table, condition_stats):
    cutoff = pd.Timestamp(condition_stats["speed_decided_until"])
    assert cutoff == table.loc[table["units"].notna(), "week"].max() - pd.Timedelta(weeks=8)
    window = table.assign(units=table["units"].where(table["week"] <= cutoff))
    assert (table["speed"] == assign_speed(window, 0.3)).all()
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


def test_demographics_and_masters_are_joined_per_store(table, sample_raw):
    demo = table.groupby("store_id")["median_income"].first()
    expected = pd.read_parquet(sample_raw / "demographics.parquet")
    assert demo.to_dict() == expected.set_index("store_id")["median_income"].to_dict()
    formats = table.groupby("store_type")["store_format"].first().to_dict()
    assert formats == {"supermarket": "large", "pharmacy": "small"}


def test_horizon_weeks_sets_the_future_rows(settings, sample_raw):
    table, _ = run(settings, sample_raw, horizon_weeks=2)
    assert future_of(table)["week"].nunique() == 2


def test_a_series_without_recent_sales_is_discontinued_and_not_forecast(settings, sample_raw):
    table, stats = run(settings, sample_raw, discontinued_after_weeks=2)
    gone = stats["discontinued_series"]
    assert gone["count"] > 0
    store, product = gone["first"][0].split("/")
    series = table[(table["store_id"] == store) & (table["product_id"] == product)]
    assert series["units"].notna().all()  # its history stays for training; no future rows


def test_new_series_are_reported(settings, sample_raw):
    _, stats = run(settings, sample_raw, min_history_weeks=1000)
    assert stats["new_series"]["count"] == stats["series"]


def test_without_optional_sources_only_sales_are_needed(settings, sample_raw):
    only_sales = dataclasses.replace(settings, sources=(source(settings, "sales"),))
    table, stats = run(only_sales, sample_raw)
    assert stats["covariates"] == {}
    assert set(table["region"]) == {"all"} and set(table["store_format"]) == {"all"}
    assert set(table["category"]) == {"all"}
    assert (table["returns"].dropna() == 0).all()


def test_daily_sales_sum_into_weeks_starting_on_any_day(settings, tmp_path):
    days = pd.date_range("2024-01-01", periods=28, freq="D")  # Monday .. Sunday x 4
    pd.DataFrame(
        {"day": days.strftime("%d.%m.%Y"), "shop": "A", "item": "x", "qty": range(28)}
    ).to_csv(tmp_path / "daily.csv", index=False)
    sales = SourceSettings(
        name="sales",
        kind="sales",
        path="daily.csv",
        columns={"store_id": "shop", "product_id": "item", "date": "day", "quantity": "qty"},
        date_formats=("%d.%m.%Y",),
        frequency="daily",
    )
    settings = dataclasses.replace(settings, sources=(sales,))
    table, _ = run(settings, tmp_path, week_starts="thursday", horizon_weeks=1)
    history = history_of(table)
    assert (table["week"].dt.day_name() == "Thursday").all()
    assert history["week"].min() == pd.Timestamp("2023-12-28")  # the week of Monday Jan 1
    # Mon..Wed of the first week, three full weeks, Thu..Sun of the last
    assert history["units"].tolist() == [0 + 1 + 2, 42, 91, 140, 24 + 25 + 26 + 27]


def test_weekly_dates_may_name_the_week_end(settings, tmp_path):
    fridays = pd.date_range("2024-01-05", periods=3, freq="7D")
    pd.DataFrame({"d": fridays.strftime("%F"), "s": 1, "p": 2, "q": 5}).to_csv(
        tmp_path / "w.csv", index=False
    )
    sales = SourceSettings(
        name="sales",
        kind="sales",
        path="w.csv",
        columns={"store_id": "s", "product_id": "p", "date": "d", "quantity": "q"},
        week_date="end",
        quantity_scale=0.5,
    )
    settings = dataclasses.replace(settings, sources=(sales,))
    table, _ = run(settings, tmp_path, week_starts="saturday")
    assert history_of(table)["week"].dt.strftime("%F").tolist() == [
        "2023-12-30",
        "2024-01-06",
        "2024-01-13",
    ]
    assert history_of(table)["units"].tolist() == [2.5] * 3


def test_a_lagged_covariate_and_a_fill_value(settings, tmp_path, sample_raw):
    macro = tmp_path / "macro.json"
    weeks = pd.date_range("2017-01-02", "2018-02-19", freq="7D")
    macro.write_text(
        json.dumps({"rows": [{"w": f"{w:%F}", "cpi": i} for i, w in enumerate(weeks)]})
    )
    src = SourceSettings(
        name="macro",
        kind="covariates",
        path=str(macro),
        records="rows",
        columns={"date": "w"},
        covariates=(CovariateSettings(name="cpi", known_in_advance=False, unknown_as="lag"),),
    )
    table, stats = run(with_sources(settings, src), sample_raw)
    assert stats["covariates"]["cpi"] == "lag"
    assert history_of(table)["cpi"].notna().all()
    assert future_of(table)["cpi"].isna().all()  # not known in advance: not there


def test_data_version_is_a_content_hash(table, settings, sample_raw):
    again, _ = run(settings, sample_raw)
    assert data_version(again) == data_version(table)
    assert len(data_version(table)) == 16
    changed = table.copy()
    changed.loc[0, "tmax_f"] += 0.1
    assert data_version(changed) != data_version(table)
    assert data_version(table.rename(columns={"tmax_f": "t"})) != data_version(table)


# --- bad input: each names the source, the column and the rows ----------------------------


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
        (("sales", "shipments.csv", "Week Start", 5), "2017-02-30", "match none of the date_"),
        (("sales", "shipments.csv", "Week Start", 7), "2017-01-03", "must be the start of a week"),
        (("sales", "shipments.csv", "Units Shipped", 9), "12a", "not numbers"),
        (("sales", "shipments.csv", "Units Shipped", 9), "-3", "negative quantities"),
        (("returns", "returns.jsonl", "return_date", 3), "yesterday", "match none of the date"),
        (("returns", "returns.jsonl", "qty", 4), "two", "not numbers"),
        (("weather", "weather.csv", "date", 11), "Jan 12", "match none of the date"),
        (("weather", "weather.csv", "tmax_f", 12), "hot", "not numbers"),
        (("stores", "stores.csv", "store_type", 3), "kiosk", "not in data.store_formats"),
    ],
)
def test_a_bad_value_names_the_source_column_and_row(settings, raw_dir, where, value, problem):
    name, file, column, line = where
    path = raw_dir / file
    (edit_jsonl if file.endswith(".jsonl") else edit_csv)(path, line, column, value)
    assert value in path.read_text().splitlines()[line - 1]  # the line the message must name
    with pytest.raises(ConditioningError, match=problem) as err:
        run(settings, raw_dir)
    message = str(err.value)
    assert message.startswith(f"source {name!r} ({raw_dir / file}): ")
    assert f"'{column}'" in message
    assert f"row {line}: " in message


def test_the_same_key_twice_with_different_values(settings, raw_dir):
    path = raw_dir / "shipments.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    clash = frame.iloc[[3]].assign(**{"Units Shipped": "999"})
    pd.concat([frame, clash], ignore_index=True).to_csv(path, index=False)
    with pytest.raises(ConditioningError, match="same store_id x product_id x date") as err:
        run(settings, raw_dir)
    assert "row 5: " in str(err.value) and f"row {len(frame) + 2}: " in str(err.value)
    assert str(err.value).startswith("source 'sales'")


def test_a_week_anchor_that_does_not_match_the_data(settings, sample_raw):
    with pytest.raises(ConditioningError, match="a sunday") as err:
        run(settings, sample_raw, week_starts="sunday")
    assert "Monday" in str(err.value) and "week_date" in str(err.value)


def one_series_lines(folder, file: str, days: list[str], qty: list[int]) -> SourceSettings:
    """Daily rows of shop A, item x in ``folder/file``: a sales source of order lines."""
    lines = pd.DataFrame({"day": days, "shop": "A", "item": "x", "qty": qty})
    lines.to_csv(folder / file, index=False)
    return SourceSettings(
        name="sales",
        kind="sales",
        path=file,
        columns={"store_id": "shop", "product_id": "item", "date": "day", "quantity": "qty"},
        frequency="daily",
        duplicates="sum",
    )


def test_order_lines_add_up_and_unreported_weeks_may_be_zero(settings, tmp_path):
    days = ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-22"]
    # two identical order lines are two sales, not a re-sent row
    sales = one_series_lines(tmp_path, "orders.csv", days, [1, 1, 2, 5])
    settings = dataclasses.replace(settings, sources=(sales,))
    table, _ = run(settings, tmp_path, horizon_weeks=1)
    assert history_of(table)["units"].tolist()[:1] == [4.0]
    assert history_of(table)["units"].isna().sum() == 2  # the shop reported nothing those weeks
    table, stats = run(settings, tmp_path, horizon_weeks=1, unreported_weeks="zero")
    assert history_of(table)["units"].tolist() == [4.0, 0.0, 0.0, 5.0]
    assert stats["zero_weeks_filled"] == 2
    as_resent = dataclasses.replace(
        settings, sources=(dataclasses.replace(sales, duplicates="error"),)
    )
    table, stats = run(as_resent, tmp_path, horizon_weeks=1)  # the default: a re-sent row
    assert history_of(table)["units"].tolist()[:1] == [3.0]
    assert stats["duplicates_dropped"] == 1


def test_negative_quantities_may_be_returns_netted_within_their_week(settings, tmp_path):
    """A POS export that books returns as negative sales (Favorita's order lines; Walmart's
    weekly net sales): ``negative_quantities: net`` nets them within the week, and a week whose
    returns exceed its sales is zero demand, counted, never a negative."""
    days = ["2024-01-01", "2024-01-02", "2024-01-08", "2024-01-15", "2024-01-16"]
    qty = [5, -2, -3, 4, 1]  # week 1: 5 sold, 2 back; week 2: only a return of 3
    sales = one_series_lines(tmp_path, "pos.csv", days, qty)
    strict = dataclasses.replace(settings, sources=(sales,))
    with pytest.raises(ConditioningError, match="negative quantities.*negative_quantities: net"):
        run(strict, tmp_path, horizon_weeks=1)
    netted = dataclasses.replace(
        settings, sources=(dataclasses.replace(sales, negative_quantities="net"),)
    )
    table, stats = run(netted, tmp_path, horizon_weeks=1)
    assert history_of(table)["units"].tolist() == [3.0, 0.0, 5.0]
    assert (stats["negative_rows"], stats["negative_weeks_zeroed"]) == (2, 1)
    assert stats["negative_weeks_first"] == ["A/x 2024-01-08 (-3)"]
    # one row per key and day, as an export that is not order lines (duplicates: error): a
    # sale and a return on the same day are one value each, not a clash
    same_day = ["2024-01-01", "2024-01-01", "2024-01-08", "2024-01-15", "2024-01-16"]
    one_series_lines(tmp_path, "pos.csv", same_day, qty)
    one_each = dataclasses.replace(
        settings,
        sources=(dataclasses.replace(sales, negative_quantities="net", duplicates="error"),),
    )
    table, _ = run(one_each, tmp_path, horizon_weeks=1)
    assert history_of(table)["units"].tolist() == [3.0, 0.0, 5.0]
    one_series_lines(tmp_path, "pos.csv", [*same_day, same_day[0]], [*qty, 6])  # 2 sales a day
    with pytest.raises(ConditioningError, match="same store_id x product_id x date"):
        run(one_each, tmp_path, horizon_weeks=1)
    returns = dataclasses.replace(
        one_series_lines(tmp_path, "returns.csv", ["2024-01-02"], [1]),
        name="returns", kind="returns", negative_quantities="net",
    )  # fmt: skip
    both = dataclasses.replace(netted, sources=(*netted.sources, returns))
    with pytest.raises(SourceError, match="source 'returns'.*is for the sales source"):
        run(both, tmp_path, horizon_weeks=1)


def test_an_empty_events_file_means_no_events(settings, raw_dir):
    (raw_dir / "events.yaml").write_text("events: []\n")
    table, _ = run(settings, raw_dir)
    assert (table["events"] == 0).all()


def test_an_event_scoped_to_one_region_by_name_counts_only_there(settings, raw_dir):
    events = [{"name": "Rodeo", "date": "2017-03-08", "regions": "South Texas"}]
    (raw_dir / "events.yaml").write_text(yaml.safe_dump({"events": events}))
    table, _ = run(settings, raw_dir)
    week = table[table["week"] == pd.Timestamp("2017-03-06")]
    assert week.groupby("region")["events"].max().to_dict() == {"North Texas": 0, "South Texas": 1}
