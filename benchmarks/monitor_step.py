"""Benchmark: one ``manymodels monitor`` over a working folder the demo left; figures as JSON.

    make demo                                              # or: manymodels demo --set ...
    python benchmarks/monitor_step.py --workdir work --out benchmarks/results/monitor_default.json

Measures the wall time of the step in-process (join, metrics, drift for every champion with its
profile downloaded from the registry, the dashboard, the MLflow run) and the sizes of what it
writes. Times are wall-clock on this machine; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from importlib import metadata
from pathlib import Path

from manymodels.steps import monitor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("work"))
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    common = ["--env", "prod", "--local", "--set", f"project.workdir={args.workdir}"]
    start = time.perf_counter()
    code = monitor.main([*common, "--as-of", args.as_of])
    seconds = time.perf_counter() - start
    out = args.workdir / "monitoring"
    report = json.loads((out / "monitoring.json").read_text())
    result = {
        "exit_code": code,
        "seconds": round(seconds, 2),
        "partitions": report["overview"]["partitions"],
        "forecasts_with_actuals": report["overview"]["forecasts_with_actuals"],
        "series_drawn": len({(r["store_id"], r["product_id"]) for r in report["series"]}),
        "alerts": report["overview"]["alerts"],
        "partitions_in_alert": report["partitions_in_alert"],
        "dashboard_mb": round((out / "dashboard.html").stat().st_size / 1e6, 2),
        "monitoring_json_mb": round((out / "monitoring.json").stat().st_size / 1e6, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },  # fmt: skip
        "versions": {p: metadata.version(p) for p in ("mlflow", "pandas", "plotly", "scipy")},
    }
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
