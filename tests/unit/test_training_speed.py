"""What makes a training worker cheap without changing its forecasts: BLAS on one thread while
partitions train, and each origin's frames built once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info

from manymodels import training
from manymodels.data.partition import split_partitions


@pytest.fixture(scope="module")
def _settings(tmp_path_factory, config_dir):
    from manymodels.config import load_settings

    work = tmp_path_factory.mktemp("work")
    cheap = [f"project.workdir={work}", "training.ensemble.members=[fourier, seasonal]"]
    return lambda *more: load_settings(config_dir, "dev", [*cheap, *more])


@pytest.fixture(scope="module")
def _frame(_conditioned) -> pd.DataFrame:
    first = next(iter(split_partitions(_conditioned[0], ("store_id",)).values()))
    return first[first["product_id"].isin(first["product_id"].unique()[:2])]  # small: quick


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_blas_runs_on_one_thread_while_partitions_train(monkeypatch, _frame, _settings):
    seen = []
    fit_jobs = training._fit_jobs

    def recording(*args, **kwargs):
        seen.append(_blas_threads())
        return fit_jobs(*args, **kwargs)

    monkeypatch.setattr(training, "_fit_jobs", recording)
    before = _blas_threads()
    training.train_block({"p": _frame}, _settings(), batched=False)
    assert seen
    assert all(threads == [1] * len(before) for threads in seen)
    assert _blas_threads() == before  # restored afterwards


@pytest.mark.parametrize(("origins", "refit"), [(1, False), (2, False), (3, True)], ids=str)
def test_the_deployed_forecasts_are_those_of_the_backtest_rows_model_input(
    _frame, _settings, origins, refit
):
    fit = training.train_partition(
        _frame,
        "p",
        _settings(f"training.backtest.origins={origins}", f"training.refit={str(refit).lower()}"),
    )
    known = fit.features[fit.features["units"].notna()]
    test = fit.test
    assert sorted(test["origin"].unique()) == list(range(1, origins + 1))
    # the rows again, looked up by week and series in the known rows
    keys = ["week", "store_id", "product_id"]
    rows = test[keys].merge(known.reset_index(drop=True).reset_index(), on=keys, how="left")
    X = known.reset_index(drop=True).loc[rows["index"], fit.ensemble.columns]
    np.testing.assert_array_equal(fit.baseline.estimator.predict(X), test["deployed_baseline"])
    expected = fit.ensemble.estimator.predict(X)
    if not refit:  # the latest origin's rows keep the backtest's own forecast
        latest = (test["origin"] == 1).to_numpy()
        np.testing.assert_allclose(expected[latest], test["ensemble"][latest], rtol=1e-12)
        expected[latest] = test["ensemble"][latest]
    np.testing.assert_array_equal(expected, test["deployed_ensemble"])


@pytest.fixture
def _week_sorted() -> pd.DataFrame:
    weeks = np.repeat(pd.date_range("2024-01-01", periods=6, freq="W-MON"), 3)
    return pd.DataFrame(
        {
            "week": weeks,
            "store_id": pd.array(["s1", "s2", "s3"] * 6, dtype="str"),
            "units": np.arange(18.0),
        }
    )


@pytest.mark.parametrize(
    "select",
    [
        lambda f: f["week"] < f["week"].iloc[9],  # a training prefix
        lambda f: f["week"].isin(f["week"].iloc[[9, 12]]),  # a backtest's test weeks
        lambda f: f["week"] >= f["week"].iloc[15],  # a validation suffix
        lambda f: f["units"].notna(),  # every row
        lambda f: f["units"] > 99,  # none
        lambda f: f["store_id"] == "s2",  # not one run of rows: a boolean selection
        lambda f: f["units"].isin([0.0, 17.0]),
    ],
    ids=["prefix", "window", "suffix", "all", "none", "scattered", "ends"],
)
def test_rows_selects_what_a_boolean_mask_does(_week_sorted, select):
    mask = select(_week_sorted)
    got = training._rows(_week_sorted, mask)
    pd.testing.assert_frame_equal(got, _week_sorted[mask])
    assert list(got.index) == list(_week_sorted.index[mask.to_numpy()])


def test_rows_is_a_frame_of_its_own(_week_sorted):
    before = _week_sorted.copy()
    for got in (
        training._rows(_week_sorted, _week_sorted["units"].notna()),
        training._rows(_week_sorted, _week_sorted["units"] < 6),
    ):
        assert got is not _week_sorted
        got.loc[got.index[0], "units"] = -1.0
        got["extra"] = 1
    pd.testing.assert_frame_equal(_week_sorted, before)  # copy-on-write: the source untouched
