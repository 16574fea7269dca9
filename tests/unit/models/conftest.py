"""Fixtures for the model tests: the committed sample as a feature frame, split by week."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from manymodels.features import build_features, feature_columns

CATEGORICAL, NUMERIC = feature_columns()
COLUMNS = ["week", *CATEGORICAL, *NUMERIC]
TEST_WEEKS = 4


@dataclass(frozen=True)
class Split:
    """Model input by week: ``X``/``y`` to fit on, ``X_test``/``y_test`` the last weeks."""

    X: pd.DataFrame
    y: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny networks train fastest on one thread (as in the parallel runner's workers); several
    threads on a busy 2-core CI machine made these tests five times slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def _split(_conditioned) -> Split:
    frame = build_features(_conditioned[0])
    known = frame[frame["units"].notna()]
    last = sorted(known["week"].unique())[-TEST_WEEKS]
    train, test = known[known["week"] < last], known[known["week"] >= last]
    return Split(train[COLUMNS], train["units"], test[COLUMNS], test["units"])


@pytest.fixture
def split(_split: Split) -> Split:
    """The sample's feature frame: 24 series, the last 4 known weeks held out (copies)."""
    return Split(*(part.copy() for part in vars(_split).values()))


@pytest.fixture
def features() -> dict:
    """``categorical_features``/``numeric_features`` keyword arguments for the members."""
    return {"categorical_features": CATEGORICAL, "numeric_features": NUMERIC}


@pytest.fixture
def with_unseen(split: Split) -> pd.DataFrame:
    """The test rows, the first 5 with a store and the next 5 a product never seen in training."""
    X = split.X_test.copy()
    X.loc[X.index[:5], "store_id"] = "S9999"
    X.loc[X.index[5:10], "product_id"] = "P999"
    return X
