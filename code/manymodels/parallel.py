"""Run a function once per partition, in parallel, without one failure stopping the others.

The default backend is a local process pool (``spawn``: safe with torch and threads), one
single-threaded worker per core, so ``n`` cores train ``n`` partitions at once instead of one
partition on ``n`` threads. ``workers=1`` runs in-process (easy to debug, and what tests use).
Each outcome carries the value or the error with its traceback, and the seconds it took. A
worker that dies (SIGKILL, the out-of-memory killer) fails its own partition only.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Outcome", "call_partition", "effective_workers", "init_worker", "run_partitions"]

log = logging.getLogger(__name__)
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass
class Outcome:
    """What running the function for one partition gave."""

    key: str
    ok: bool
    value: Any = None
    error: str = ""
    traceback: str = ""
    seconds: float = 0.0


def effective_workers(workers: int, tasks: int) -> int:
    """``workers`` (0: one per core), never more than there are tasks."""
    wanted = workers if workers > 0 else (os.cpu_count() or 1)
    return max(1, min(wanted, tasks))


def run_partitions(
    fn: Callable[..., Any],
    tasks: dict[str, tuple],
    workers: int = 0,
    on_done: Callable[[str, Outcome], None] | None = None,
) -> dict[str, Outcome]:
    """Call ``fn(*tasks[key])`` for every key; returns ``{key: Outcome}`` in the order of ``tasks``.

    A worker process that dies (killed, out of memory) fails only the partition it was running:
    the pool is restarted for the others, and the partitions that were running beside it are
    run again, each alone, to tell the culprit from its neighbours.

    Args:
        fn: a module-level function (it is pickled by reference for the worker processes).
        tasks: positional arguments per partition; keep them small (paths, settings), not frames.
        workers: processes to use; 0 means one per core, 1 runs in this process.
        on_done: called in this process with each task's final outcome as soon as it is known
            (in the order the tasks finish), while the others still run: the caller's own work
            per result (MLflow logging) overlaps the fits. If it raises, the tasks not started
            are cancelled and the error propagates.
    """
    n = effective_workers(workers, len(tasks))
    done = on_done or _ignore
    if n == 1:
        outcomes = {}
        for key, args in tasks.items():
            outcomes[key] = call_partition(fn, key, args)
            done(key, outcomes[key])
        return outcomes
    outcomes: dict[str, Outcome] = {}
    pending = list(tasks)
    with tempfile.TemporaryDirectory(prefix="manymodels-pool-") as markers:
        kw = {"outcomes": outcomes, "markers": markers, "done": done}
        while pending:
            in_flight = _pool_round(fn, tasks, pending, n, **kw)
            for key in in_flight:  # alone, so a second death is this partition's own
                if _pool_round(fn, tasks, [key], 1, **kw):
                    outcomes[key] = Outcome(key, False, error=_DIED)
                    log.info("  %-40s FAILED (%s)", key, _DIED)
                    done(key, outcomes[key])
            stuck = not in_flight and not any(k in outcomes for k in pending)
            for key in pending if stuck else ():  # died before any task started
                outcomes[key] = Outcome(key, False, error=f"{_DIED} (before starting)")
                done(key, outcomes[key])
            pending = [k for k in pending if k not in outcomes]
    return {key: outcomes[key] for key in tasks}


def _ignore(key: str, outcome: Outcome) -> None:  # noqa: ARG001 (no on_done given)
    pass


_DIED = "worker process died (killed, or out of memory?)"


def _pool_round(
    fn: Callable[..., Any],
    tasks: dict[str, tuple],
    keys: list[str],
    n: int,
    *,
    outcomes: dict[str, Outcome],
    markers: str,
    done: Callable[[str, Outcome], None],
) -> list[str]:
    """Run ``keys`` in one fresh pool into ``outcomes`` (``done`` with each); the keys in
    flight if a worker died."""
    context = multiprocessing.get_context("spawn")
    marker = {key: os.path.join(markers, str(i)) for i, key in enumerate(keys)}
    broken = False
    with ProcessPoolExecutor(max_workers=n, mp_context=context, initializer=init_worker) as pool:
        futures = {
            pool.submit(call_partition, fn, key, tasks[key], marker[key]): key for key in keys
        }
        try:
            for future in as_completed(futures):
                key = futures[future]
                try:
                    outcomes[key] = future.result()
                except BrokenProcessPool:  # a worker died: every unfinished future fails with it
                    broken = True
                    continue
                log.info(
                    "  %-40s %s (%.1f s)",
                    key,
                    "ok" if outcomes[key].ok else "FAILED",
                    outcomes[key].seconds,
                )
                done(key, outcomes[key])
        except BaseException:  # the caller's on_done failed (or Ctrl-C): start nothing more
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    if not broken:
        return []
    # a started task's marker stays when its worker dies (or is stopped with the broken pool)
    in_flight = [k for k in keys if k not in outcomes and os.path.exists(marker[k])]
    for k in keys:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker[k])
    log.warning("a worker process died; restarting the pool for %d partition(s)",
                sum(k not in outcomes for k in keys))  # fmt: skip
    return in_flight


def init_worker() -> None:
    """Set up a worker process (a pool's, or a Spark executor's Python worker) for one fit."""
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    # MLflow sets its own logger to INFO when imported; a worker's chatter is not the user's news
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def call_partition(
    fn: Callable[..., Any], key: str, args: tuple, marker: str | None = None
) -> Outcome:
    """``fn(*args)`` as an :class:`Outcome`: its value, or its error with the traceback."""
    start = time.perf_counter()
    if marker:  # removed when the call returns; left behind if this process dies
        Path(marker).touch()
    try:
        value = fn(*args)
    except Exception as exc:  # noqa: BLE001 (one partition's failure is reported, not raised)
        return Outcome(
            key,
            False,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
            seconds=time.perf_counter() - start,
        )
    finally:
        if marker:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(marker)
    return Outcome(key, True, value=value, seconds=time.perf_counter() - start)
