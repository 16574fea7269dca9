"""Azure ML parallel-job entry (``.cloud/azureml/components/train-partitions.yml``): many
partitions trained over many nodes, one partition file per mini-batch item.

The runtime calls :func:`init` once per worker process (the component's ``program_arguments``
are in ``sys.argv``) and :func:`run` per mini-batch: a list of files, each
``<partition id>.parquet`` as the ``partition`` step writes them. Each partition goes through
:func:`manymodels.steps.train.fit_and_stage`, the function the ``train`` step runs per
partition, so both paths train the same way. One partition failing is a ``failed`` row (with its
error), never a lost mini-batch: the other partitions of the batch still train.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from manymodels.config import Settings, load_settings
from manymodels.io import write_json
from manymodels.steps.train import fit_and_stage

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
    """Train each partition file of ``mini_batch``; one JSON row per partition.

    Returns:
        Rows ``{"partition", "status": "trained" | "failed", "metrics" | "error"}``, which the
        runtime appends to the ``results`` output.
    """
    if "settings" not in _state:
        raise RuntimeError("train_partitions: init() was not called before run()")
    settings, out = _state["settings"], _state["out"]
    rows = []
    for item in mini_batch:
        pid = partition_id(item)
        if pid is None:
            continue
        try:
            fit = fit_and_stage(str(item), pid, settings, str(out))
        except Exception as exc:  # one partition's failure is its row, not the batch's
            log.exception("train_partitions: partition %s failed", pid)
            row = {"partition": pid, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        else:
            row = {"partition": pid, "status": "trained", "metrics": fit.metrics}
            write_json({**row, "weights": fit.weights, "info": fit.info}, out / pid / "fit.json")
        rows.append(json.dumps(row, default=str))
    return rows
