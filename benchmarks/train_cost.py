"""Benchmark: where a train worker's CPU goes per model, on partitions of the seed's shape.

    python benchmarks/train_cost.py                              # 8 partitions, one block
    python benchmarks/train_cost.py --partitions 16 --tag mine --compare /tmp/tc/main.json
    python benchmarks/train_cost.py --profile pipelines/profiles/lean.yaml --tag lean

    # the same on another checkout's code, for a side-by-side run on the same data:
    git archive main | tar -x -C /tmp/main
    PYTHONPATH=/tmp/main/code python benchmarks/train_cost.py --tag main --out /tmp/main.json

Writes ``--partitions`` partitions with ``benchmarks/scale_data.py`` (once per ``--workdir``),
then runs the train step's worker function (``fit_block_and_stage``: one block, every partition
plotted, as the workers of ``scale.py``'s train stage do) in this process, so
``time.process_time`` is its CPU exactly, whatever else the machine runs. Per model: the total
and each stage of ``info["cpu_seconds"]``; every backtest metric is kept so ``--compare`` can
show that two runs forecast the same (bit for bit: 0 differing metrics; or within ``RTOL``
relative: 0 beyond it, the coverage's rows flipped counted apart).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

from scale_data import write_scale_data

from manymodels.config import load_settings
from manymodels.io import read_json
from manymodels.profiles import profile_overrides
from manymodels.steps.train import fit_block_and_stage

# the latest origin's (the same weeks with any number of origins), pooled, and the baseline's
QUALITY = (
    "o1_ensemble_mape", "o1_ensemble_wape", "ensemble_mape", "ensemble_wape",
    "o1_baseline_mape", "o1_baseline_wape",
)  # fmt: skip
RTOL = 1e-9  # --compare: a metric within this relative difference counts as the same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path("work/train-cost"))
    parser.add_argument("--tag", default="this", help="a name for this run in the JSON")
    parser.add_argument("--set", action="append", default=[], help="a setting override k=v")
    parser.add_argument("--profile", action="append", default=[], help="a settings profile file")
    parser.add_argument("--out", type=Path, help="default: <workdir>/result-<tag>.json")
    parser.add_argument("--compare", type=Path, help="another run's JSON: count differences")
    args = parser.parse_args(argv)
    args.set = [*profile_overrides(*args.profile), *args.set]
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)  # as in the train step's workers
    workdir = args.workdir.resolve()
    settings = load_settings("pipelines", "dev", [f"project.workdir={workdir}", *args.set])
    index_file = workdir / "partitions" / "index.json"
    if not index_file.exists():
        write_scale_data(settings, args.partitions, seed=42, today=dt.date(2026, 12, 1))
    chosen = list(read_json(index_file)["partitions"])[: args.partitions]
    paths = {p: str(workdir / "partitions" / f"{p}.parquet") for p in chosen}
    stage = Path(tempfile.mkdtemp(prefix=f"stage-{args.tag}-", dir=workdir))
    cpu = time.process_time()
    fits = fit_block_and_stage(paths, settings, str(stage))
    total = time.process_time() - cpu
    failed = {p: str(f) for p, f in fits.items() if isinstance(f, Exception)}
    stages: dict[str, float] = {}
    for fit in (f for f in fits.values() if not isinstance(f, Exception)):
        for name, seconds in fit.info["cpu_seconds"].items():
            stages[name] = stages.get(name, 0.0) + seconds
    n = len(paths)
    result = {
        "tag": args.tag,
        "partitions": n,
        "overrides": args.set,
        "quality": quality({p: f.metrics for p, f in fits.items() if not isinstance(f, Exception)}),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_s_per_model": round(total / n, 4),
        "stage_cpu_s_per_model": {
            k: round(v / n, 4) for k, v in sorted(stages.items(), key=lambda kv: -kv[1])
        },
        "failed": failed,
        "metrics": {p: f.metrics for p, f in fits.items() if not isinstance(f, Exception)},
    }
    if args.compare:
        other = json.loads(args.compare.read_text())
        result["compared_with"] = {"tag": other["tag"], **_differences(other, result)}
    out = args.out or workdir / f"result-{args.tag}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    shown = {k: v for k, v in result.items() if k != "metrics"}
    sys.stdout.write(json.dumps(shown, indent=1) + f"\nresults: {out}\n")
    return 1 if failed else 0


def quality(metrics: dict[str, dict]) -> dict:
    """Median backtest error by partition kind (the last key, e.g. fast/slow) on the latest
    origin (``o1_*``: the same weeks whatever ``training.backtest.origins`` is), and pooled;
    ``metrics``: ``{partition: its backtest metrics}`` (what the JSON keeps)."""
    kinds: dict[str, dict[str, list[float]]] = {}
    for pid, values in metrics.items():
        for kind in (pid.rsplit(".", 1)[-1], "all"):
            for name in QUALITY:
                value = values.get(name, math.nan)
                kinds.setdefault(kind, {}).setdefault(name, []).append(value)
    return {
        kind: {"partitions": len(v["o1_ensemble_wape"])}
        | {f"median_{k}": round(statistics.median(x), 4) for k, x in v.items()}
        for kind, v in sorted(kinds.items())
    }


def _differences(a: dict, b: dict, rtol: float = RTOL) -> dict:
    """How many backtest metrics of the partitions both runs trained differ (NaN = NaN): in
    any bit, and beyond ``rtol`` relative (float reordering, e.g. BLAS on one thread instead of
    two, moves a forecast by ~1e-12); the interval coverage is a share of rows, where such a
    move can flip one row across a bound: its largest absolute difference is given apart."""
    common = sorted(set(a["metrics"]) & set(b["metrics"]))
    compared = differ = beyond = 0
    worst = coverage = 0.0
    for p in common:
        for k in set(a["metrics"][p]) & set(b["metrics"][p]):
            x, y = a["metrics"][p][k], b["metrics"][p][k]
            compared += 1
            if x == y or (math.isnan(x) and math.isnan(y)):
                continue
            differ += 1
            if k.endswith("_coverage"):
                coverage = max(coverage, abs(x - y))
                continue
            relative = abs(x - y) / max(abs(x), abs(y))
            worst = max(worst, relative)
            beyond += relative > rtol
    return {
        "partitions": len(common),
        "metrics_compared": compared,
        "metrics_differing": differ,
        "rtol": rtol,
        "metrics_beyond_rtol": beyond,
        "max_relative_difference": worst,
        "coverage_max_abs_difference": coverage,
    }


if __name__ == "__main__":
    raise SystemExit(main())
