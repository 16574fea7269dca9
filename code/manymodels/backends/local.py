"""The ``local`` backend: a pool of processes on this machine (:mod:`manymodels.parallel`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from manymodels.parallel import Outcome, effective_workers, run_partitions

__all__ = ["run"]

log = logging.getLogger(__name__)


def run(
    fn: Callable[..., Any],
    tasks: dict[str, tuple],
    workers: int = 0,
    on_done: Callable[[str, Outcome], None] | None = None,
) -> dict[str, Outcome]:
    """``fn(*tasks[key])`` per key in ``workers`` processes (0: one per core, 1: in-process);
    ``on_done(key, outcome)`` as each finishes (:func:`~manymodels.parallel.run_partitions`)."""
    log.info(
        "local: %d task(s) on %d worker(s)", len(tasks), effective_workers(workers, len(tasks))
    )
    return run_partitions(fn, tasks, workers, on_done)
