"""Batch scoring against a real ``mlflow server`` on loopback: the registry is not an embedded
sqlite file, so :mod:`manymodels.scoring_registry` lists the champions and loads their compact
forms through MLflow's REST API and its artifact proxy (``mlflow-artifacts:/`` sources), and a
block is scored with them. Registered models with champion, challenger and previous aliases, a
model without a champion and another prefix's champion, all made by the registry's own
functions, as the register and promote steps make them.
"""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import mlflow_schema
from manymodels import localservers, registry, scoring_registry
from manymodels.scoring_blocks import BlockJob, forecasts_path, score_block
from manymodels.scoring_compact import COMPACT_FILE, Averages, CompactModel
from manymodels.scoring_files import partition_ids, write_staged
from manymodels.steps import score
from manymodels.stores import Store, model_name

pytestmark = pytest.mark.slow

KEYS = ("region", "store_format", "speed")
FEATURES = {"horizon_weeks": 4, "lags": [0], "rolling_windows": [4], "covariates": {}}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Store:
    """A real MLflow server on sqlite (its schema copied in, not migrated)."""
    server = localservers.MlflowServer(tmp_path_factory.mktemp("server"))
    mlflow_schema.precreate(Path(server.backend_uri.removeprefix("sqlite:///")))
    url = server.start()
    yield Store("dev", url, url)
    server.stop()


def _block() -> pd.DataFrame:
    """Two partitions, a store x product each (plus a product the champions never saw), 12
    weeks of sales and 4 to forecast."""
    rows = []
    for region, store, products in (("north", "S1", ("P1", "P9")), ("south", "S2", ("P2",))):
        for product in products:
            for w in range(16):
                rows.append({
                    "week": pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=w),
                    "region": region, "store_format": "large", "speed": "fast",
                    "store_id": store, "product_id": product,
                    "units": 3.0 + w if w < 12 else np.nan,
                })  # fmt: skip
    return pd.DataFrame(rows)


def _compact(pid: str, level: float) -> CompactModel:
    """A baseline champion: ``level`` for its partition's first series, 1.0 for any other."""
    series = {"north": ("S1", "P1"), "south": ("S2", "P2")}[pid.split(".", maxsplit=1)[0]]
    average = Averages(["store_id", "product_id"], 2, None, {series: level}, 1.0)
    return CompactModel("baseline", pid, FEATURES, [], [("estimator", average, None)],
                        series=["/".join(series)])  # fmt: skip


def _register(store: Store, tmp: Path, name: str, compact: CompactModel, tags: dict) -> str:
    """A version of ``name`` with ``compact`` as its artifact, made through the server."""
    client = store.client()
    experiment = client.get_experiment_by_name("scoring")
    experiment = experiment.experiment_id if experiment else client.create_experiment("scoring")
    run = client.create_run(experiment)
    path = tmp / COMPACT_FILE
    path.write_bytes(pickle.dumps(compact))
    registry.log_artifact(store, run.info.run_id, path, "model/artifacts")
    version = registry.register(store, f"runs:/{run.info.run_id}/model", name, tags)
    return str(version.version)


def test_the_champions_are_scored_through_a_real_mlflow_server(server, settings, tmp_path):
    table = _block()
    pids = sorted(set(partition_ids(table, KEYS)))
    names = {pid: model_name(settings, pid) for pid in pids}
    north, south = pids

    def version(pid: str, level: float) -> str:
        return _register(server, tmp_path, names[pid], _compact(pid, level),
                         {"model_kind": "baseline"})  # fmt: skip

    before, kept, lost = (version(north, level) for level in (2.0, 5.0, 7.0))
    registry.set_alias(server, names[north], registry.PREVIOUS, before)
    registry.set_alias(server, names[north], registry.CHAMPION, kept)
    registry.set_alias(server, names[north], registry.CHALLENGER, lost)
    only = version(south, 6.0)
    registry.set_alias(server, names[south], registry.CHAMPION, only)
    want = {north: kept, south: only}
    _register(server, tmp_path, "demand.west.large.fast", _compact(north, 9.0), {})  # no alias
    other = _register(server, tmp_path, "other.north.large.fast", _compact(north, 8.0), {})
    registry.set_alias(server, "other.north.large.fast", registry.CHAMPION, other)

    assert scoring_registry.embedded_db(server) is None  # MLflow's way, not the tables
    asked = [*pids, "west.large.fast"]
    champions = score.champions_of(server, settings, asked)
    assert sorted(champions) == pids
    assert {p: str(v.version) for p, v in champions.items()} == want
    assert all(v.source.startswith("mlflow-artifacts:") for v in champions.values())
    status, members = score.plan(pids, server, settings, dt.date.today(), False,
                                 champions=champions)  # fmt: skip
    assert [status[p]["status"] for p in pids] == ["scored", "scored"]

    rows = tmp_path / "staging" / "block-00000.arrow"
    rows.parent.mkdir()
    write_staged(pa.Table.from_pandas(table, preserve_index=False), rows)
    job = BlockJob(str(rows), tuple(members[p] for p in pids), server, KEYS,
                   str(dt.date.today()), "2024-04-01T00:00:00+00:00")  # fmt: skip
    out = score_block(job)
    assert all(isinstance(out[p], dict) for p in pids), out
    assert out[north]["unseen"] == ["S1/P9"] and out[south]["unseen"] == []
    got = pd.read_parquet(forecasts_path(rows))
    assert len(got) == 3 * 4 and set(got["model_version"]) == {want[north], want[south]}
    level = got.set_index(["store_id", "product_id"])["prediction"].groupby(level=[0, 1]).max()
    # the champions' levels (5.0 and 6.0), not the previous (2.0) nor the challenger (7.0)
    assert level.to_dict() == {("S1", "P1"): 5.0, ("S1", "P9"): 1.0, ("S2", "P2"): 6.0}
