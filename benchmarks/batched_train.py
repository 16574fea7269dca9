"""Benchmark: the train step's worker function one network at a time vs a block's networks as one
batched program; CPU seconds per model for each stage, and the backtest metrics of both.

    python benchmarks/batched_train.py                       # 64 partitions, blocks of 32
    python benchmarks/batched_train.py --partitions 200 --block-size 64
    python benchmarks/batched_train.py --set training.nn.epochs=10 --out /tmp/x.json

Both paths run in this process (``workers=1``), so ``time.process_time`` is exactly their CPU
time, whatever else the machine is doing; a "model" is one partition's deployed ensemble (with
its baseline, saved beside it). Stages come from each fit's ``info["cpu_seconds"]``: reading the
file, features, the LASSO and network fits, the baseline, the rest of the partition's code
(splits, predictions, metrics, intervals), the plot, the backtest parquet, the pyfunc save and
the drift profile. Results: ``benchmarks/results/batched_train.json``, summarised in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from manymodels.config import load_settings
from manymodels.data.condition import condition
from manymodels.data.partition import split_partitions
from manymodels.data.sources import read_sources
from manymodels.parallel import run_partitions
from manymodels.steps.mock import generate_into
from manymodels.steps.train import fit_and_stage, run_blocks

METRICS = ("ensemble_mape", "ensemble_wape", "ensemble_rmse", "nn_wape", "baseline_wape")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--block-size", type=int, default=32)
    parser.add_argument("--products", type=int, default=16, help="per store (half per speed)")
    parser.add_argument("--weeks", type=int, default=520)
    parser.add_argument("--set", action="append", default=[], help="a setting override k=v")
    parser.add_argument("--skip-single", action="store_true", help="only the batched path")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/batched_train.json"))
    args = parser.parse_args(argv)
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            f"project.workdir={tmp}",
            "partition.keys=['store_id', 'speed']",
            "training.max_plots=0",  # both paths plot every partition, as they always did
            *args.set,
        ]
        settings = load_settings("pipelines", "dev", overrides)
        files, rows = _data(settings, Path(tmp), args)
        paths = {
            "one_at_a_time": settings.replace({"training.block_size": 1}),
            "batched": settings.replace({"training.block_size": args.block_size}),
        }
        if args.skip_single:
            del paths["one_at_a_time"]
        result = {
            "partitions": len(files),
            "rows_per_partition": round(rows / len(files)),
            "block_size": args.block_size,
            "epochs": settings.training.nn.epochs,
            "overrides": args.set,
            "paths": {},
        }
        metrics = {}
        for name, s in paths.items():
            stage = Path(tmp) / f"stage-{name}"
            cpu, wall = time.process_time(), time.perf_counter()
            if s.training.block_size > 1:
                outcomes = run_blocks(files, s, str(stage), workers=1)
            else:
                tasks = {p: (f, p, s, str(stage)) for p, f in files.items()}
                outcomes = run_partitions(fit_and_stage, tasks, 1)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            fits = {p: o.value for p, o in outcomes.items() if o.ok}
            metrics[name] = {p: f.metrics for p, f in fits.items()}
            result["paths"][name] = {
                "failed": [p for p, o in outcomes.items() if not o.ok],
                "cpu_seconds_per_model": round(cpu / len(files), 4),
                "wall_seconds_per_model": round(wall / len(files), 4),
                "stage_cpu_seconds_per_model": _stages(fits, len(files)),
                "median": {m: _median(fits, m) for m in METRICS},
            }
            print(name, json.dumps(result["paths"][name], indent=1), flush=True)  # noqa: T201
        if len(metrics) == 2:
            result["speedup_cpu"] = round(
                result["paths"]["one_at_a_time"]["cpu_seconds_per_model"]
                / result["paths"]["batched"]["cpu_seconds_per_model"],
                2,
            )
            result["max_abs_metric_difference"] = _differences(metrics)
    result |= {
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "versions": {p: metadata.version(p) for p in ("torch", "scikit-learn", "mlflow", "pandas")},
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))  # noqa: T201
    return 0


def _data(settings, tmp: Path, args) -> tuple[dict[str, str], int]:
    """Mock stores x speed partitions (``--products`` per store over ``--weeks`` weeks)."""
    stores = max(1, -(-args.partitions // 2))
    regions = max(1, min(14, stores // 4))
    raw = tmp / "raw"
    generate_into(
        settings,
        raw,
        regions=regions,
        stores_per_region=-(-stores // regions),
        products=args.products,
        weeks=args.weeks,
        start=dt.date(2017, 1, 2),
    )
    table, _ = condition(
        read_sources(settings.sources, str(raw)),
        settings.data,
        settings.partition.slow_zero_share,
        settings.training.split.test_weeks,
    )
    parts = dict(list(split_partitions(table, ("store_id", "speed")).items())[: args.partitions])
    files = {}
    for pid, frame in parts.items():
        files[pid] = str(tmp / f"{pid}.parquet")
        frame.to_parquet(files[pid], index=False)
    return files, sum(len(f) for f in parts.values())


def _stages(fits: dict, n: int) -> dict[str, float]:
    total: dict[str, float] = {}
    for fit in fits.values():
        for stage, seconds in fit.info.get("cpu_seconds", {}).items():
            total[stage] = total.get(stage, 0.0) + seconds
    return {k: round(v / max(n, 1), 4) for k, v in sorted(total.items(), key=lambda kv: -kv[1])}


def _median(fits: dict, metric: str) -> float:
    values = [f.metrics[metric] for f in fits.values() if metric in f.metrics]
    return round(float(np.median(values)), 4) if values else float("nan")


def _differences(metrics: dict) -> dict[str, float]:
    one, many = metrics["one_at_a_time"], metrics["batched"]
    common = sorted(set(one) & set(many))
    return {
        m: round(max(abs(one[p][m] - many[p][m]) for p in common), 6) if common else float("nan")
        for m in METRICS
    }


if __name__ == "__main__":
    sys.exit(main())
