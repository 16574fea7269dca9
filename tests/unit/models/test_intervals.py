"""Conformal prediction intervals from out-of-sample residuals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from manymodels.models.intervals import ConformalIntervals, origin_coverage, quantile_names


def _poisson(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.5, 50, n)
    return rng.poisson(rate).astype(float), rate


def test_intervals_cover_the_target_share_of_new_data():
    y, p = _poisson(4000, 0)
    model = ConformalIntervals(0.8).fit(y, p)
    y_new, p_new = _poisson(4000, 1)
    bounds = model.predict(p_new)
    inside = (y_new >= bounds["p10"]) & (y_new <= bounds["p90"])
    assert 0.77 <= inside.mean() <= 0.85
    assert (bounds["p10"] <= bounds["p50"]).all() and (bounds["p50"] <= bounds["p90"]).all()
    assert (bounds["p10"] >= 0).all()


def test_wider_coverage_gives_wider_intervals():
    y, p = _poisson(1000, 2)
    narrow = ConformalIntervals(0.5).fit(y, p).predict(p)
    wide = ConformalIntervals(0.9).fit(y, p).predict(p)
    assert list(wide.columns) == ["p5", "p50", "p95"]
    assert (wide["p95"] - wide["p5"]).mean() > (narrow["p75"] - narrow["p25"]).mean()


def test_names_follow_the_coverage():
    assert quantile_names(0.8) == ("p10", "p50", "p90")


@pytest.mark.parametrize("coverage", [0, 1, 1.5])
def test_coverage_outside_zero_one_is_an_error(coverage):
    with pytest.raises(ValueError, match="coverage"):
        ConformalIntervals(coverage)


def test_bad_calibration_data_is_an_error():
    with pytest.raises(ValueError, match="as many actuals"):
        ConformalIntervals().fit([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        ConformalIntervals().fit([1.0, np.nan], [1.0, 2.0])


def test_origin_coverage_leaves_each_origin_out():
    y, p = _poisson(3000, 3)
    scored = pd.DataFrame({"units": y, "f": p, "origin": np.repeat([1, 2, 3], 1000)})
    result = origin_coverage(scored, "f", 0.8)
    assert 0.75 <= result["coverage"] <= 0.85 and result["width"] > 0
    # a forecast biased only at one origin is caught there: coverage falls
    scored.loc[scored["origin"] == 1, "f"] *= 3
    assert origin_coverage(scored, "f", 0.8)["coverage"] < result["coverage"]


def test_origin_coverage_with_one_origin_calibrates_in_sample():
    y, p = _poisson(500, 4)
    scored = pd.DataFrame({"units": y, "f": p, "origin": 1})
    assert origin_coverage(scored, "f", 0.8)["coverage"] >= 0.79
