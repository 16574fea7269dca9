"""MLflow at 10,000 registered models (issue 12): a real ``mlflow server`` backed by a throwaway
PostgreSQL on loopback (and, for comparison, by sqlite), driven by the project's own registry
functions, what the train, register and promote steps call.

Per stage (the registry grown to each ``--stages`` size, e.g. 1,000 then 10,000 models):

* run logging: ``registry.log_partition`` (one ``log_batch`` of params and metrics per run; the
  first ``--uploads`` runs also upload a small real pyfunc model, the rest log none);
* registration: ``registry.register`` + the ``challenger`` alias, as ``manymodels register``;
* alias moves: ``steps.promote.promote_dev`` (challenger -> champion) over the whole registry;
* champion look-ups: ``registry.get_alias`` (what scoring and serving call per partition) on a
  sample, and the step-level listings ``registry.alias_numbers`` / ``registry.champions``.

Each operation's p50/p95 latency (ms) and throughput (ops/s) is recorded per stage, so the same
operation at 1,000 and at 10,000 models compares directly.

    .venv/bin/python benchmarks/mlflow_scale.py --stages 1000 10000 --backends postgresql sqlite

PostgreSQL 15 (Debian ``postgresql``; ``initdb`` refuses root, so as root the cluster runs as
the ``postgres`` user via ``runuser``) and ``psycopg`` (the ``dev`` extra) are needed for the
PostgreSQL backend. Nothing outside the temporary folder is written, except ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

PREFIX = "bench"


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin(name: str) -> str | None:
    """A PostgreSQL binary from PATH or Debian's /usr/lib/postgresql/<major>/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(versions[-1]) if versions else None


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on loopback (trust auth); yields its SQLAlchemy URL."""
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise SystemExit("PostgreSQL is not installed: apt-get install -y postgresql")
    root = Path(tempfile.mkdtemp(prefix="mm-pg-"))  # its own folder: the postgres user owns it
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=180)

    run(initdb, "-D", str(data), "-U", "mlflow", "-A", "trust")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql+psycopg://mlflow@127.0.0.1:{port}/postgres"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(backend_uri: str, root: Path, workers: int = 2) -> Iterator[str]:
    """A real ``mlflow server`` on loopback with local artifacts; yields its URL."""
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--backend-store-uri", backend_uri]
    cmd += ["--artifacts-destination", str(root / "artifacts")]
    env = os.environ | {"HOME": str(root), "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = (root / "server.log").open("a")
    proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=log, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600  # a loaded shared machine: minutes
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start; see {root / 'server.log'}")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


def small_pyfunc(folder: Path) -> Path:
    """A small real pyfunc model folder (a models-from-code constant forecaster)."""
    import mlflow  # noqa: PLC0415

    code = folder.parent / "constant_model.py"
    code.write_text(
        "import mlflow.pyfunc, mlflow.models\n"
        "class Constant(mlflow.pyfunc.PythonModel):\n"
        "    def predict(self, context, model_input, params=None):\n"
        "        return [1.0] * len(model_input)\n"
        "mlflow.models.set_model(Constant())\n"
    )
    mlflow.pyfunc.save_model(str(folder), python_model=str(code), pip_requirements=["mlflow"])
    return folder


def _stats(latencies: list[float], wall: float | None = None) -> dict:
    ms = sorted(x * 1000 for x in latencies)
    if not ms:
        return {"n": 0}
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    total = wall if wall is not None else sum(latencies)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(p95, 2),
        "ops_per_s": round(len(ms) / total, 1) if total > 0 else None,
    }


def _timed(fn: Callable, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def drive(url: str, stages: list[int], uploads: int, lookups: int, seed: int = 7) -> list[dict]:
    """Grow the registry at ``url`` to each stage's size; the measurements per stage."""
    from manymodels import registry  # noqa: PLC0415
    from manymodels.steps import promote  # noqa: PLC0415

    store = registry.Store("dev", url, url)
    rng = random.Random(seed)
    model_dir = small_pyfunc(Path(tempfile.mkdtemp(prefix="mm-bench-")) / "model")
    params = {f"param_{i}": i for i in range(15)}
    metrics = {f"metric_{i}": i / 10 for i in range(20)}
    results, made, source = [], 0, {}
    with registry.pipeline_run(store, "bench", "training", {"pipeline": "training"}) as parent:
        parent_id = parent.info.run_id
        for size in stages:
            logging_s, register_s, alias_s, uploads_s = [], [], [], []
            start = time.perf_counter()
            for i in range(made, size):
                pid = f"p{i:05d}"
                upload = i < max(uploads, 1)
                took, logged = _timed(
                    registry.log_partition,
                    store,
                    parent_id,
                    pid,
                    params=params,
                    metrics=metrics,
                    tags={"partition": pid, "region": f"r{i % 50}"},
                    model_dirs={"ensemble": model_dir} if upload else None,
                )
                (uploads_s if upload else logging_s).append(took)
                if upload:  # a run without a model registers the latest uploaded one
                    source = logged
                name = f"{PREFIX}.{pid}"
                tags = {"partition": pid, "parent_run_id": parent_id, "model_kind": "ensemble"}
                took, version = _timed(
                    registry.register,
                    store,
                    source["ensemble_uri"],
                    name,
                    tags,
                    artifact_uri=source["artifact_uri"],
                )
                register_s.append(took)
                took, _ = _timed(registry.set_alias, store, name, "challenger", version.version)
                alias_s.append(took)
            grow_wall = time.perf_counter() - start
            promote_wall, moved = _timed(promote.promote_dev, store, PREFIX)
            names = [f"{PREFIX}.p{i:05d}" for i in rng.sample(range(size), min(lookups, size))]
            lookup_s = [_timed(registry.get_alias, store, n, "champion")[0] for n in names]
            numbers_wall, numbers = _timed(registry.alias_numbers, store, PREFIX, "champion")
            champions_wall, champions = _timed(registry.champions, store, PREFIX)
            assert len(numbers) == len(champions) == size, (len(numbers), len(champions), size)
            added = size - made
            results.append({
                "registered_models": size,
                "added_this_stage": added,
                "grow_wall_s": round(grow_wall, 1),
                "ops": {
                    "log_run (log_batch, no upload)": _stats(logging_s),
                    "log_run with a pyfunc model upload": _stats(uploads_s),
                    "register (create_model_version)": _stats(register_s),
                    "set challenger alias": _stats(alias_s),
                    "promote_dev per moved alias": _stats(
                        [promote_wall / max(len(moved), 1)] * len(moved), promote_wall
                    ),
                    "champion look-up (get_model_version_by_alias)": _stats(lookup_s),
                },
                "step_level": {
                    "promote_dev wall s (challenger -> champion, whole registry)": round(
                        promote_wall, 2
                    ),
                    "promoted": len(moved),
                    "alias_numbers wall s (all champions' numbers)": round(numbers_wall, 2),
                    "champions wall s (all champion versions, with tags)": round(
                        champions_wall, 2
                    ),
                },
            })  # fmt: skip
            made = size
            print(json.dumps(results[-1], indent=1), flush=True)  # noqa: T201
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--models", type=int, help="one stage of this many models (quick runs)")
    parser.add_argument("--backends", nargs="+", default=["postgresql", "sqlite"])
    parser.add_argument("--uploads", type=int, default=50, help="runs that upload a model")
    parser.add_argument("--lookups", type=int, default=300, help="sampled champion look-ups")
    parser.add_argument("--workers", type=int, default=2, help="mlflow server workers")
    parser.add_argument("--out", type=Path, help="results JSON (default: print only)")
    args = parser.parse_args(argv)
    stages = [args.models] if args.models else sorted(args.stages)
    # a killed benchmark still stops its server and database (the finally blocks run)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    report = {
        "benchmark": "mlflow_scale",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "python": platform.python_version(),
        "mlflow": __import__("mlflow").__version__,
        "server_workers": args.workers,
        "stages": stages,
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="mm-mlflow-scale-") as tmp:
        for backend in args.backends:
            root = Path(tmp) / backend
            start = time.perf_counter()
            with contextlib.ExitStack() as stack:
                if backend == "postgresql":
                    uri = stack.enter_context(postgres())
                else:
                    root.mkdir(parents=True)
                    uri = f"sqlite:///{root / 'mlflow.db'}"
                url = stack.enter_context(mlflow_server(uri, root / "server", args.workers))
                stages_out = drive(url, stages, args.uploads, args.lookups)
            report["backends"][backend] = {
                "backend_store": uri.split("://", 1)[0],
                "wall_s": round(time.perf_counter() - start, 1),
                "stages": stages_out,
            }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
