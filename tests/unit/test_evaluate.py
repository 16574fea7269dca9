"""The gate step's champion comparison: the same backtest weeks for champion and candidate."""

from __future__ import annotations

import pandas as pd
import pytest

from manymodels.features import build_features, feature_columns
from manymodels.metrics import evaluate
from manymodels.models import HistoricalAverageBaseline
from manymodels.pyfunc import PackedModel
from manymodels.steps.evaluate import champion_comparison

CATEGORICAL, NUMERIC = feature_columns()
COLUMNS = ["week", *CATEGORICAL, *NUMERIC]


def _packed(table: pd.DataFrame, through: str) -> PackedModel:
    features = build_features(table)
    known = features[features["units"].notna() & (features["week"] <= through)]
    model = HistoricalAverageBaseline().fit(known[COLUMNS], known["units"])
    return PackedModel(model, "baseline", "p", {}, COLUMNS, trained_through=through)


def _backtest(table: pd.DataFrame, weeks: int = 8) -> pd.DataFrame:
    known = table[table["units"].notna()]
    last = sorted(known["week"].unique())[-weeks:]
    rows = known[known["week"].isin(last)][["week", "store_id", "product_id", "units"]]
    # the candidate's out-of-sample forecasts are off by 1; its deployed model's are exact
    return rows.assign(ensemble=rows["units"] + 1, deployed_ensemble=rows["units"], origin=1)


def test_champion_is_scored_on_the_weeks_it_never_saw(table):
    weeks = sorted(table.loc[table["units"].notna(), "week"].unique())
    packed = _packed(table, str(weeks[-4].date()))
    champion, candidate, basis = champion_comparison(packed, table, _backtest(table))
    assert basis == "weeks the champion never saw"
    # 3 weeks after the champion's last one, with the out-of-sample forecasts (off by 1)
    rows = table[table["week"].isin(weeks[-3:])]
    assert candidate["rmse"] == pytest.approx(1.0)
    expected = evaluate(
        rows.sort_values(["week", "store_id", "product_id"])["units"],
        packed.predict(build_features(table).merge(rows[["week", "store_id", "product_id"]])),
    )
    assert champion["wape"] == pytest.approx(expected["wape"])


def test_a_champion_that_saw_every_week_is_compared_with_the_deployed_model(table):
    weeks = sorted(table.loc[table["units"].notna(), "week"].unique())
    packed = _packed(table, str(weeks[-1].date()))
    _, candidate, basis = champion_comparison(packed, table, _backtest(table))
    assert basis.startswith("backtest weeks")
    assert candidate["rmse"] == 0.0


def test_backtest_weeks_missing_from_the_data_are_an_error(table):
    backtest = _backtest(table).assign(week=pd.Timestamp("2030-01-07"))
    packed = _packed(table, str(table["week"].max().date()))
    with pytest.raises(ValueError, match="none of the backtest weeks"):
        champion_comparison(packed, table, backtest)
