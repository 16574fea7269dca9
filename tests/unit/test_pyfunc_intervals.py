"""PackedModel.predict_interval: the P10/P90 band the online API answers with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from manymodels.models.intervals import ConformalIntervals
from manymodels.pyfunc import PackedModel


class Constant:
    def predict(self, frame):
        return np.full(len(frame), 10.0)


def test_the_interval_is_the_p10_p90_band_of_predict_frame():
    rng = np.random.default_rng(0)
    y_pred = rng.uniform(5, 15, 400)
    intervals = ConformalIntervals(0.8).fit(y_pred + rng.normal(0, 2, 400), y_pred)
    packed = PackedModel(Constant(), "ensemble", "a.b.c", {}, ["x"], intervals)
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    lower, upper = packed.predict_interval(frame)
    bands = packed.predict_frame(frame)
    assert np.allclose(lower, bands["p10"]) and np.allclose(upper, bands["p90"])
    assert (lower < 10).all() and (upper > 10).all()


def test_a_model_without_intervals_says_so():
    packed = PackedModel(Constant(), "baseline", "a.b.c", {}, ["x"])
    with pytest.raises(AttributeError, match="a.b.c"):
        packed.predict_interval(pd.DataFrame({"x": [1.0]}))
