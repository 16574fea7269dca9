"""The train step's parent-side MLflow logging alone (issue 12): ``--partitions`` staged
partitions logged by the step's own logger (``steps.train._RunLogger``: the nested run, its
params and metrics, its models and artifacts, its dataset inputs, the staged files removed),
timed per partition in CPU and wall seconds.

The staged folders are real: the first ``--templates`` partitions of a ``benchmarks/scale.py
--keep`` working folder are trained and staged once (``fit_block_and_stage``, kept under
``--workdir``), then copied as many times as needed before the timing starts. Run it against
two checkouts (``PYTHONPATH``) on the same ``--workdir`` to compare them side by side::

    python benchmarks/train_logging.py --data /tmp/log5w/data200 --workdir /tmp/tl \
        --set mlflow.sqlite_wal=true
    PYTHONPATH=/tmp/main/code python benchmarks/train_logging.py --data /tmp/log5w/data200 \
        --workdir /tmp/tl
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import time
from pathlib import Path

from manymodels import registry
from manymodels.config import load_settings
from manymodels.parallel import Outcome
from manymodels.profiles import profile_overrides
from manymodels.steps import train


def staged(data: Path, workdir: Path, templates: int, profile: str) -> tuple[dict, dict]:
    """``({partition: fit}, index)`` of the template partitions, staged under ``workdir``."""
    folder, cached = workdir / "templates", workdir / "templates.pkl"
    if not cached.exists():
        settings = load_settings(
            "pipelines", "dev", [*profile_overrides(profile), f"project.workdir={workdir}/fit"]
        )
        index = json.loads((data / "partitions" / "index.json").read_text())
        pids = list(index["partitions"])[:templates]
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        paths = {p: str(data / "partitions" / f"{p}.parquet") for p in pids}
        fits = train.fit_block_and_stage(paths, settings, str(folder))
        keep = ("data_version", "data_uri", "sources")
        small = {k: index.get(k) for k in keep} | {
            "partitions": {p: index["partitions"][p] for p in pids}
        }
        cached.write_bytes(pickle.dumps((fits, small)))
    return pickle.loads(cached.read_bytes())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="a scale.py --keep workdir")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--partitions", type=int, default=48)
    parser.add_argument("--templates", type=int, default=8)
    parser.add_argument("--profile", default="pipelines/profiles/lean.yaml")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    fits, template_index = staged(args.data, args.workdir, args.templates, args.profile)
    run = args.workdir / "run"
    shutil.rmtree(run, ignore_errors=True)
    settings = load_settings("pipelines", "dev", [f"project.workdir={run}", *args.overrides])
    templates = list(template_index["partitions"])
    index = template_index | {"partitions": {}}
    stage = run / "stage"
    chosen = {}
    for i in range(args.partitions):
        source = templates[i % len(templates)]
        pid = f"{source}-{i:04d}"
        index["partitions"][pid] = template_index["partitions"][source]
        shutil.copytree(args.workdir / "templates" / source, stage / pid)
        chosen[pid] = fits[source]
    store = registry.resolve_store(settings, local=True)
    store.client()  # the store's schema made before the timing
    with train._run_logger(store, settings, index, stage, local=True) as logger:
        cpu, wall = time.process_time(), time.perf_counter()
        for pid, fit in chosen.items():
            logger(pid, Outcome(pid, True, value=fit))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    result = {
        "partitions": args.partitions,
        "overrides": args.overrides,
        "cpu_ms_per_partition": round(cpu / args.partitions * 1000, 1),
        "wall_ms_per_partition": round(wall / args.partitions * 1000, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
