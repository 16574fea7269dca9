"""The settings hash an identical re-run is recognised by (``config_hash``): it covers what decides
the models, not where the run writes, how many processes it uses or how it scores and serves."""

from __future__ import annotations

import pytest

from manymodels.config import Settings
from manymodels.steps.train import config_hash

BASE = Settings().replace({})  # built as loading builds it (dotted overrides go the same way)


@pytest.mark.parametrize(
    "overrides",
    [
        {"project.workdir": "/elsewhere/work"},  # the same run in a moved or copied folder
        {"env": "prod"},
        {"mlflow.experiment": "other", "mlflow.dev.tracking_uri": "http://u:p@host:5000"},
        {"training.workers": 1, "training.block_size": 4, "training.backend": "spark"},
        {"training.plots": False, "training.max_plots": 0},
        {"training.partitions": ("north.large.fast",)},
        {"scoring.block_size": 2, "monitoring.staleness.warn_days": 7},
        {"mock.regions": 2},  # the data itself is in data_version
        {"data.uri": "s3://bucket/exports"},
    ],
)
def test_settings_that_do_not_decide_the_models_keep_the_hash(overrides):
    assert config_hash(BASE.replace(overrides)) == config_hash(BASE)


@pytest.mark.parametrize(
    "overrides",
    [
        {"training.nn.epochs": 3},
        {"training.random_state": 1},
        {"training.backtest.origins": 3},
        {"training.refit": False},
        {"training.gate.max_mape": 0.3},
        {"partition.slow_zero_share": 0.5},
        {"data.horizon_weeks": 8},
    ],
)
def test_settings_that_decide_the_models_change_the_hash(overrides):
    assert config_hash(BASE.replace(overrides)) != config_hash(BASE)
