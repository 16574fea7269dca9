"""Benchmark: the online API under load, with many more registered partitions than it may hold.

    python benchmarks/serve_load.py                              # 1,000 partitions, LRU 100
    python benchmarks/serve_load.py --partitions 200 --requests 2000   # a quick look

Registers ``--partitions`` tiny historical-average models (one per partition, each its own
fitted artifact) in an embedded sqlite registry under a temporary folder, writes a feature
snapshot, starts ``manymodels serve`` as its own process on a loopback port and measures:

* **cold**: one request each for ``--cold`` partitions never loaded (each pays a model load);
* **warm**: requests for one series x 4 weeks answered by cached models;
* **zipf**: ``--requests`` requests (at most ``--seconds``) from ``--clients`` clients, the
  partition drawn from a Zipf(``--zipf``) distribution, so a few partitions are hot and the long
  tail keeps the LRU evicting;
* **memory**: the server's resident memory when ready (baseline), and its peak (VmHWM), against
  the configured byte bound (``serving.max_model_mb``).

Latencies are client-side wall times per request over a keep-alive connection. The JSON records
the machine; figures are summarised in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from manymodels import registry
from manymodels.config import load_settings
from manymodels.features import COVARIATES, build_features
from manymodels.models import HistoricalAverageBaseline
from manymodels.pyfunc import PackedModel
from manymodels.serve.snapshot import write_snapshot
from manymodels.training import feature_settings


def synthetic_parts(partitions: int, series: int, weeks: int, seed: int) -> dict:
    """``{partition id: standard-table rows}``: ``series`` series x (``weeks`` + 4 future)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2021-01-04")
    all_weeks = pd.date_range(start, periods=weeks + 4, freq="7D")
    parts = {}
    for p in range(partitions):
        pid = f"region-{p:04d}.large.fast"
        rows = []
        for s in range(series):
            level = rng.uniform(2, 50)
            units = rng.poisson(level, len(all_weeks)).astype(float)
            units[weeks:] = np.nan
            frame = pd.DataFrame({"week": all_weeks, "units": units})
            frame["store_id"], frame["product_id"] = f"s{p:04d}", f"p{s}"
            rows.append(frame)
        frame = pd.concat(rows, ignore_index=True)
        frame["region"], frame["store_format"], frame["speed"] = f"region {p}", "large", "fast"
        for c in COVARIATES:
            frame[c] = rng.normal(size=len(frame)).round(3)
        parts[pid] = frame
    return parts


def register_all(parts: dict, settings, store, folder: Path) -> float:
    """One fitted baseline model per partition, registered and aliased champion; seconds."""
    start = time.perf_counter()
    fs = feature_settings(settings)
    client = store.client()
    template = None
    for i, (pid, frame) in enumerate(parts.items()):
        known = frame[frame["units"].notna()]
        # the baseline reads only the keys and the week of the year: no need to build features
        x = known[["store_id", "product_id"]].assign(
            week_of_year=known["week"].dt.isocalendar().week.astype("int64")
        )
        model = HistoricalAverageBaseline().fit(x, known["units"])
        packed = PackedModel(model, "baseline", pid, fs, list(x.columns))
        if template is None:
            example = build_features(frame, **fs)[list(x.columns)].head(2)
        path = folder / pid
        if template is None:  # one full MLflow save; the others copy it with their own model
            template = registry.save_pyfunc(packed, path, example)
        else:
            shutil.copytree(template, path)
            packed.save(str(path / "artifacts" / "packed.joblib"))
        name = registry.model_name(settings, pid)
        client.create_registered_model(name)
        version = client.create_model_version(name, source=str(path), tags={"partition": pid})
        client.set_registered_model_alias(name, registry.CHAMPION, version.version)
        if (i + 1) % 200 == 0:
            print(f"  registered {i + 1} / {len(parts)}", flush=True)
    return time.perf_counter() - start


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


class Client:
    """One keep-alive connection; ``forecast`` returns (seconds, status)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def forecast(self, series: dict, weeks: int = 4) -> tuple[float, int]:
        body = json.dumps({"series": [series], "weeks": weeks})
        start = time.perf_counter()
        self.conn.request("POST", "/v1/forecast", body, {"content-type": "application/json"})
        response = self.conn.getresponse()
        response.read()
        return time.perf_counter() - start, response.status

    def get(self, path: str) -> str:
        try:
            self.conn.request("GET", path)
            return self.conn.getresponse().read().decode()
        except http.client.RemoteDisconnected:  # idle past the server's keep-alive: reconnect
            self.conn.close()
            self.conn.request("GET", path)
            return self.conn.getresponse().read().decode()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {
        "requests": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
        "mean_ms": round(float(ms.mean()), 2),
    }


def run(args) -> dict:  # noqa: PLR0915 (one measured sequence, read top to bottom)
    load_at_start = round(os.getloadavg()[0], 1)
    # the registry's sqlite file on tmpfs where there is one: registering 1,000 models is then
    # bound by MLflow, not by fsync (serving reads; it never waits on fsync)
    shm = "/dev/shm" if Path("/dev/shm").is_dir() and not args.disk else None
    root = Path(tempfile.mkdtemp(prefix="serve-load-", dir=shm))
    overrides = [f"project.workdir={root}"]
    settings = load_settings(args.config_dir, "dev", overrides)
    store = registry.resolve_store(settings, local=True)
    print(f"building {args.partitions} partitions under {root}", flush=True)
    parts = synthetic_parts(args.partitions, args.series, args.weeks, args.seed)
    register_s = register_all(parts, settings, store, root / "models")
    write_snapshot(parts, settings.path("serving", "snapshot.parquet"))
    keys = [
        {"store_id": str(f["store_id"].iloc[0]), "product_id": str(f["product_id"].iloc[0])}
        for f in parts.values()
    ]
    port = _port()
    command = [
        sys.executable, "-m", "manymodels.steps.serve", "--config-dir", args.config_dir,
        "--local", "--port", str(port), "--set", overrides[0],
        "--set", f"serving.max_models={args.max_models}",
        "--set", f"serving.max_model_mb={args.max_model_mb}",
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    started = time.perf_counter()
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        client = Client(port)
        while True:
            try:
                if '"ready"' in client.get("/ready"):
                    break
            except OSError:
                client = Client(port)
            if server.poll() is not None or time.perf_counter() - started > 120:
                raise RuntimeError("the server did not become ready")
            time.sleep(0.2)
        startup_s = time.perf_counter() - started
        baseline = _memory(server.pid)
        rng = np.random.default_rng(args.seed)
        order = rng.permutation(len(keys))
        # cold: partitions never asked for (each request loads its model)
        cold = [client.forecast(keys[i]) for i in order[: args.cold]]
        assert all(status == 200 for _, status in cold), cold[:3]
        metrics = client.get("/metrics")
        load_count = _metric(metrics, "manymodels_serve_model_load_seconds_count")
        load_mean = _metric(metrics, "manymodels_serve_model_load_seconds_sum") / load_count
        # warm: the most recently loaded partitions (all in the cache)
        hot = [keys[i] for i in order[args.cold - min(args.cold, args.max_models) : args.cold]]
        warm = [client.forecast(hot[j % len(hot)]) for j in range(args.warm)]
        assert all(status == 200 for _, status in warm)
        # zipf: a few hot partitions, a long tail
        ranks = np.arange(1, len(keys) + 1)
        weights = 1 / ranks**args.zipf
        draws = rng.choice(len(keys), size=args.requests, p=weights / weights.sum())
        before = client.get("/metrics")
        zipf, lock = [], threading.Lock()
        deadline = time.perf_counter() + args.seconds

        def worker(part):
            own = Client(port)
            for i in part:
                if time.perf_counter() > deadline:
                    return
                result = own.forecast(keys[order[i]])
                with lock:
                    zipf.append(result)

        threads = [
            threading.Thread(target=worker, args=(draws[c :: args.clients],))
            for c in range(args.clients)
        ]
        zipf_start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        zipf_s = time.perf_counter() - zipf_start
        after = client.get("/metrics")
        memory = _memory(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        shutil.rmtree(root, ignore_errors=True)

    def delta(name):
        return _metric(after, name) - _metric(before, name)

    hits = delta("manymodels_serve_cache_hits_total")
    loads = delta("manymodels_serve_model_loads_total")
    bound_mb = args.max_model_mb
    return {
        "benchmark": "serve_load",
        "date": dt.date.today().isoformat(),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # other work shares the cores: the 1-minute load average before and after
            "load_average_at_start": load_at_start,
            "load_average_at_end": round(os.getloadavg()[0], 1),
        },
        "versions": {p: metadata.version(p) for p in ("mlflow", "fastapi", "uvicorn", "pandas")},
        "setup": {
            "partitions": args.partitions,
            "series_per_partition": args.series,
            "history_weeks": args.weeks,
            "max_models": args.max_models,
            "max_model_mb": bound_mb,
            "clients": args.clients,
            "zipf_s": args.zipf,
            "register_s": round(register_s, 1),
            "server_ready_s": round(startup_s, 1),
        },  # fmt: skip
        "cold": _summary([s for s, _ in cold]) | {"model_load_mean_ms": round(load_mean * 1000, 1)},
        "warm": _summary([s for s, _ in warm])
        | {"throughput_rps": round(len(warm) / sum(s for s, _ in warm), 1)},
        "zipf": _summary([s for s, _ in zipf])
        | {
            "seconds": round(zipf_s, 1),
            "throughput_rps": round(len(zipf) / zipf_s, 1),
            "errors": sum(status != 200 for _, status in zipf),
            "hit_ratio": round(hits / max(hits + loads, 1), 3),
            "loads": int(loads),
            "evictions": int(delta("manymodels_serve_cache_evictions_total")),
        },
        "memory": {
            "baseline_rss_mb": round(baseline["VmRSS"], 1),
            "peak_rss_mb": round(memory["VmHWM"], 1),
            "final_rss_mb": round(memory["VmRSS"], 1),
            "models_loaded": int(_metric(after, "manymodels_serve_models_loaded")),
            "models_mb": round(_metric(after, "manymodels_serve_models_bytes") / 2**20, 2),
            "bound_mb": bound_mb,
            "within_bound": memory["VmHWM"] <= baseline["VmRSS"] + bound_mb,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--series", type=int, default=2, help="series per partition")
    parser.add_argument("--weeks", type=int, default=60, help="weeks of history per series")
    parser.add_argument("--max-models", type=int, default=100)
    parser.add_argument("--max-model-mb", type=float, default=64)
    parser.add_argument("--cold", type=int, default=100, help="cold requests (one per model)")
    parser.add_argument("--warm", type=int, default=2000, help="warm requests")
    parser.add_argument("--requests", type=int, default=5000, help="Zipf requests (at most)")
    parser.add_argument("--seconds", type=float, default=120, help="Zipf phase time limit")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config-dir", default="pipelines")
    parser.add_argument("--disk", action="store_true", help="keep the registry off /dev/shm")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/serve_load.json"))
    args = parser.parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
