"""The rolling-origin backtest of one partition and the models it deploys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from manymodels.data.partition import split_partitions
from manymodels.training import backtest_windows, train_partition

WEEKS = list(pd.date_range("2020-01-06", periods=40, freq="7D"))


@pytest.fixture(scope="module")
def _partition(_conditioned) -> tuple[str, pd.DataFrame]:
    parts = split_partitions(_conditioned[0], ("region", "store_format", "speed"))
    pid = next(p for p in parts if p.endswith("fast"))
    return pid, parts[pid]


@pytest.fixture(scope="module")
def _fit(_partition, _settings_module):
    import torch

    torch.set_num_threads(1)
    return train_partition(_partition[1], _partition[0], _settings_module)


@pytest.fixture(scope="module")
def _settings_module(tmp_path_factory, config_dir):
    from manymodels.config import load_settings

    work = tmp_path_factory.mktemp("work")
    return load_settings(config_dir, "dev", [f"project.workdir={work}", "training.nn.epochs=3"])


def test_windows_step_back_from_the_last_week():
    windows = backtest_windows(WEEKS, origins=3, step_weeks=4, test_weeks=8)
    assert [w[-1] for w in windows] == [WEEKS[-1], WEEKS[-5], WEEKS[-9]]
    assert all(len(w) == 8 for w in windows)
    assert windows[0] == WEEKS[-8:]


def test_one_origin_is_the_single_held_out_window():
    assert backtest_windows(WEEKS, origins=1, step_weeks=8, test_weeks=8) == [WEEKS[-8:]]


def test_too_few_weeks_say_how_many_are_needed():
    with pytest.raises(ValueError, match=r"needs at least 41.*backtest.origins"):
        backtest_windows(WEEKS, origins=4, step_weeks=8, test_weeks=8)


@pytest.mark.parametrize("name", ["origins", "step_weeks", "test_weeks"])
def test_settings_must_be_positive_integers(name):
    given = {"origins": 2, "step_weeks": 8, "test_weeks": 8} | {name: 0}
    with pytest.raises(ValueError, match=name):
        backtest_windows(WEEKS, **given)


def test_metrics_come_per_origin_and_pooled(_fit):
    m = _fit.metrics
    assert set(_fit.test["origin"]) == {1, 2}
    for model in ("ensemble", "baseline"):
        for k in (1, 2):
            assert f"o{k}_{model}_wape" in m
        assert 0 <= m[f"{model}_coverage"] <= 1
    pooled = _fit.test
    wape = np.abs(pooled["units"] - pooled["ensemble"]).sum() / pooled["units"].abs().sum()
    assert m["ensemble_wape"] == pytest.approx(wape)
    assert sum(_fit.weights.values()) == pytest.approx(1)


def test_each_origin_forecasts_weeks_after_its_training_data(_fit, _partition):
    weeks = sorted(_partition[1].loc[_partition[1]["units"].notna(), "week"].unique())
    latest = _fit.test[_fit.test["origin"] == 1]
    assert latest["week"].max() == weeks[-1]
    assert latest["week"].nunique() == 8
    earlier = _fit.test[_fit.test["origin"] == 2]
    assert earlier["week"].max() == weeks[-9]


def test_deployed_models_are_fitted_on_every_known_week(_fit, _partition):
    last = _partition[1].loc[_partition[1]["units"].notna(), "week"].max()
    for packed in (_fit.ensemble, _fit.baseline):
        assert packed.trained_through == str(last.date())
        assert packed.intervals is not None
    assert _fit.info["train_rows"] == int(_partition[1]["units"].notna().sum())
    assert _fit.ensemble.estimator.weights_ == pytest.approx(_fit.weights)
    # the refit NN trains, with nothing held out, for the epochs the backtest chose
    nn = _fit.ensemble.estimator.members_["nn"]
    assert nn.validation_fraction == 0.0 and nn.validation_loss_ == []


def test_deployed_model_predicts_intervals_around_its_forecast(_fit):
    out = _fit.ensemble.predict_frame(_fit.example)
    assert list(out.columns) == ["prediction", "p10", "p50", "p90"]
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    assert (out["p10"] <= out["prediction"]).all() and (out["prediction"] <= out["p90"]).all()


def test_unknown_member_is_an_error_naming_the_partition(_partition, _settings_module):
    settings = _settings_module.replace({"training.ensemble.members": ["lasso", "prophet"]})
    with pytest.raises(ValueError, match=rf"{_partition[0]}.*prophet"):
        train_partition(_partition[1], _partition[0], settings)


def test_too_short_a_history_is_an_error_naming_the_partition(_partition, _settings_module):
    settings = _settings_module.replace({"training.backtest.origins": 10})
    with pytest.raises(ValueError, match=rf"{_partition[0]}.*backtest"):
        train_partition(_partition[1], _partition[0], settings)


def test_without_refit_the_latest_origins_fits_are_deployed(_partition, _settings_module):
    settings = _settings_module.replace(
        {"training.refit": False, "training.ensemble.members": ["lasso", "intermittent"]}
    )
    fit = train_partition(_partition[1], _partition[0], settings)
    weeks = sorted(_partition[1].loc[_partition[1]["units"].notna(), "week"].unique())
    first_test = fit.test.loc[fit.test["origin"] == 1, "week"].min()
    # the members have seen the weeks before the latest origin only, and say so
    assert fit.ensemble.trained_through == str(max(w for w in weeks if w < first_test).date())
    assert fit.baseline.trained_through == str(weeks[-1].date())  # the baseline is refitted
    latest = fit.test[fit.test["origin"] == 1]
    # the deployed ensemble is the latest origin's: it forecasts that window as the backtest did
    assert latest["deployed_ensemble"].to_numpy() == pytest.approx(latest["ensemble"].to_numpy())
    assert fit.info["train_rows"] == int(_partition[1]["units"].notna().sum())


@pytest.mark.parametrize(
    "keys",
    [
        {"store_id": ["S2", "S1", "S2", "S10"], "product_id": ["P1", "P1", "P1", "P2"]},
        {"store_id": [3, 1, 3, 20], "product_id": [7, 7, 8, 7]},  # numbers: sorted as strings
        {"store_id": ["S1", None, "S1", "S2"], "product_id": ["P1", "P1", None, "P1"]},
        {"store_id": pd.Series(["S1", "S1"], dtype="category"), "product_id": ["P1", "P2"]},
    ],
)
def test_series_names_and_count_are_the_group_bys(keys):
    from manymodels.training import _series_count, _series_names

    frame = pd.DataFrame(keys)
    assert _series_count(frame) == frame.groupby(["store_id", "product_id"]).ngroups
    if frame.isna().to_numpy().any():
        return  # a missing key is the former code's (it fails to sort, as it did)
    trained = frame[["store_id", "product_id"]].drop_duplicates().astype(str)
    assert _series_names(frame) == sorted(trained["store_id"] + "/" + trained["product_id"])
