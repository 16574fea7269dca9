"""Benchmark: the local backend against Spark local mode on the same partitions; JSON out.

    python benchmarks/backends.py                                  # the demo's 56 partitions
    python benchmarks/backends.py --epochs 30 --out benchmarks/results/backends_56.json

Fits every partition with ``steps/train.py::fit_and_stage`` through ``manymodels.backends.run``
(the part of the ``train`` step the backend changes; MLflow logging is the same for both and is
left out), once on the local process pool and twice on a ``local[N]`` Spark session (the first
job starts the Python workers, the second reuses them), and once more on Spark with one Spark
task per partition. CPU time is that of this process and every process below it (the pool, the
JVM, Spark's Python workers), sampled from /proc. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

from manymodels import backends
from manymodels.cli import run_step
from manymodels.config import load_settings
from manymodels.steps.train import fit_and_stage

TICKS = os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--regions", type=int, default=14, help="mock regions (x4 partitions)")
    parser.add_argument("--weeks", type=int, default=520)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="local processes = Spark cores")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/backends_56.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with tempfile.TemporaryDirectory(prefix="mm-backends-") as tmp:
        work = Path(tmp) / "work"
        base = [f"project.workdir={work}", f"training.nn.epochs={args.epochs}"]
        sets = [a for s in base for a in ("--set", s)]
        mock = ["--regions", str(args.regions), "--weeks", str(args.weeks), "--start", "2015-01-05"]
        assert run_step("mock", [*mock, *sets]) == 0
        for step in ("condition", "validate", "partition"):
            extra = ["--as-of", _as_of(work)] if step == "validate" else []
            assert run_step(step, [*extra, *sets]) == 0, step
        index = json.loads((work / "partitions" / "index.json").read_text())
        pids = sorted(index["partitions"])
        master = f"local[{args.workers}]"
        runs = {}
        for label, backend, extra in (
            ("local", "local", []),
            ("spark_first_job", "spark", []),
            ("spark", "spark", []),
            ("spark_one_partition_per_task", "spark", ["spark.partitions_per_task=1"]),
        ):
            settings = load_settings("pipelines", "dev", [*base, f"spark.master={master}", *extra])
            runs[label] = _measure(settings, backend, pids, args.workers)
            print(label, json.dumps(runs[label]), flush=True)
    rows = sum(p["rows"] for p in index["partitions"].values())
    result = {
        "benchmark": "backends",
        "date": dt.date.today().isoformat(),
        "command": "python benchmarks/backends.py " + " ".join(argv or sys.argv[1:]),
        "partitions": len(pids),
        "rows": rows,
        "epochs": args.epochs,
        "workers": args.workers,
        "spark_master": master,
        "cores": os.cpu_count(),
        "load_average_at_end": os.getloadavg()[0],
        "python": platform.python_version(),
        "versions": {p: metadata.version(p) for p in ("pyspark", "torch", "mlflow", "pandas")},
        "runs": runs,
        "spark_over_local": {
            "wall": round(runs["spark"]["wall_s"] / runs["local"]["wall_s"], 3),
            "cpu": round(runs["spark"]["cpu_s"] / runs["local"]["cpu_s"], 3),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["spark_over_local"]), "->", args.out)
    return 0


def _as_of(work: Path) -> str:
    """A date on which the mock data is fresh: the day after its last week."""
    manifest = json.loads((work / "conditioned" / "manifest.json").read_text())
    return str(dt.date.fromisoformat(manifest["last_week"]) + dt.timedelta(days=7))


def _measure(settings, backend: str, pids: list[str], workers: int) -> dict:
    files = {p: str(settings.path("partitions", f"{p}.parquet")) for p in pids}
    cpu = _TreeCpu()
    with backends.staging(settings, backend) as stage:
        tasks = {p: (files[p], p, settings, stage) for p in pids}
        cpu.start()
        start = time.perf_counter()
        outcomes = backends.run(
            fit_and_stage, tasks, backend=backend, settings=settings, workers=workers
        )
        wall = time.perf_counter() - start
        used = cpu.stop()
    failed = [k for k, o in outcomes.items() if not o.ok]
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(used, 2),
        "cpu_s_per_partition": round(used / len(pids), 3),
        "task_seconds_sum": round(sum(o.seconds for o in outcomes.values()), 2),
        "failed": failed,
    }


class _TreeCpu:
    """CPU seconds of this process and its descendants, sampled from /proc every 0.2 s (a
    process that exits between two samples loses at most its last 0.2 s)."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self.base: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self.base = _tree()
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self._sample()
        return sum(v - self.base.get(pid, 0.0) for pid, v in self.seen.items())

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def _sample(self) -> None:
        for pid, used in _tree().items():
            self.seen[pid] = max(used, self.seen.get(pid, 0.0))


def _tree() -> dict[int, float]:
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text.rsplit(")", 1)[1].split()
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS)
    me, inside = os.getpid(), {os.getpid()}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _) in stats.items():
            if ppid in inside and pid not in inside:
                inside.add(pid)
                changed = True
    return {pid: stats[pid][1] for pid in inside if pid in stats} | {me: stats[me][1]}


if __name__ == "__main__":
    raise SystemExit(main())
