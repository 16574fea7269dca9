"""Where the per-partition work runs: ``local`` processes on this machine, or ``spark`` executors.

``training.backend`` and ``scoring.backend`` pick one (``local`` by default). Either way the same
module-level function runs once per task (a partition, or a block of partitions) and the
caller gets the same ``{key: Outcome}`` back, in the order of its tasks: the value, or the error
with its traceback, per task. A failed task fails only itself. Everything that talks to MLflow
stays in the caller (the driver): the tasks only write files under the staging folder.

Tasks of a block return ``{partition: value}`` (an exception as a value fails that partition
alone); :func:`per_partition` (:func:`split_block` for one block, as it finishes) turns their
outcomes into one per partition, so a block-level function drops in where a per-partition one
was (docs/scale-out.md).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from manymodels.backends import local
from manymodels.config import Settings
from manymodels.parallel import Outcome, effective_workers

__all__ = [
    "BACKENDS",
    "per_partition",
    "run",
    "slots",
    "split_block",
    "staging",
    "staging_root",
]

log = logging.getLogger(__name__)
BACKENDS = ("local", "spark")


def run(
    fn: Callable[..., Any],
    tasks: dict[str, tuple],
    *,
    backend: str,
    settings: Settings,
    workers: int = 0,
    on_done: Callable[[str, Outcome], None] | None = None,
) -> dict[str, Outcome]:
    """Call ``fn(*tasks[key])`` for every key on ``backend``; ``{key: Outcome}`` in task order.

    Args:
        fn: a module-level function (pickled by reference: workers and executors import it).
        tasks: positional arguments per task; paths and settings rather than frames (a frame is
            fine, but on Spark it travels through the staging folder).
        backend: ``local`` or ``spark``.
        settings: the run's settings (``spark`` section: session, staging folder).
        workers: local processes (0: one per core, 1: in this process); Spark ignores it.
        on_done: ``on_done(key, outcome)`` in this process for each task, as each one
            finishes (the caller's logging overlaps the fits), on either backend.
    """
    if backend == "local":
        return local.run(fn, tasks, workers, on_done)
    if backend == "spark":
        from manymodels.backends import spark  # noqa: PLC0415 (pyspark is an optional extra)

        return spark.run(fn, tasks, settings, on_done)
    raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")


def slots(settings: Settings, backend: str, workers: int = 0) -> int:
    """How many tasks ``backend`` runs at once: what to cut work into blocks by, so that no core
    idles (``steps.train.make_blocks`` makes a multiple of it).

    Args:
        settings: the run's settings (``spark`` section: the session).
        backend: ``local``: ``workers`` (0: one per core of this machine); ``spark``: the
            session's default parallelism (the cores of all its executors), which on a cluster is
            not the driver's core count.
        workers: local processes; Spark ignores it.
    """
    if backend == "spark":
        from manymodels.backends import spark  # noqa: PLC0415 (pyspark is an optional extra)

        return spark.parallelism(spark.session(settings.spark))
    if backend == "local":
        return effective_workers(workers, 1 << 30)
    raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")


def staging_root(settings: Settings, backend: str) -> Path:
    """The folder that holds staging folders: ``spark.staging_dir`` for Spark when set (a folder
    every node of the cluster sees), else the working folder."""
    if backend == "spark" and settings.spark.staging_dir:
        return Path(settings.spark.staging_dir)
    return settings.workdir


@contextlib.contextmanager
def staging(settings: Settings, backend: str) -> Iterator[str]:
    """A fresh staging folder below :func:`staging_root`, removed with everything in it on exit."""
    root = staging_root(settings, backend)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=root) as stage:
        yield stage


def per_partition(outcomes: dict[str, Outcome], blocks: dict[str, list[str]]) -> dict[str, Outcome]:
    """One outcome per partition from the outcomes of block tasks, in the order of ``blocks``
    (each block split by :func:`split_block`).

    Args:
        outcomes: per block; a block's value is ``{partition: value}``, where an exception as a
            value fails that partition alone.
        blocks: the partitions of each block.
    """
    out: dict[str, Outcome] = {}
    for block, members in blocks.items():
        out |= split_block(block, outcomes[block], members)
    return out


def split_block(block: str, outcome: Outcome, members: Iterable[str]) -> dict[str, Outcome]:
    """The outcome of one block task as one outcome per partition of ``members``, in order.

    Each partition is charged an even share of the block's seconds, whether it failed or not. A
    failed block fails each of them with the block's error and traceback; an exception as a
    partition's value fails it alone, its traceback the exception's notes (where a worker put
    it: ``steps.train._portable``); a partition missing from the block's value fails too.
    """
    members = list(members)
    share = outcome.seconds / max(1, len(members))
    out: dict[str, Outcome] = {}
    for pid in members:
        if not outcome.ok:
            out[pid] = Outcome(pid, False, error=outcome.error, traceback=outcome.traceback,
                               seconds=share)  # fmt: skip
            continue
        value = outcome.value.get(pid, KeyError(f"block {block} returned no result for {pid}"))
        if isinstance(value, BaseException):
            out[pid] = Outcome(pid, False, error=f"{type(value).__name__}: {value}",
                               traceback="".join(getattr(value, "__notes__", ())),
                               seconds=share)  # fmt: skip
        else:
            out[pid] = Outcome(pid, True, value=value, seconds=share)
    return out
