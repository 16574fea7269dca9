"""The configurable ensemble members: names, per-partition overrides, and a trained partition
with the new members through PackedModel and the MLflow pyfunc."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pytest

from manymodels.data.partition import split_partitions
from manymodels.features import feature_columns
from manymodels.models import (
    BoostingForecaster,
    FourierForecaster,
    HistoricalAverageBaseline,
    IntermittentForecaster,
)
from manymodels.training import make_members, train_partition

NEW = ["lasso", "intermittent", "gbm", "seasonal", "fourier", "glm"]


@pytest.fixture(scope="module")
def _settings(tmp_path_factory, config_dir):
    from manymodels.config import load_settings

    work = tmp_path_factory.mktemp("work")
    return load_settings(config_dir, "dev", [f"project.workdir={work}", "training.gbm.max_iter=20"])


@pytest.fixture(scope="module")
def _slow(_conditioned) -> tuple[str, object]:
    parts = split_partitions(_conditioned[0], ("region", "store_format", "speed"))
    pid = next(p for p in parts if p.endswith("slow"))
    return pid, parts[pid]


def test_every_member_name_builds_its_estimator(_settings):
    settings = _settings.replace({"training.ensemble.members": NEW})
    members = make_members(settings, *feature_columns())
    assert list(members) == NEW
    assert isinstance(members["intermittent"], IntermittentForecaster)
    assert members["intermittent"].horizon_weeks == settings.data.horizon_weeks
    assert isinstance(members["gbm"], BoostingForecaster)
    # trees split store and product as categories and keep the week of year ordered
    assert members["gbm"].categorical_features == ["store_id", "product_id"]
    assert members["gbm"].numeric_features[0] == "week_of_year"
    assert isinstance(members["seasonal"], HistoricalAverageBaseline)
    # the Lasso and the Poisson GLM of the same per-product seasonal design
    assert isinstance(members["fourier"], FourierForecaster)
    assert members["fourier"].loss == "lasso"
    assert members["glm"].loss == "poisson"
    assert members["glm"].by == "product_id"
    # "known": the covariates pipelines/data.yaml declares known in advance
    assert "events" in members["glm"].interact and "tmax_f" not in members["glm"].interact


def test_the_level_member_takes_its_settings(_settings):
    settings = _settings.replace(
        {"training.ensemble.members": ["level"], "training.level.halflife_weeks": 13,
         "training.level.shrinkage": 0}
    )  # fmt: skip
    level = make_members(settings, *feature_columns())["level"]
    assert (level.halflife_weeks, level.shrinkage) == (13, 0)
    assert isinstance(level.base, FourierForecaster) and level.base.loss == "lasso"
    with pytest.raises(ValueError, match="shrinkage"):
        _settings.replace({"training.level.shrinkage": -1})


def test_overrides_pick_members_by_partition_key(_settings):
    settings = _settings.replace(
        {
            "training.ensemble.overrides": [
                {"key": "speed", "value": "slow", "members": ["lasso", "intermittent"]}
            ]
        }
    )
    assert list(make_members(settings, *feature_columns(), {"speed": "slow"})) == [
        "lasso",
        "intermittent",
    ]
    default = list(settings.training.ensemble.members)  # no override matches: the default
    assert default == ["level", "nn", "seasonal"]
    assert list(make_members(settings, *feature_columns(), {"speed": "fast"})) == default
    assert list(make_members(settings, *feature_columns())) == default


def test_an_unknown_member_lists_the_known_ones(_settings):
    settings = _settings.replace({"training.ensemble.members": ["lasso", "prophet"]})
    with pytest.raises(ValueError, match=r"prophet.*gbm.*intermittent"):
        make_members(settings, *feature_columns())


def test_a_slow_partition_trains_and_serves_with_the_new_members(_settings, _slow, tmp_path):
    from manymodels.registry import save_pyfunc

    pid, frame = _slow
    settings = _settings.replace(
        {
            "training.ensemble.overrides": [
                {
                    "key": "speed",
                    "value": "slow",
                    "members": ["lasso", "intermittent", "gbm", "fourier", "glm"],
                }
            ]
        }
    )
    fit = train_partition(frame, pid, settings)
    assert set(fit.weights) == {"lasso", "intermittent", "gbm", "fourier", "glm"}
    assert sum(fit.weights.values()) == pytest.approx(1.0)
    for name in fit.weights:  # each member's backtest metrics are logged
        assert np.isfinite(fit.metrics[f"{name}_wape"])
    assert 0 <= fit.metrics["ensemble_coverage"] <= 1
    path = save_pyfunc(fit.ensemble, tmp_path / "model", fit.example)
    served = mlflow.pyfunc.load_model(str(path)).predict(fit.example)
    bands = fit.ensemble.predict_frame(fit.example)
    np.testing.assert_allclose(np.asarray(served["prediction"]), bands["prediction"])
    assert (bands["p10"] <= bands["p90"]).all()
