"""What the train step's workers do to keep the cost per model down: a few residual plots per
run (``training.max_plots``), and fits sent back without their models once those are saved."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest

from manymodels.config import ConfigError, load_settings
from manymodels.steps.train import fit_and_stage, plotted_partitions, run_blocks


@pytest.fixture(scope="module")
def _settings(tmp_path_factory, config_dir):
    work = tmp_path_factory.mktemp("work")
    overrides = [f"project.workdir={work}", "training.nn.epochs=2", "training.gbm.max_iter=5"]
    return load_settings(config_dir, "dev", overrides)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ([], {"a", "b", "c"}),  # default cap 16: all of three
        (["training.max_plots=2"], {"a", "b"}),  # the first by id, whatever the order given
        (["training.max_plots=0"], {"a", "b", "c"}),  # 0: no cap
        (["training.plots=false"], set()),
        (["training.plots=false", "training.max_plots=2"], set()),
    ],
)
def test_plotted_partitions_are_the_first_by_id_up_to_the_cap(config_dir, overrides, expected):
    settings = load_settings(config_dir, "dev", overrides)
    assert plotted_partitions(["c", "a", "b"], settings) == expected


def test_max_plots_is_validated(config_dir):
    with pytest.raises(ConfigError, match="max_plots"):
        load_settings(config_dir, "dev", ["training.max_plots=-1"])
    assert load_settings(config_dir, "dev").training.max_plots == 16


def test_a_run_plots_only_its_capped_partitions(store_files, _settings, tmp_path):
    settings = _settings.replace({"training.block_size": 2, "training.max_plots": 1})
    outcomes = run_blocks(store_files, settings, str(tmp_path), workers=1)
    assert all(o.ok for o in outcomes.values())
    plotted = {p for p in store_files if (tmp_path / p / "artifacts" / "residuals.png").exists()}
    assert plotted == {min(store_files)}
    for pid in store_files:  # every partition keeps its backtest and models, plotted or not
        assert (tmp_path / pid / "artifacts" / "backtest.parquet").exists()
        assert (tmp_path / pid / "ensemble" / "MLmodel").exists()


def test_a_worker_sends_back_a_released_fit(store_files, _settings, tmp_path):
    pid, path = next(iter(store_files.items()))
    fit = fit_and_stage(path, pid, _settings, str(tmp_path), plot=False)
    assert fit.ensemble is None and fit.baseline is None and fit.test.empty
    assert "ensemble_wape" in fit.metrics and fit.weights and fit.info["train_rows"] > 0
    assert len(pickle.dumps(fit)) < 50_000  # the models stay on disk, not in the parent
    assert not (tmp_path / pid / "artifacts" / "residuals.png").exists()
    saved = pd.read_parquet(tmp_path / pid / "artifacts" / "backtest.parquet")
    assert {"units", "ensemble", "baseline", "origin"} <= set(saved.columns) and len(saved)


def test_the_drift_profile_from_trainings_features_is_the_one_built_afresh(store_files, _settings):
    from manymodels.monitoring.drift import training_profile
    from manymodels.training import train_partition

    pid, path = next(iter(store_files.items()))
    frame = pd.read_parquet(path)
    fit = train_partition(frame, pid, _settings)
    assert fit.features is not None and fit.released().features is None
    fs, weeks = fit.ensemble.features, fit.info["test_weeks"]
    assert training_profile(frame, fs, weeks, fit.features) == training_profile(frame, fs, weeks)
