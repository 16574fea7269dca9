"""Step ``train``: a rolling-origin backtest, then one ensemble (LASSO + embedding net by
default) and the baseline per partition fitted on all known weeks, in parallel across
processes; each partition logged as an MLflow run nested in the pipeline's parent run, with
its metrics, plots and both models as pyfunc models (registering them is the ``register``
step's job, after the ``evaluate`` gate).

One failing partition does not stop the others: it is logged as a FAILED run with its error and
the step exits 1 at the end (unless ``training.fail_on_partition_error`` is false). The hand-off
to later steps is ``<workdir>/runs/training.json``, with each partition's backtest forecasts in
``<workdir>/runs/backtest/<partition>.parquet`` (the gate compares champions on them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import os
import pickle
import shutil
import time
import traceback
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import pandas as pd

from manymodels import backends, registry
from manymodels.config import Settings
from manymodels.io import read_json, write_json
from manymodels.monitoring.drift import write_profile
from manymodels.parallel import Outcome, effective_workers
from manymodels.plots import residual_plot
from manymodels.redact import redact
from manymodels.report import markdown_table
from manymodels.steps import as_of_date, base_parser, guarded, settings_from, setup_logging
from manymodels.training import PartitionFit, feature_settings, train_block, train_partition

__all__ = [
    "backtest_path",
    "config_hash",
    "fit_and_stage",
    "fit_block_and_stage",
    "main",
    "make_blocks",
    "plotted_partitions",
    "run_blocks",
    "select_partitions",
]

log = logging.getLogger(__name__)


# Training settings that change how a run goes (processes, plots, which partitions), not the
# models it fits; the data's own identity is the separate data_version tag.
_RUN_ONLY_TRAINING = (
    "steps",
    "workers",
    "block_size",
    "backend",
    "plots",
    "max_plots",
    "partitions",
    "fail_on_partition_error",
)


def config_hash(settings: Settings) -> str:
    """The hash of the settings that decide the models (the ``config_hash`` tag an identical
    re-run is recognised by): the data contract, the partitioning and training, without where
    the run writes (``project``, ``mlflow``), which environment it runs in, the execution-only
    training keys, the data's location (``data.uri``) and the scoring, serving and monitoring
    sections. A moved working folder or another worker count is the same training."""
    chosen = dataclasses.asdict(settings)
    training = {k: v for k, v in chosen["training"].items() if k not in _RUN_ONLY_TRAINING}
    data = {k: v for k, v in chosen["data"].items() if k != "uri"}
    decides = {
        "data": data,
        "sources": chosen["sources"],
        "partition": chosen["partition"],
        "training": training,
    }
    text = json.dumps(decides, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def backtest_path(settings: Settings, partition: str) -> Path:
    """Where a partition's backtest forecasts are kept for the gate (``runs/backtest/``)."""
    return settings.path("runs", "backtest", f"{partition}.parquet")


def select_partitions(index: dict, only: list[str], sample: int) -> list[str]:
    """The partition ids to train: ``only`` if given (each must exist), else all; then the first
    ``sample`` of them (0: all)."""
    known = list(index["partitions"])
    unknown = sorted(set(only) - set(known))
    if unknown:
        raise ValueError(
            f"unknown partition(s) {unknown}; known: {known[:5]}... (see partitions/index.json)"
        )
    chosen = [p for p in known if p in only] if only else known
    return chosen[:sample] if sample else chosen


def plotted_partitions(chosen: list[str], settings: Settings) -> set[str]:
    """The partitions of a run that get a residual plot: none without ``training.plots``, else
    the first ``training.max_plots`` of ``chosen`` by id (0: all)."""
    t = settings.training
    if not t.plots:
        return set()
    ordered = sorted(chosen)
    return set(ordered[: t.max_plots] if t.max_plots else ordered)


def fit_and_stage(
    path: str, partition: str, settings: Settings, stage: str, plot: bool | None = None
) -> PartitionFit:
    """Train one partition from its file and save its pyfunc models and plots under ``stage``
    (its residual plot when ``plot``; None: when ``training.plots``).

    What parallel workers run: saving models and drawing plots here spreads that cost over the
    workers, so the main process only uploads folders to MLflow. Returns the fit
    :meth:`~manymodels.training.PartitionFit.released` (its models are in ``stage``).
    """
    _one_thread()
    start = time.process_time()
    frame = pd.read_parquet(path)
    read = time.process_time() - start
    fit = train_partition(frame, partition, settings)
    fit.info.setdefault("cpu_seconds", {})["read"] = read
    _stage(fit, frame, settings, stage, plot=settings.training.plots if plot is None else plot)
    return fit.released()


def fit_block_and_stage(
    paths: dict[str, str], settings: Settings, stage: str, plot: Collection[str] | None = None
) -> dict[str, PartitionFit | Exception]:
    """:func:`fit_and_stage` for a block of partitions (``{partition: parquet path}``), their
    embedding networks trained as one batched program (:func:`manymodels.training.train_block`);
    a residual plot for the partitions in ``plot`` (None: every one when ``training.plots``).

    A plain module-level function of picklable arguments: what a worker process, a Spark
    executor or an Azure ML parallel job runs per block.

    Returns:
        per partition: its fit (models saved under ``stage``; the returned fit is
        :meth:`~manymodels.training.PartitionFit.released`: no models, no backtest rows, so a
        worker sends back a few kB per partition), or the exception that failed it
        (picklable; its traceback in ``__notes__``). One failure fails only its partition.
    """
    _one_thread()
    frames, results, read = {}, {}, {}
    for pid, path in paths.items():
        start = time.process_time()
        try:
            frames[pid] = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 (one partition's failure is its own)
            results[pid] = _portable(exc)
        read[pid] = time.process_time() - start
    templates: dict = {}  # the block's first saved model of each kind and dtypes
    for pid, fit in train_block(frames, settings).items():
        if isinstance(fit, Exception):
            results[pid] = _portable(fit)
            continue
        fit.info["cpu_seconds"]["read"] = read[pid]
        try:
            wanted = settings.training.plots if plot is None else pid in plot
            _stage(fit, frames[pid], settings, stage, templates, plot=wanted)
        except Exception as exc:  # noqa: BLE001
            results[pid] = _portable(exc)
            continue
        results[pid] = fit.released()  # the models are saved: send back only what is logged
    return {pid: results[pid] for pid in paths}


def run_blocks(
    files: dict[str, str],
    settings: Settings,
    stage: str,
    workers: int,
    plot: Collection[str] | None = None,
    *,
    on_done: Callable[[str, Outcome], None] | None = None,
) -> dict[str, Outcome]:
    """Train ``files`` (``{partition: path}``) in blocks of about ``training.block_size``
    partitions (of similar size, so little padding), one block per worker task; returns one
    :class:`~manymodels.parallel.Outcome` per partition, as ``run_partitions`` does. ``plot``:
    the partitions to plot (None: :func:`plotted_partitions` of ``files``); ``on_done``: called
    with each partition's outcome as soon as its block has finished."""
    backend = settings.training.backend  # blocks cut by the tasks it runs at once (on a
    slots = backends.slots(settings, backend, workers)  # cluster: its executors' cores)
    blocks = make_blocks(files, settings.training.block_size, slots)
    plot = plotted_partitions(list(files), settings) if plot is None else set(plot)
    tasks = {
        name: (paths, settings, stage, tuple(p for p in paths if p in plot))
        for name, paths in blocks.items()
    }
    outcomes: dict[str, Outcome] = {}

    def block_done(name: str, block: Outcome) -> None:
        for pid, outcome in backends.split_block(name, block, blocks[name]).items():
            outcomes[pid] = outcome
            if on_done:
                on_done(pid, outcome)

    ran = backends.run(
        fit_block_and_stage,
        tasks,
        backend=backend,
        settings=settings,
        workers=workers,
        on_done=block_done,
    )
    for name, block in ran.items():  # a backend that did not report it as it finished
        if any(pid not in outcomes for pid in blocks[name]):
            block_done(name, block)
    return {pid: outcomes[pid] for pid in files}


def make_blocks(files: dict[str, str], block_size: int, workers: int) -> dict[str, dict]:
    """Blocks of at most ``block_size`` partitions, at least one per worker, as even as can be,
    partitions of similar file size together (a block pads every network to its largest)."""
    if not files:
        return {}
    order = sorted(files, key=lambda p: (_size(files[p]), p))
    w = effective_workers(workers, len(order))
    n = max(math.ceil(len(order) / block_size), w)
    n = min(math.ceil(n / w) * w, len(order))  # a multiple of the workers: none idles at the end
    size, extra = divmod(len(order), n)
    blocks, start = {}, 0
    for b in range(n):
        end = start + size + (b < extra)
        blocks[f"block-{b + 1:04d}"] = {p: files[p] for p in order[start:end]}
        start = end
    return blocks


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:  # reading it will fail with a clear error, in its own partition
        return 0


def _save(
    packed, path: Path, example: pd.DataFrame, kind: str, templates: dict | None, *, shared: dict
) -> None:
    dtypes = (kind, tuple(example.columns), tuple(str(t) for t in example.dtypes))
    if templates is not None and dtypes in templates:
        registry.save_pyfunc_like(templates[dtypes], packed, path, example, shared)
        return
    registry.save_pyfunc(packed, path, example)
    if templates is not None:
        templates[dtypes] = path


def _one_thread() -> None:
    # One thread per worker: these networks are too small to gain from more (threads made them
    # slower here), and parallelism comes from one worker process per core instead.
    import torch  # noqa: PLC0415 (the import costs seconds; only training pays it)

    torch.set_num_threads(1)


def _portable(exc: Exception) -> Exception:
    """``exc`` with its traceback as a note, or a RuntimeError naming it when it cannot be
    pickled back from a worker."""
    if exc.__traceback__ is not None:
        exc.add_note("".join(traceback.format_exception(exc)))
    try:
        pickle.dumps(exc)
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _stage(
    fit: PartitionFit,
    frame: pd.DataFrame,
    settings: Settings,
    stage: str,
    templates: dict | None = None,
    *,
    plot: bool = True,
) -> None:
    """Save a fitted partition's models, plot, backtest and drift profile under ``stage``
    (CPU seconds per step added to ``fit.info["cpu_seconds"]``). With ``templates`` (a dict
    shared by a block) the first model of each kind is saved by MLflow and the rest are made
    from its folder (:func:`manymodels.registry.save_pyfunc_like`): the same pyfunc format."""
    seconds = fit.info.setdefault("cpu_seconds", {})
    partition = fit.partition
    folder = Path(stage) / partition
    artifacts = folder / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    clock = time.process_time()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.process_time()
        seconds[name] = seconds.get(name, 0.0) + now - clock
        clock = now

    if plot:
        residual_plot(fit.test, partition, artifacts / "residuals.png")
    lap("plots")
    fit.test.to_parquet(artifacts / "backtest.parquet", index=False)
    keep = backtest_path(settings, partition)
    keep.parent.mkdir(parents=True, exist_ok=True)
    fit.test.to_parquet(keep, index=False)
    lap("backtest_parquet")
    shared: dict = {}  # both models' input example is the same: its files written once
    for kind in ("ensemble", "baseline"):
        _save(getattr(fit, kind), folder / kind, fit.example, kind, templates, shared=shared)
    lap("save_pyfunc")
    write_profile(frame, fit, folder)  # input drift reference (manymodels.monitoring.drift)
    lap("profile")
    write_json(
        {"features": fit.ensemble.columns, "weights": fit.weights, "info": fit.info},
        artifacts / "features.json",
    )


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = base_parser("train", __doc__)
    parser.add_argument(
        "--epochs", type=int, help="override training.nn.epochs (few for PR checks)"
    )
    parser.add_argument("--sample", type=int, default=0, help="train only the first N partitions")
    parser.add_argument(
        "--partitions", nargs="*", default=[], help="train only these partition ids"
    )
    parser.add_argument(
        "--workers", type=int, help="processes (default: training.workers; 0: all cores)"
    )
    args = parser.parse_args(argv)
    setup_logging()
    settings = settings_from(args)
    if args.epochs is not None:
        settings = settings.replace({"training.nn.epochs": args.epochs})
    workers = settings.training.workers if args.workers is None else args.workers
    index = read_json(settings.path("partitions", "index.json"), step="partition")
    try:
        only = args.partitions or list(settings.training.partitions)  # monitoring's retrain
        chosen = select_partitions(index, only, args.sample)
    except ValueError as exc:
        log.error("train: %s", exc)
        return 2
    settings.workdir.mkdir(parents=True, exist_ok=True)
    backend = settings.training.backend  # local processes or Spark executors (docs/scale-out.md)
    with backends.staging(settings, backend) as stage:
        files = {p: str(settings.path("partitions", f"{p}.parquet")) for p in chosen}
        plot = plotted_partitions(chosen, settings)  # plots are for people: a few per run
        tasks = {p: (files[p], p, settings, stage, p in plot) for p in chosen}
        log.info("train: %d partitions on the %s backend", len(tasks), backend)
        store = registry.resolve_store(settings, local=args.local)
        # each partition's run is logged as soon as its fit (or block) is back, while the
        # workers fit the next ones: at 10,000 partitions the logging would otherwise be a
        # long serial tail after the fits (docs/benchmarks.md, "Scale")
        with _run_logger(store, settings, index, Path(stage), local=args.local) as logger:
            start = time.perf_counter()
            if settings.training.block_size > 1:  # networks of a block trained as one program
                outcomes = run_blocks(files, settings, stage, workers, plot, on_done=logger)
            else:
                outcomes = backends.run(
                    fit_and_stage,
                    tasks,
                    backend=backend,
                    settings=settings,
                    workers=workers,
                    on_done=logger,
                )
            fit_seconds = time.perf_counter() - start
        handoff = logger.handoff
        handoff["partitions"] = {p: handoff["partitions"][p] for p in outcomes}  # task order
        start = time.perf_counter()
        handoff["data"] = registry.data_tags(index)  # the register step tags versions with it
        # the date the data is as of (data.as_of, else today): model ages count on its clock
        handoff["as_of"] = as_of_date(None, settings).isoformat()
        registry.log_data_inputs(store, [handoff["parent_run_id"]], index)  # and the partitions
        log_seconds = logger.seconds + time.perf_counter() - start
    failed = [p for p, o in outcomes.items() if not o.ok]
    registry.log_metrics(
        store,
        handoff["parent_run_id"],
        {
            "partitions_trained": len(outcomes) - len(failed),
            "partitions_failed": len(failed),
            "fit_seconds": fit_seconds,
            "log_seconds": log_seconds,
        },
    )
    write_json(handoff, settings.path("runs", "training.json"))
    log.info("\n%s", _table(handoff))
    log.info(
        "train: %d trained, %d failed; fitting %.1f s, MLflow logging %.1f s (overlapping the"
        " fits); run %s in %s",
        len(outcomes) - len(failed),
        len(failed),
        fit_seconds,
        log_seconds,
        handoff["parent_run_id"],
        redact(store.tracking_uri),
    )
    return 1 if failed and settings.training.fail_on_partition_error else 0


def _log_runs(
    store, settings: Settings, index: dict, outcomes: dict, stage: Path, *, local: bool
) -> dict:
    """The parent run and one nested run per partition; returns the hand-off for later steps."""
    with _run_logger(store, settings, index, stage, local=local) as logger:
        for pid, outcome in outcomes.items():
            logger(pid, outcome)
    return logger.handoff


class _RunLogger:
    """Logs one partition's nested run per call, under the parent run, into ``handoff``."""

    def __init__(
        self, store, settings: Settings, index: dict, stage: Path, *, tags: dict, parent, local
    ):
        self.store, self.settings, self.index, self.stage = store, settings, index, stage
        self.tags, self.parent_id = tags, parent.info.run_id
        self.seconds = 0.0  # spent logging
        self._inputs = registry.data_inputs(index)  # the data's MLflow dataset inputs
        self.handoff = {
            "store": redact(store.tracking_uri),
            "env": settings.env,
            "local": local,
            "data_version": index["data_version"],
            "parent_run_id": self.parent_id,
            "partitions": {},
        }

    def __call__(self, pid: str, outcome: Outcome) -> None:
        start = time.perf_counter()
        try:
            self._log(pid, outcome)
            self.store.client().log_inputs(
                self.handoff["partitions"][pid]["run_id"], datasets=self._inputs
            )
            # logged: its staged files go now, not all at once (10,000 partitions' files took
            # minutes to remove at the end of the step)
            shutil.rmtree(self.stage / pid, ignore_errors=True)
        finally:
            self.seconds += time.perf_counter() - start

    def _log(self, pid: str, outcome: Outcome) -> None:
        keys = self.index["partitions"][pid]["keys"]
        run_tags = {"partition": pid, **keys, **self.tags}
        if not outcome.ok:
            log.error("train: partition %s failed: %s", pid, outcome.error)
            logged = registry.log_partition(
                self.store,
                self.parent_id,
                pid,
                params={},
                metrics={},
                tags=run_tags | {"error": outcome.error[:5000]},
                failed=True,
            )
            self.handoff["partitions"][pid] = {
                "status": "failed",
                "error": outcome.error,
                "keys": keys,
                **logged,
            }
            return
        fit: PartitionFit = outcome.value
        logged = registry.log_partition(
            self.store,
            self.parent_id,
            pid,
            params=_params(self.settings, fit, keys),
            metrics=fit.metrics,
            tags=run_tags,
            model_dirs={k: self.stage / pid / k for k in ("ensemble", "baseline")},
            artifacts_dir=self.stage / pid / "artifacts",
            move=True,  # staged for this run only: removed once logged
        )
        self.handoff["partitions"][pid] = {
            "status": "trained",
            "keys": keys,
            "metrics": fit.metrics,
            "weights": fit.weights,
            "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "backtest_file": str(backtest_path(self.settings, pid)),
            **fit.info,
            **logged,
        }


@contextlib.contextmanager
def _run_logger(
    store, settings: Settings, index: dict, stage: Path, *, local: bool
) -> Iterator[_RunLogger]:
    """The training's parent run, open while the partitions' runs are logged into it."""
    tags = registry.git_tags() | {
        "pipeline": "training",
        "env": settings.env,
        "local": str(local),
        **registry.data_tags(index),
        "config_hash": config_hash(settings),
    }
    with registry.pipeline_run(store, settings.mlflow.experiment, "training", tags) as parent:
        yield _RunLogger(store, settings, index, stage, tags=tags, parent=parent, local=local)


def _table(handoff: dict) -> str:
    rows = [
        {"partition": p, **v.get("metrics", {}), "status": v["status"]}
        for p, v in handoff["partitions"].items()
    ]
    metrics = ("mape", "wape", "rmse", "rmse_zero")
    cols = [f"{model}_{m}" for m in metrics for model in ("ensemble", "baseline")]
    heads = [f"{who} {m}" for m in metrics for who in ("ens", "base")]
    return markdown_table(rows, ["partition", *cols, "status"], ["partition", *heads, "status"])


def _params(settings: Settings, fit: PartitionFit, keys: dict[str, str]) -> dict:
    """The run's parameters: the partition's own members and weighting (its first matching
    ``training.ensemble.overrides`` entry's, as training chose them), not the global ones."""
    t = settings.training
    return {
        "lasso_alpha": t.lasso.alpha,
        "nn_epochs": t.nn.epochs,
        "nn_hidden_units": t.nn.hidden_units,
        "nn_embedding_dim": t.nn.embedding_dim,
        "weighting": t.ensemble.weighting_for(keys),
        **feature_settings(settings),  # what every packed model of the run carries
        "test_weeks": t.split.test_weeks,
        "backtest_origins": t.backtest.origins,
        "backtest_step_weeks": t.backtest.step_weeks,
        "members": ",".join(t.ensemble.members_for(keys)),
        "validation_weeks": t.split.validation_weeks,
        "train_rows": fit.info["train_rows"],
        "random_state": t.random_state,
    }


if __name__ == "__main__":
    raise SystemExit(main())
