"""Fixtures shared by the step tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from manymodels.data.partition import split_partitions


@pytest.fixture(scope="session")
def store_files(_conditioned, tmp_path_factory) -> dict[str, str]:
    """The conditioned sample split by store: the first three stores' partition files
    (read-only: the train-step tests share them)."""
    folder = tmp_path_factory.mktemp("parts")
    files = {}
    for pid, frame in list(split_partitions(_conditioned[0], ("store_id",)).items())[:3]:
        frame.to_parquet(folder / f"{pid}.parquet", index=False)
        files[pid] = str(folder / f"{pid}.parquet")
    return files


@pytest.fixture(scope="session")
def short_partition(store_files) -> Path:
    """The first store's partition cut to its first five weeks: too short to train."""
    first = Path(next(iter(store_files.values())))
    frame = pd.read_parquet(first)
    short = frame[frame["week"] < frame["week"].min() + pd.Timedelta(weeks=5)]
    path = first.parent / "short.parquet"
    short.to_parquet(path, index=False)
    return path
