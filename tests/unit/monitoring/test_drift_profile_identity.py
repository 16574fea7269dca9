"""The drift profile on NumPy gives the JSON the per-column pandas version gave, bit for bit:
season buckets (ISO weeks across year ends and 53-week years), quantiles with missing values,
ties and one-row seasons, the training rows chosen, and the file written into each folder."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from manymodels.features import build_features
from manymodels.monitoring import drift


def _reference_season(week: pd.Series) -> np.ndarray:
    woy = pd.to_datetime(week).dt.isocalendar().week.to_numpy(dtype=int)
    return (woy - 1) // drift.BUCKET_WEEKS


def _reference_profile(features, numeric, categorical, extra=None) -> dict:
    """The profile as it was computed one column and one season at a time (main before)."""
    buckets = _reference_season(features["week"])
    out: dict = {"rows": len(features), "numeric": {}, "categorical": {}, **(extra or {})}
    rnd = lambda values: [float(f"{v:.6g}") for v in values]  # noqa: E731
    for col in (c for c in numeric if c not in drift.SKIP):
        values = features[col].to_numpy(dtype=float)
        ok = ~np.isnan(values)
        out["numeric"][col] = {
            "edges": rnd(np.unique(np.quantile(values[ok], np.linspace(0, 1, 11)))),
            "seasons": {
                str(b): {
                    "n": int((ok & (buckets == b)).sum()),
                    "q": rnd(np.quantile(values[ok & (buckets == b)], drift.LEVELS)),
                }
                for b in np.unique(buckets[ok])
            },
        }
    for col in categorical:
        shares = features[col].astype(str).value_counts(normalize=True)
        out["categorical"][col] = {str(k): round(float(v), 6) for k, v in shares.items()}
    return out


def _reference_training_rows(features, test_weeks) -> pd.DataFrame:
    first_test = min(pd.to_datetime(test_weeks))
    train = features[features["units"].notna() & (features["week"] < first_test)]
    full = train[train["filled_share"] == 0]
    train = full if len(full) >= drift.MIN_FULL_ROWS else train
    return train[train["week"] >= train["week"].max() - pd.Timedelta(weeks=drift.REFERENCE_WEEKS)]


def test_season_buckets_match_pandas_iso_weeks_over_many_years():
    days = pd.Series(pd.date_range("1999-12-20", "2031-01-10", freq="D"))
    assert np.array_equal(drift.season(days), _reference_season(days))
    as_text = days.dt.strftime("%Y-%m-%d").iloc[::37]
    assert np.array_equal(drift.season(as_text), _reference_season(as_text))
    aware = days.iloc[:60].dt.tz_localize("UTC")  # pandas' own path
    assert np.array_equal(drift.season(aware), _reference_season(aware))


def _frame(seed: int, rows: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2021-01-04", periods=rows // 4, freq="W-MON")
    frame = pd.DataFrame(
        {
            "week": np.repeat(weeks, 4)[:rows],
            "store_id": rng.choice(["s1", "s2", "s3"], rows),
            "units": rng.poisson(3, rows).astype(float),
            "price": np.round(rng.normal(5, 1, rows), 2),
            "ties": rng.integers(0, 3, rows),  # many equal values, an int column
            "lag_1": rng.normal(0, 1, rows),
            "year_sin": rng.normal(0, 1, rows),  # skipped
        }
    )
    frame.loc[rng.random(rows) < 0.1, "lag_1"] = np.nan  # a column with gaps: alone
    return frame


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_profile_equals_the_per_column_one(seed):
    frame = _frame(seed)
    numeric = ["units", "price", "ties", "lag_1", "year_sin"]
    got = drift.profile(frame, numeric, ["store_id"], extra={"x": 1})
    assert got == _reference_profile(frame, numeric, ["store_id"], extra={"x": 1})
    assert json.dumps(got, sort_keys=True) == json.dumps(
        _reference_profile(frame, numeric, ["store_id"], extra={"x": 1}), sort_keys=True
    )
    one_row = frame.iloc[[0, 5, 300]]  # seasons of one row each
    assert drift.profile(one_row, numeric, []) == _reference_profile(one_row, numeric, [])
    assert drift.profile(frame, [], []) == _reference_profile(frame, [], [])


def test_a_partitions_written_profile_is_the_one_computed_before(_conditioned, tmp_path):
    table = _conditioned[0]
    frame = table[table["store_id"] == table["store_id"].iloc[0]]
    settings = {"horizon_weeks": 4, "lags": (0, 1, 48), "rolling_windows": (4,), "covariates": {}}
    features = build_features(frame, **settings)
    weeks = sorted(features.loc[features["units"].notna(), "week"].unique())
    test_weeks = [str(w.date()) for w in weeks[-8:]]
    fit = SimpleNamespace(
        ensemble=SimpleNamespace(features=settings),
        info={"test_weeks": test_weeks},
        features=features,
    )
    for sub in ("artifacts", "ensemble", "baseline"):
        (tmp_path / sub).mkdir()
    drift.write_profile(frame, fit, tmp_path)
    categorical, numeric = drift.feature_columns(**settings)
    rows = _reference_training_rows(features, test_weeks)
    expected = _reference_profile(
        rows,
        list(numeric),
        [c for c in categorical if c not in drift.SKIP],
        extra={
            "feature_settings": {
                k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()
            },
            "trained_until": test_weeks[0],
        },
    )
    text = json.dumps(expected, indent=2, sort_keys=True, default=str) + "\n"
    for sub in ("artifacts", "ensemble", "baseline"):
        assert (tmp_path / sub / drift.PROFILE_FILE).read_text() == text


def test_the_profile_text_is_the_json_modules_indented_text():
    """Floats of every kind (NaN, infinities, -0.0, tiny, huge), text needing escapes, empty and
    nested containers, booleans and None; a value JSON does not know goes to ``default=str``."""
    data = {
        "numeric": {"a": {"edges": [0.0, -0.0, 1e-300, 1.5e300, 0.1, 123456.0], "seasons": {}}},
        "z": [float("nan"), float("inf"), -float("inf"), 2.5],
        "text": ["plain", 'quote " and \\ slash', "tab\tnew\nline", "café ☃", ""],
        "mixed": [1, True, False, None, [], {}, [[0.5]], {"b": 1, "a": [2, "x"]}],
        "rows": 12,
        "feature_settings": {"lags": (0, 1, 48), "covariates": {}},
    }
    expected = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    assert drift._profile_text(data) == expected
    odd = data | {"when": pd.Timestamp("2024-01-01"), "n": np.int64(3)}
    assert drift._profile_text(odd) == json.dumps(odd, indent=2, sort_keys=True, default=str) + "\n"


def test_rounding_to_six_digits_is_the_formatted_one():
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.normal(0, 1e4, 500),
            np.round(rng.normal(0, 1e6, 500)),  # whole numbers, some of 7 digits
            [0.0, -0.0, 999_999.0, 1_000_000.0, -999_999.0, 1234567.0, np.nan, np.inf, -np.inf],
            [0.5, -0.5, 1e-7, 500_000.5, 2.0**60, 3.0],
        ]
    )
    got = drift._round(values.reshape(-1, 7)).ravel().tolist()
    expected = [float(f"{v:.6g}") for v in values.tolist()]
    assert [repr(v) for v in got] == [repr(v) for v in expected]
