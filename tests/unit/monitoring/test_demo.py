"""The demo's monitoring rounds: score from an earlier date, let later weeks arrive with a
drifted region, monitor at the end."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pytest

from manymodels import cli
from manymodels.monitoring import demo


def test_rounds_hold_back_eight_weeks_in_two_arrivals():
    start = dt.date(2017, 1, 2)
    assert demo.rounds(100, start) == [
        (92, dt.date(2018, 10, 8)), (96, dt.date(2018, 11, 5)), (100, dt.date(2018, 12, 3)),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="at least 68 weeks"):
        demo.rounds(60, start)


def test_drift_raw_shifts_one_regions_large_stores_and_weather_from_a_date(raw_dir, conditioner):
    before = conditioner(raw_dir)[0]
    since = dt.date(2018, 1, 1)
    region = demo.drift_raw(raw_dir, since)
    after = conditioner(raw_dir)[0]
    assert region == sorted(set(before["region"]), key=list(before["region"]).index)[0]
    key = ["week", "store_id", "product_id"]
    both = before.merge(after, on=key, suffixes=("", "_new"))
    late = both["week"] >= pd.Timestamp(since)
    mine = both["region"] == region
    large = both["store_format"] == "large"
    hit = late & mine & large & both["shipped"].gt(0)
    ratio = both.loc[hit, "shipped_new"] / both.loc[hit, "shipped"]
    assert ratio.between(2.5, 3.5).all()
    assert (both.loc[~(late & mine & large), "shipped_new"]
            .equals(both.loc[~(late & mine & large), "shipped"]))  # fmt: skip
    for column in ("tmax_f", "tmin_f"):  # the weather covariates pipelines/data.yaml declares
        warmer = both.loc[late & mine, f"{column}_new"] - both.loc[late & mine, column]
        assert warmer.dropna().round(1).eq(demo.TEMP_SHIFT_F).all() and warmer.notna().any()
        assert both.loc[~late, f"{column}_new"].equals(both.loc[~late, column])


def test_the_demo_scores_early_lets_weeks_arrive_and_monitors(monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    calls = []
    monkeypatch.setattr(cli, "run_step", lambda step, argv: calls.append((step, argv)) or 0)
    monkeypatch.setattr(
        cli, "run_pipeline", lambda name, argv, *a: calls.append((f"run {name}", argv)) or 0
    )
    monkeypatch.setattr(demo, "drift_raw", lambda raw, since: calls.append(("drift", since)) or "R")
    common = ["--set", "mock.weeks=100", "--set", f"project.workdir={tmp_path}"]
    assert cli.demo(common, "pipelines", ("mock.weeks=100", f"project.workdir={tmp_path}")) == 0
    names = [c[0] for c in calls]
    assert names == ["mock", "run training", "promote", "run scoring", "mock", "drift",
                     "run scoring", "mock", "drift", "run monitoring"]  # fmt: skip
    weeks = [c[1][c[1].index("--weeks") + 1] for c in calls if c[0] == "mock"]
    assert weeks == ["92", "96", "100"]
    as_of = [a for c in calls if c[0].startswith("run ") for a in c[1] if "data.as_of" in a]
    assert as_of == ["data.as_of=2018-10-08", "data.as_of=2018-10-08", "data.as_of=2018-11-05",
                     "data.as_of=2018-12-03"]  # fmt: skip
    assert "dashboard is" in caplog.text
