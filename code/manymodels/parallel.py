"""Run a function once per partition, in parallel, without one failure stopping the others.

The default backend is a local process pool (``spawn``: safe with torch and threads), one
single-threaded worker per core, so ``n`` cores train ``n`` partitions at once instead of one
partition on ``n`` threads. ``workers=1`` runs in-process (easy to debug, and what tests use).
Each outcome carries the value or the error with its traceback, and the seconds it took.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

__all__ = ["Outcome", "effective_workers", "run_partitions"]

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
    fn: Callable[..., Any], tasks: dict[str, tuple], workers: int = 0
) -> dict[str, Outcome]:
    """Call ``fn(*tasks[key])`` for every key; returns ``{key: Outcome}`` in the order of ``tasks``.

    Args:
        fn: a module-level function (it is pickled by reference for the worker processes).
        tasks: positional arguments per partition; keep them small (paths, settings), not frames.
        workers: processes to use; 0 means one per core, 1 runs in this process.
    """
    n = effective_workers(workers, len(tasks))
    if n == 1:
        return {key: _call(fn, key, args) for key, args in tasks.items()}
    outcomes: dict[str, Outcome] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=context, initializer=_init_worker) as pool:
        futures = {pool.submit(_call, fn, key, args): key for key, args in tasks.items()}
        for future in as_completed(futures):
            key = futures[future]
            try:
                outcomes[key] = future.result()
            except BrokenProcessPool as exc:  # a worker died (killed, out of memory)
                outcomes[key] = Outcome(key, False, error=f"worker process died: {exc}")
            log.info(
                "  %-40s %s (%.1f s)",
                key,
                "ok" if outcomes[key].ok else "FAILED",
                outcomes[key].seconds,
            )
    return {key: outcomes[key] for key in tasks}


def _init_worker() -> None:
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    # MLflow sets its own logger to INFO when imported; a worker's chatter is not the user's news
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def _call(fn: Callable[..., Any], key: str, args: tuple) -> Outcome:
    start = time.perf_counter()
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
    return Outcome(key, True, value=value, seconds=time.perf_counter() - start)
