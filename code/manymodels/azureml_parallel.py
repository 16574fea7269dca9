"""Azure ML parallel-job entry (``.cloud/azureml/components/train-partitions.yml``): many
partitions trained over many nodes, a block of partition files per mini-batch.

The runtime calls :func:`init` once per worker process (the component's ``program_arguments``
are in ``sys.argv``) and :func:`run` per mini-batch: a list of files, each
``<partition id>.parquet`` as the ``partition`` step writes them. The partitions of a
mini-batch are one block of :func:`manymodels.steps.train.fit_block_and_stage`, the function
the ``train`` step runs per block on either backend: their networks train as one batched
program, and every partition is staged as the ``train`` step stages it (``training.block_size``
1: one partition at a time through ``fit_and_stage``). One partition failing is a ``failed``
row (with its error), never a lost mini-batch: the other partitions of the batch still train.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path

from manymodels.config import Settings, load_settings
from manymodels.io import write_json
from manymodels.steps.train import fit_and_stage, fit_block_and_stage

__all__ = ["init", "partition_id", "run"]

log = logging.getLogger(__name__)
SUFFIX = ".parquet"
_state: dict = {}


def partition_id(path: str | Path) -> str | None:
    """The partition id of a mini-batch item (``north-texas.large.fast.parquet``), or None for
    a file that is not a partition (e.g. ``index.json``)."""
    name = Path(path).name
    return name.removesuffix(SUFFIX) if name.endswith(SUFFIX) and name != SUFFIX else None


def init(argv: list[str] | None = None) -> Settings:
    """Parse the component's arguments once per worker; later :func:`run` calls use them."""
    parser = argparse.ArgumentParser(prog="train_partitions")
    parser.add_argument("--config-dir", default="pipelines")
    parser.add_argument("--env", default="dev", choices=("dev", "prod"))
    parser.add_argument("--out", type=Path, required=True, help="staging folder (an output)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    # the runtime adds arguments of its own: keep ours, leave theirs
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    settings = load_settings(args.config_dir, args.env, args.overrides)
    if args.epochs is not None:
        settings = settings.replace({"training.nn.epochs": args.epochs})
    args.out.mkdir(parents=True, exist_ok=True)
    _state.update(settings=settings, out=args.out)
    return settings


def run(mini_batch: list[str]) -> list[str]:
    """Train the partition files of ``mini_batch`` as one block; one JSON row per partition.

    Returns:
        Rows ``{"partition", "status": "trained" | "failed", "metrics" | "error"}`` in the order
        of ``mini_batch``, which the runtime appends to the ``results`` output.
    """
    if "settings" not in _state:
        raise RuntimeError("train_partitions: init() was not called before run()")
    settings, out = _state["settings"], _state["out"]
    files = {pid: str(item) for item in mini_batch if (pid := partition_id(item)) is not None}
    if settings.training.block_size > 1:
        fits = fit_block_and_stage(files, settings, str(out))
    else:
        fits = {pid: _fit_one(path, pid, settings, out) for pid, path in files.items()}
    rows = []
    for pid, fit in fits.items():
        if isinstance(fit, Exception):  # one partition's failure is its row, not the batch's
            log.error("train_partitions: partition %s failed: %s%s", pid, _text(fit),
                      "".join(getattr(fit, "__notes__", [])))  # fmt: skip
            row = {"partition": pid, "status": "failed", "error": _text(fit)}
        else:
            row = {"partition": pid, "status": "trained", "metrics": fit.metrics}
            write_json({**row, "weights": fit.weights, "info": fit.info}, out / pid / "fit.json")
        rows.append(json.dumps(row, default=str))
    return rows


def _fit_one(path: str, pid: str, settings: Settings, out: Path):
    """:func:`fit_and_stage`, its error as the value (as a block returns it)."""
    try:
        return fit_and_stage(path, pid, settings, str(out))
    except Exception as exc:  # noqa: BLE001 (one partition's failure is its own)
        exc.add_note(traceback.format_exc())
        return exc


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
