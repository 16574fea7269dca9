"""Mock raw sources: seeded, extendable, realistic in shape and in their messy details."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shlex

import numpy as np
import pandas as pd
import pytest
import yaml

from manymodels.data.mock import RAW_FILES, STORE_TYPES, draw_world, generate, log_rates
from manymodels.steps import mock as mock_step

START = dt.date(2017, 1, 2)
SMALL = {"regions": 2, "stores_per_region": 4, "products": 6, "start": START, "seed": 3}


@pytest.fixture(scope="module")
def small():
    return generate(weeks=40, **SMALL)


def frames(raw) -> dict[str, pd.DataFrame]:
    return {
        f.name: getattr(raw, f.name)
        for f in dataclasses.fields(raw)
        if isinstance(getattr(raw, f.name), pd.DataFrame)
    }


def weeks_of(shipments: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(shipments["Week Start"], format="mixed")


def test_the_same_seed_gives_identical_sources(small):
    again = generate(weeks=40, **SMALL)
    for name, frame in frames(small).items():
        pd.testing.assert_frame_equal(frame, frames(again)[name], obj=name)
    assert again.events == small.events
    other = generate(weeks=40, **(SMALL | {"seed": 4}))
    assert not other.shipments.equals(small.shipments)


def test_more_weeks_extend_the_earlier_weeks_instead_of_replacing_them():
    short, long = generate(weeks=12, **SMALL), generate(weeks=20, **SMALL)
    cutoff = pd.Timestamp(START) + pd.Timedelta(weeks=12)

    def early(shipments: pd.DataFrame) -> pd.DataFrame:
        rows = shipments[weeks_of(shipments) < cutoff]  # duplicated rows included
        return rows.sort_values(list(rows.columns), ignore_index=True)

    assert len(early(short.shipments)) == len(short.shipments)
    pd.testing.assert_frame_equal(early(short.shipments), early(long.shipments))
    assert len(long.shipments) > len(short.shipments)
    observed = short.weather[short.weather["kind"] == "observed"]
    both = observed.merge(long.weather, on=["zip", "date"], suffixes=("", "_long"))
    assert len(both) == len(observed)
    for col in ("tmax_f", "tmin_f", "precip_in"):
        assert both[col].equals(both[f"{col}_long"]), col
    early_returns = long.returns[pd.to_datetime(long.returns["return_date"]) < cutoff]
    pd.testing.assert_frame_equal(early_returns.reset_index(drop=True), short.returns)


def test_slow_products_have_many_more_zero_weeks_than_fast_ones(small):
    rows = small.shipments.drop_duplicates()
    store_weeks = len(small.stores) * 40
    zero_share = 1 - rows.groupby("SKU").size().reindex(small.products["product_id"]) / store_weeks
    slow, fast = zero_share.iloc[:3], zero_share.iloc[3:]  # the first half sells slowly
    assert slow.min() >= 0.2, zero_share.to_dict()
    assert fast.max() <= 0.05, zero_share.to_dict()


@pytest.mark.parametrize("stores_per_region", [2, 3, 5])
def test_each_region_has_both_store_formats(stores_per_region):
    raw = generate(regions=3, stores_per_region=stores_per_region, products=2, weeks=1)
    formats = raw.stores["store_type"].map(lambda t: STORE_TYPES[t][0])
    assert raw.stores["region"].nunique() == 3
    assert formats.groupby(raw.stores["region"]).nunique().eq(2).all()
    assert raw.stores["store_id"].is_unique
    assert set(raw.demographics["store_id"]) == set(raw.stores["store_id"])


def test_shipments_carry_the_messy_details_conditioning_fixes(small):
    ship = small.shipments
    dates = ship["Week Start"]
    assert dates.str.fullmatch(r"\d{4}-\d{2}-\d{2}").any()
    assert dates.str.fullmatch(r"\d{2}/\d{2}/\d{4}").any()  # US dates from one feeding system
    assert dates.str.fullmatch(r"\d{4}-\d{2}-\d{2}|\d{2}/\d{2}/\d{4}").all()
    assert (weeks_of(ship).dt.day_of_week == 0).all()
    quantity = ship["Units Shipped"].str.replace(",", "").astype(int)
    separated = ship["Units Shipped"].str.contains(",")
    assert separated.any()
    assert (separated == (quantity >= 1000)).all()  # thousands separators, and only there
    assert (quantity > 0).all()  # zero weeks are left out
    assert ship.duplicated().any()  # re-sent rows


def test_weather_has_a_forecast_after_the_observed_weeks(small):
    per_zip = small.weather.groupby("zip")["kind"].value_counts().unstack()
    assert (per_zip["observed"] == 40 * 7).all()
    assert (per_zip["forecast"] == 4 * 7).all()
    last_observed = small.weather.loc[small.weather["kind"] == "observed", "date"].max()
    assert last_observed == f"{START + dt.timedelta(weeks=40, days=-1):%F}"
    assert set(small.weather["zip"]) == set(small.stores["zip_code"])


def test_events_fall_inside_the_generated_range(small):
    end = START + dt.timedelta(weeks=44)
    assert small.events
    assert all(START <= e["date"] < end for e in small.events)
    regions = set(small.stores["region"])
    assert all(e["regions"] == "all" or set(e["regions"]) <= regions for e in small.events)


def test_returns_reference_shipped_store_products(small):
    shipped = set(zip(small.shipments["Store"], small.shipments["SKU"], strict=True))
    returned = set(zip(small.returns["store"], small.returns["sku"], strict=True))
    assert returned <= shipped
    assert (small.returns["qty"] > 0).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"regions": 0}, "regions must be between 1 and 14"),
        ({"regions": 15}, "regions must be between 1 and 14"),
        ({"stores_per_region": 1}, "stores_per_region >= 2"),
        ({"products": 1}, "products >= 2"),
        ({"weeks": 0}, "weeks >= 1"),
        ({"forecast_weeks": -1}, "forecast_weeks >= 0"),
        ({"start": dt.date(2017, 1, 3)}, "start must be a Monday.*Tuesday 2017-01-03"),
    ],
)
def test_bad_sizes_and_a_non_monday_start_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        generate(**({"weeks": 2} | SMALL | change))


def sample_arguments(makefile: str) -> list[str]:
    """The ``manymodels mock`` arguments of the Makefile's ``sample`` target."""
    recipe = re.search(r"^sample:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "the Makefile has no sample target"
    command = recipe.group(1).replace("\\\n", " ")
    words = shlex.split(command)
    return words[words.index("mock") + 1 :]


def test_the_committed_sample_is_what_make_sample_generates(sample_raw, config_dir, tmp_path):
    args = sample_arguments((config_dir.parent / "Makefile").read_text())
    assert args[args.index("--out") + 1] == "tests/data/raw"
    args[args.index("--out") + 1] = str(tmp_path / "raw")
    assert mock_step.main([*args, "--config-dir", str(config_dir)]) == 0
    fresh = tmp_path / "raw"
    assert sorted(p.name for p in sample_raw.iterdir()) == sorted([*RAW_FILES, mock_step.MARKER])
    for name in [*RAW_FILES, mock_step.MARKER]:
        if name.endswith(".parquet"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(sample_raw / name), pd.read_parquet(fresh / name), obj=name
            )
        else:
            assert (sample_raw / name).read_text() == (fresh / name).read_text(), (
                f"tests/data/raw/{name} differs from the generator's output: run `make sample`"
            )
    events = yaml.safe_load((sample_raw / "events.yaml").read_text())["events"]
    assert events, "the sample should span some events"


def test_the_world_and_log_rates_are_what_generate_draws_demand_from(small):
    world = draw_world(weeks=40, **SMALL)
    pd.testing.assert_frame_equal(world.stores, small.stores)
    pd.testing.assert_frame_equal(world.products[["product_id", "category"]], small.products)
    assert world.events == small.events
    rates = list(log_rates(world, START, 40, SMALL["seed"]))
    assert [w for w, _, _ in rates] == list(range(40))
    shape = (len(small.stores), len(small.products))
    assert all(known.shape == drift.shape == shape for _, known, drift in rates)
    # the units shipped are Poisson around exp(known + drift) (x white noise of spread 0.05)
    expected = sum(np.exp(known + drift).sum() for _, known, drift in rates)
    units = small.shipments.drop_duplicates()["Units Shipped"].str.replace(",", "").astype(int)
    assert units.sum() == pytest.approx(expected, rel=0.02)
