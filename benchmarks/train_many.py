"""Benchmark: train (and optionally log + register) many partitions; write the figures as JSON.

    python benchmarks/train_many.py                      # the demo's 56 partitions
    python benchmarks/train_many.py --preset many        # 1,120 small partitions (store x speed)
    python benchmarks/train_many.py --register --out benchmarks/results/train_56.json

Times are wall-clock on this machine; the JSON records the machine (cores) and versions so
figures from different machines are not compared blindly. Results are summarised in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from manymodels import registry
from manymodels.config import load_settings
from manymodels.data.condition import condition
from manymodels.data.partition import split_partitions
from manymodels.data.sources import read_sources
from manymodels.parallel import effective_workers, run_partitions
from manymodels.steps.mock import generate_into
from manymodels.steps.train import fit_and_stage

PRESETS = {
    # the demo's shape: 14 regions x 2 formats x 2 speeds = 56 partitions of 20 series x 520 weeks
    "default": {
        "regions": 14,
        "stores_per_region": 4,
        "products": 20,
        "weeks": 520,
        "keys": "region,store_format,speed",
    },
    # many small partitions: 560 stores x 2 speeds = 1,120 partitions of 3 series each
    "many": {
        "regions": 14,
        "stores_per_region": 40,
        "products": 6,
        "weeks": 104,
        "keys": "store_id,speed",
    },
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=PRESETS, default="default")
    parser.add_argument("--partitions", type=int, default=0, help="use only the first N partitions")
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--epochs", type=int, help="override training.nn.epochs")
    parser.add_argument(
        "--register", action="store_true", help="also log and register every model in MLflow"
    )
    parser.add_argument(
        "--out", type=Path, help="JSON file (default: benchmarks/results/train_<preset>.json)"
    )
    args = parser.parse_args(argv)
    shape = PRESETS[args.preset]
    keys = tuple(shape["keys"].split(","))
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"project.workdir={tmp}", f"partition.keys={list(keys)}"]
        if args.epochs is not None:
            overrides.append(f"training.nn.epochs={args.epochs}")
        settings = load_settings("pipelines", "dev", overrides)
        t0 = time.perf_counter()
        raw_dir = Path(tmp) / "raw"
        generate_into(
            settings,
            raw_dir,
            regions=shape["regions"],
            stores_per_region=shape["stores_per_region"],
            products=shape["products"],
            weeks=shape["weeks"],
            start=dt.date(2017, 1, 2),
        )
        table, _ = condition(
            read_sources(settings.sources, str(raw_dir)),
            settings.data,
            settings.partition.slow_zero_share,
            settings.training.split.test_weeks,
        )
        parts = split_partitions(table, keys)
        if args.partitions:
            parts = dict(list(parts.items())[: args.partitions])
        for pid, frame in parts.items():
            frame.to_parquet(Path(tmp) / f"{pid}.parquet", index=False)
        prepare = time.perf_counter() - t0
        stage = Path(tmp) / "stage"
        tasks = {
            pid: (str(Path(tmp) / f"{pid}.parquet"), pid, settings, str(stage)) for pid in parts
        }
        t0, cpu0 = time.perf_counter(), _cpu_seconds()
        outcomes = run_partitions(fit_and_stage, tasks, args.workers)
        fit_wall, fit_cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
        per = [o.seconds for o in outcomes.values()]
        result = {
            "preset": args.preset,
            "partition_keys": list(keys),
            "partitions": len(parts),
            "rows": int(sum(len(f) for f in parts.values())),
            "epochs": settings.training.nn.epochs,
            "workers": effective_workers(args.workers, len(tasks)),
            "failed": [k for k, o in outcomes.items() if not o.ok],
            "prepare_seconds": round(prepare, 2),
            "fit_wall_seconds": round(fit_wall, 2),
            # CPU seconds of all processes: unlike wall time, not inflated by a busy machine
            "fit_cpu_seconds_per_partition": round(fit_cpu / max(len(parts), 1), 3),
            "fit_seconds_per_partition": {
                "median": round(statistics.median(per), 3),
                "max": round(max(per), 3),
            },
        }
        if args.register:
            result |= _register(settings, outcomes, stage)
    result |= {
        "peak_rss_mb_main": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_mb_worker": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "versions": {p: metadata.version(p) for p in ("torch", "scikit-learn", "mlflow", "pandas")},
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    out = args.out or Path("benchmarks/results") / f"train_{args.preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


def _cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _register(settings, outcomes, stage: Path) -> dict:
    store = registry.resolve_store(settings, local=True)
    log_s, reg_s = [], []
    with registry.pipeline_run(store, "benchmark", "train_many", {}) as parent:
        for pid, outcome in outcomes.items():
            if not outcome.ok:
                continue
            fit = outcome.value
            t0 = time.perf_counter()
            logged = registry.log_partition(
                store,
                parent.info.run_id,
                pid,
                params={},
                metrics=fit.metrics,
                tags={"partition": pid},
                model_dirs={k: stage / pid / k for k in ("ensemble", "baseline")},
                artifacts_dir=stage / pid / "artifacts",
            )
            t1 = time.perf_counter()
            registry.register(
                store,
                logged["ensemble_uri"],
                registry.model_name(settings, pid),
                {"partition": pid},
            )
            log_s.append(t1 - t0)
            reg_s.append(time.perf_counter() - t1)
    return {
        "log_model_seconds_total": round(sum(log_s), 2),
        "register_seconds_total": round(sum(reg_s), 2),
        "log_model_seconds_median": round(statistics.median(log_s), 3),
        "register_seconds_median": round(statistics.median(reg_s), 4),
    }


if __name__ == "__main__":
    sys.exit(main())
