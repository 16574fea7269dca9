"""The Spark backend on a real pyspark in ``local[2]``: the same models, metrics, failures and
predictions as the local backend. One Spark session for the module (it takes seconds to start)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manymodels import backends, registry
from manymodels.backends import spark as spark_backend
from manymodels.cli import run_step
from manymodels.config import load_settings
from manymodels.features import build_features

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]
pyspark = pytest.importorskip("pyspark", reason="the spark extra: pip install 'manymodels[spark]'")

SAMPLE = Path(__file__).parents[1] / "data" / "raw"
AS_OF = "2018-02-26"
SPARK = ("--set", "spark.master=local[2]")
SCORED = "predictions/scoring_date=2018-02-26/predictions.parquet"


class _Workspace:
    """The sample's raw sources in a working folder; steps run in-process with few epochs."""

    def __init__(self, root: Path) -> None:
        self.work = root / "work"
        shutil.copytree(SAMPLE, self.work / "raw")

    def run(self, step: str, *extra: str) -> int:
        settings = [f"project.workdir={self.work}", "training.nn.epochs=2", "training.workers=1",
                    "scoring.workers=1", "training.plots=false"]  # fmt: skip
        return run_step(step, [*extra, *(a for s in settings for a in ("--set", s))])


@pytest.fixture(scope="module")
def spark_session():
    spark = spark_backend.session(
        load_settings("pipelines", "dev", ["spark.master=local[2]"]).spark
    )
    yield spark
    spark.stop()


@pytest.fixture(scope="module")
def ws(tmp_path_factory, spark_session):
    """The sample conditioned, validated and partitioned; three partitions to train, one of them
    with a file that is not parquet."""
    ws = _Workspace(tmp_path_factory.mktemp("spark"))
    for step, more in (("condition", ()), ("validate", ("--as-of", AS_OF)), ("partition", ())):
        assert ws.run(step, *more) == 0, step
    index = json.loads((ws.work / "partitions" / "index.json").read_text())
    ws.good = sorted(index["partitions"])[:2]
    ws.broken = sorted(index["partitions"])[2]
    (ws.work / "partitions" / f"{ws.broken}.parquet").write_bytes(b"not a parquet file")
    return ws


def test_the_local_session_runs_a_lean_jvm_without_a_web_ui(spark_session):
    """The JVM this process launched got the backend's options (its CPU: docs/benchmarks.md)."""
    runtime = spark_session._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    flags = set(runtime.getInputArguments())
    assert {"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"} <= flags
    assert spark_session.sparkContext.uiWebUrl is None


def _train(ws, backend: str) -> tuple[int, dict, dict]:
    rc = ws.run("train", "--partitions", *ws.good, ws.broken,
                "--set", f"training.backend={backend}", *SPARK)  # fmt: skip
    handoff = json.loads((ws.work / "runs" / "training.json").read_text())
    backtests = {
        p: pd.read_parquet(ws.work / "runs" / "backtest" / f"{p}.parquet") for p in ws.good
    }
    return rc, handoff, backtests


def test_training_on_spark_gives_the_local_models_metrics_and_failures(ws):
    rc_local, local, bt_local = _train(ws, "local")
    rc_spark, spark, bt_spark = _train(ws, "spark")
    assert rc_local == rc_spark == 1  # the broken partition fails the step at the end, alone
    assert local["parent_run_id"] != spark["parent_run_id"]
    for pid in ws.good:
        a, b = local["partitions"][pid], spark["partitions"][pid]
        assert a["status"] == b["status"] == "trained"
        # same seeds, one thread each: the same floating-point work (tolerance 1e-9 relative)
        assert b["metrics"] == pytest.approx(a["metrics"], rel=1e-9)
        assert b["weights"] == pytest.approx(a["weights"], rel=1e-9)
        pd.testing.assert_frame_equal(bt_spark[pid], bt_local[pid], rtol=1e-9)
        assert a["run_id"] != b["run_id"] and b["ensemble_uri"].startswith("runs:/")
    failed = spark["partitions"][ws.broken]
    assert failed["status"] == "failed" and failed["run_id"]
    assert failed["error"] == local["partitions"][ws.broken]["error"]
    assert str(ws.work / "partitions" / ws.broken) in failed["error"]
    # the models MLflow holds from the Spark run predict what the local run's do
    pid = ws.good[0]
    settings = load_settings("pipelines", "dev", [f"project.workdir={ws.work}"])
    registry.resolve_store(settings).activate()
    import mlflow.pyfunc

    frame = pd.read_parquet(ws.work / "partitions" / f"{pid}.parquet")
    predictions = []
    for handoff in (local, spark):
        model = mlflow.pyfunc.load_model(handoff["partitions"][pid]["ensemble_uri"])
        packed = model.unwrap_python_model().packed
        predictions.append(packed.predict(build_features(frame, **packed.features)))
    np.testing.assert_allclose(predictions[1], predictions[0], rtol=1e-9)
    assert not list(ws.work.glob(".staging-*")) and not list(ws.work.glob(".spark-*"))


def test_scoring_on_spark_writes_the_local_predictions(ws):
    for step in ("evaluate", "register", "promote"):
        assert ws.run(step) == 0, step
    out = {}
    for backend in ("local", "spark"):
        rc = ws.run("score", "--as-of", AS_OF, "--set", f"scoring.backend={backend}", *SPARK)
        assert rc == 1  # the partitions that were not trained have no model: reported
        report = (ws.work / "reports" / "scoring.md").read_text()
        out[backend] = pd.read_parquet(ws.work / SCORED).drop(columns="scored_at")
        for pid in ws.good:
            assert f"| {pid} |" in report
    assert sorted(set(out["spark"]["partition"])) == sorted(ws.good)
    pd.testing.assert_frame_equal(out["spark"], out["local"])


def die_or_double(x: int) -> int:
    """``2 * x``; 13 kills its own Python worker, as the out-of-memory killer would."""
    if x == 13:
        os._exit(137)
    return 2 * x


@pytest.fixture
def by_value():
    """Ship this test module's functions to the Spark workers by value (it is not installed)."""
    from pyspark import cloudpickle

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    yield
    cloudpickle.unregister_pickle_by_value(module)


def test_a_task_whose_worker_dies_fails_alone_in_blocks_of_tasks(ws, by_value):
    settings = load_settings(
        "pipelines", "dev", [f"project.workdir={ws.work}", "spark.partitions_per_task=2"]
    )
    tasks = {"a": (1,), "dies": (13,), "c": (3,), "d": (4,), "e": (5,)}
    out = backends.run(die_or_double, tasks, backend="spark", settings=settings)
    assert list(out) == list(tasks)
    assert {k: o.value for k, o in out.items() if o.ok} == {"a": 2, "c": 6, "d": 8, "e": 10}
    assert not out["dies"].ok
    assert "Python worker died" in out["dies"].error and "crashed" in out["dies"].error
    assert "SparkException" in out["dies"].traceback


def first_or_waits(name: str, flag: str) -> str:
    """Task ``first`` returns at once; the other waits (up to a minute) for the driver to have
    reported ``first``, which it can only do while this task still runs."""
    if name == "first":
        return "done"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if os.path.exists(flag):
            return "saw first reported"
        time.sleep(0.1)
    return "first was not reported while the job ran"


def test_each_task_is_reported_as_it_finishes_not_when_the_job_ends(ws, by_value, tmp_path):
    """The train step logs each block to MLflow in ``on_done``: on Spark as on the local
    backend, that overlaps the job instead of waiting for its last task."""
    settings = load_settings(
        "pipelines", "dev", [f"project.workdir={ws.work}", "spark.partitions_per_task=1"]
    )
    flag = tmp_path / "first-reported"
    seen: list[str] = []

    def on_done(key, outcome):
        seen.append(key)
        if key == "first" and outcome.ok:
            flag.write_text("")

    tasks = {"waits": ("waits", str(flag)), "first": ("first", str(flag))}
    out = backends.run(first_or_waits, tasks, backend="spark", settings=settings, on_done=on_done)
    assert seen == ["first", "waits"]  # once each, in the order they finished
    assert list(out) == list(tasks)
    assert {k: o.value for k, o in out.items()} == {"waits": "saw first reported", "first": "done"}


def quick_or_slow(name: str) -> str:
    if name == "slow":
        time.sleep(45)
    return name


def test_an_on_done_that_fails_stops_the_job_instead_of_waiting_for_it(ws, by_value):
    """A logging failure (or Ctrl-C) in the driver cancels the Spark job, as the local backend
    cancels its pool, rather than waiting for its slowest task."""
    settings = load_settings(
        "pipelines", "dev", [f"project.workdir={ws.work}", "spark.partitions_per_task=1"]
    )

    def on_done(key, outcome):
        raise RuntimeError(f"MLflow is down (logging {key})")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="MLflow is down"):
        backends.run(quick_or_slow, {"quick": ("quick",), "slow": ("slow",)}, backend="spark",
                     settings=settings, on_done=on_done)  # fmt: skip
    assert time.monotonic() - started < 30  # the slow task alone takes 45 s
    # the session is still usable: the cancelled job left no task running
    out = backends.run(quick_or_slow, {"a": ("a",)}, backend="spark", settings=settings)
    assert out["a"].value == "a"
