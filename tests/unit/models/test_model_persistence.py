"""All four forecasters: pickle round trips, determinism, and no torch at import time."""

from __future__ import annotations

import pickle
import subprocess
import sys

import cloudpickle
import numpy as np
import pytest

from manymodels.models import (
    EmbeddingNetForecaster,
    Ensemble,
    HistoricalAverageBaseline,
    LassoForecaster,
)


def _make(kind: str, features: dict):
    nn = {"epochs": 2, "random_state": 0, **features}
    if kind == "baseline":
        return HistoricalAverageBaseline()
    if kind == "lasso":
        return LassoForecaster(random_state=0, **features)
    if kind == "nn":
        return EmbeddingNetForecaster(**nn)
    return Ensemble({"lasso": LassoForecaster(**features), "nn": EmbeddingNetForecaster(**nn)})


KINDS = ["baseline", "lasso", "nn", "ensemble"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_unpickled_models_predict_the_same(split, features, kind, dumps):
    model = _make(kind, features).fit(split.X, split.y)
    loaded = pickle.loads(dumps(model))
    np.testing.assert_array_equal(model.predict(split.X_test), loaded.predict(split.X_test))


@pytest.mark.parametrize("kind", KINDS)
def test_a_fixed_random_state_gives_the_same_model(split, features, kind):
    first = _make(kind, features).fit(split.X, split.y).predict(split.X_test)
    second = _make(kind, features).fit(split.X, split.y).predict(split.X_test)
    np.testing.assert_array_equal(first, second)


def test_importing_the_models_does_not_import_torch():
    code = "import sys, manymodels.models; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("kind", KINDS)
def test_week_of_year_may_arrive_as_plain_integers(split, features, kind):
    """MLflow's input schema turns the categorical week_of_year into int64 at serving time."""
    model = _make(kind, features).fit(split.X, split.y)
    as_int = split.X_test.astype({"week_of_year": "int64"})
    np.testing.assert_array_equal(model.predict(split.X_test), model.predict(as_int))
