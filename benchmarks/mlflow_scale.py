"""MLflow at 10,000 registered models (issue 12): a real ``mlflow server`` backed by a throwaway
PostgreSQL on loopback (and, for comparison, by sqlite), driven by the project's own registry
functions, what the train, register and promote steps call, with the registry grown to each
``--stages`` size (e.g. 40, 120, 1,000 and 10,000 registered models).

The registry is grown in two ways:

* **seeded** (bulk): the first partition is logged, registered, aliased ``challenger`` and
  promoted ``champion`` through the server by the project's functions (``log_partition``,
  ``register`` with :func:`manymodels.steps.register.version_tags`, ``set_alias``,
  ``promote_dev``); its rows in the backend database (run, params, metrics, tags; registered
  model, version, version tags, aliases) are then cloned for each seeded partition, with the
  partition id and run id swapped, in a few large transactions. A seeded model is exactly what
  the steps make for a partition (the same columns, tags and aliases: checked through the server
  after seeding), except that its run's artifacts are not copied (no step here reads them);
* **measured**: per stage, ``--new`` more partitions go the steps' way through the server
  (``log_partition``: one ``log_batch``, and the run's dataset inputs as the train step logs
  them; ``register`` of a new model; the ``challenger`` alias),
  and ``--retrains`` existing models get a new version the same way (``register`` of a known
  model), all under a new training parent run, then:

  - the register step's searches: its versions by ``parent_run_id`` (``find_versions``, also its
    duplicate check) and the champions of the partitions it registered (``alias_numbers``);
  - ``promote_dev`` (challenger -> champion) as the step runs it after ``register``: the
    aliases of the hand-off's models, by name (``--promote-all``: as ``promote --all``, the
    whole registry's aliases listed once);
  - champion look-ups (``get_alias``, what evaluate, scoring and serving call per partition) on
    a sample, and the whole-registry listings ``alias_numbers`` and ``champions``;
  - ``promote --to prod`` planning (``promote_prod(..., dry_run=True)``, the prod registry the
    same server under another name: no champion there is a copy yet, so every champion's copy
    is searched, the worst case: a first release).

Each operation's p50/p95 latency (ms) is recorded per stage, so the same operation at 40 and at
10,000 models compares directly; with the load average beside it (a shared machine).

    .venv/bin/python benchmarks/mlflow_scale.py --stages 40 120 1000 10000

PostgreSQL 15 (Debian ``postgresql``) and ``psycopg`` (the ``dev`` extra) are needed for the
PostgreSQL backend (see :mod:`manymodels.localservers`). Nothing outside the temporary folder is
written, except ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from manymodels import localservers

PREFIX = "bench"
# tables holding a run's rows (by run_uuid) and a registered model's rows (by name)
RUN_TABLES = ("runs", "tags", "params", "metrics", "latest_metrics")
MODEL_TABLES = (
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
    "registered_model_aliases",
)


def pid_of(i: int) -> str:
    return f"p{i:05d}"


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


def _round(seconds: float | None, digits: int = 2) -> float | None:
    return None if seconds is None else round(seconds, digits)


def _timed(fn: Callable, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


class Seeder:
    """Clones one registered partition's database rows (its run and its registered model) for
    many partitions: what the server would have written for each, in bulk.

    Args:
        db_uri: the server's backend store (SQLAlchemy URL).
        name: the template's model name; ``pid``: its partition id; ``run_id``: its run.
    """

    def __init__(self, db_uri: str, name: str, pid: str, run_id: str) -> None:
        import sqlalchemy as sa  # noqa: PLC0415

        self.sa, self.pid, self.run_id = sa, pid, run_id
        self.engine = sa.create_engine(db_uri)
        meta = sa.MetaData()
        meta.reflect(self.engine, only=lambda table, _: table in RUN_TABLES + MODEL_TABLES)
        self.rows: dict[str, list[dict]] = {}
        with self.engine.connect() as conn:
            for table in RUN_TABLES + MODEL_TABLES:
                t = meta.tables[table]
                key, value = (t.c.run_uuid, run_id) if table in RUN_TABLES else (t.c.name, name)
                rows = conn.execute(sa.select(t).where(key == value)).mappings().all()
                if rows:
                    self.rows[table] = [dict(r) for r in rows]
        self.tables = meta.tables
        missing = {"runs", "registered_models", "model_versions"} - set(self.rows)
        if missing:
            raise RuntimeError(f"the template {name} has no rows in {sorted(missing)}")

    def _swap(self, value, pid: str, run_id: str):
        if isinstance(value, str):
            return value.replace(self.run_id, run_id).replace(self.pid, pid)
        return value

    def seed(self, pids: list[str], chunk: int = 1000) -> int:
        """Insert the rows of ``pids`` (a transaction per ``chunk`` partitions); rows inserted."""
        total = 0
        for start in range(0, len(pids), chunk):
            batch: dict[str, list[dict]] = {t: [] for t in self.rows}
            for pid in pids[start : start + chunk]:
                run_id = uuid.uuid4().hex
                for table, rows in self.rows.items():
                    batch[table] += [
                        {k: self._swap(v, pid, run_id) for k, v in row.items()} for row in rows
                    ]
            with self.engine.begin() as conn:
                for table in RUN_TABLES + MODEL_TABLES:  # runs before the versions naming them
                    if batch.get(table):
                        conn.execute(self.sa.insert(self.tables[table]), batch[table])
                        total += len(batch[table])
        return total

    def close(self) -> None:
        self.engine.dispose()


class Partitions:
    """Logs and registers partitions the steps' way, through the server."""

    def __init__(self, store, model_dir: Path, uploads: int) -> None:
        from manymodels import registry  # noqa: PLC0415

        self.registry, self.store, self.model_dir = registry, store, model_dir
        self.uploads, self.source = uploads, {}
        self.params = {f"param_{i}": i for i in range(15)}
        self.metrics = {f"metric_{i}": i / 10 for i in range(20)}
        self.metrics |= {"ensemble_mape": 0.12, "baseline_mape": 0.2}
        self.lineage = registry.git_tags() | {"code_version": "bench", "config_hash": "bench"}
        self.inputs = registry.data_inputs({"data_version": "bench-data-1", "data_uri": "bench"})
        self.times: dict[str, list[float]] = {}

    def _log_run(self, parent_run_id: str, pid: str, **kwargs) -> dict:
        """What the train step's logger calls per partition: ``log_partition``, then the run's
        dataset inputs (``log_inputs``: a round trip and a commit of its own)."""
        logged = self.registry.log_partition(self.store, parent_run_id, pid, **kwargs)
        self.store.client().log_inputs(logged["run_id"], datasets=self.inputs)
        return logged

    def _time(self, what: str, fn: Callable, *args, **kwargs):
        took, out = _timed(fn, *args, **kwargs)
        self.times.setdefault(what, []).append(took)
        return out

    def add(self, i: int, parent_run_id: str, *, exists: bool) -> str:
        """Log partition ``i`` in ``parent_run_id``, register it (``exists``: a new version of
        a known model) and alias it ``challenger``; returns the model name."""
        from manymodels.steps.register import version_tags  # noqa: PLC0415

        pid, reg = pid_of(i), self.registry
        keys = {"region": f"r{i % 50}", "format": f"f{i % 3}", "speed": "fast"}
        upload = self.uploads > 0 or not self.source
        logged = self._time(
            "log_run with a pyfunc model upload" if upload else "log_run (log_batch, no upload)",
            self._log_run,
            parent_run_id,
            pid,
            params=self.params,
            metrics=self.metrics,
            tags={"partition": pid, **keys},
            model_dirs={"ensemble": self.model_dir} if upload else None,
        )
        if upload:  # a run without a model registers the latest uploaded one
            self.uploads -= 1
            self.source = logged
        part = {"keys": keys, "metrics": self.metrics, "partition": pid, "run_id": logged["run_id"]}
        training = {"data_version": "bench-data-1", "parent_run_id": parent_run_id}
        tags = version_tags(part, {"decision": "promote"}, "ensemble", training, self.lineage)
        name = f"{PREFIX}.{pid}"
        version = self._time(
            "register (new version of a known model)" if exists else "register (new model)",
            reg.register,
            self.store,
            self.source["ensemble_uri"],
            name,
            tags,
            artifact_uri=self.source["artifact_uri"],
            exists=exists,
        )
        self._time("set challenger alias", reg.set_alias, self.store, name, reg.CHALLENGER,
                   version.version)  # fmt: skip
        return name


def _stage_parent(store, label: str) -> str:
    from manymodels import registry  # noqa: PLC0415

    with registry.pipeline_run(store, PREFIX, label, {"pipeline": "training"}) as run:
        return run.info.run_id


def _same_shape(a, b) -> bool:
    """Two versions alike but for their partition: the same tag keys, aliases and fields."""
    return (
        sorted(a.tags) == sorted(b.tags)
        and sorted(a.aliases) == sorted(b.aliases)
        and (a.status, a.current_stage, a.version) == (b.status, b.current_stage, b.version)
    )


def _maps(store, prod, size: int) -> tuple[float, float, float]:
    """Walls (s) of the whole-registry listings: every champion's number, every champion
    version, and the prod planning (a first release: every copy searched)."""
    from manymodels import registry  # noqa: PLC0415
    from manymodels.steps import promote  # noqa: PLC0415

    numbers_wall, numbers = _timed(registry.alias_numbers, store, PREFIX, registry.CHAMPION)
    champions_wall, champions = _timed(registry.champions, store, PREFIX)
    assert len(numbers) == len(champions) == size, (len(numbers), len(champions), size)
    prod_wall, plan = _timed(promote.promote_prod, store, prod, PREFIX, "bench-prod", dry_run=True)
    assert len(plan) == size
    return numbers_wall, champions_wall, prod_wall


def drive(
    url: str,
    db_uri: str,
    stages: list[int],
    *,
    new: int,
    retrains: int,
    uploads: int,
    lookups: int,
    promote_all: bool = False,
    maps: bool = True,
    seed: int = 7,
) -> list[dict]:
    """Grow the registry at ``url`` (database ``db_uri``) to each stage's size; the
    measurements per stage. ``promote_all``: promote as ``promote --all`` (every model's aliases
    listed), else as after the register step (its hand-off's models, by name); ``maps``: also
    time the whole-registry listings and the prod planning."""
    from manymodels import registry  # noqa: PLC0415
    from manymodels.steps import promote  # noqa: PLC0415

    store = registry.Store("dev", url, url)
    prod = registry.Store("prod", url, url)  # the prod planning's target: see the docstring
    rng = random.Random(seed)
    model_dir = small_pyfunc(Path(tempfile.mkdtemp(prefix="mm-bench-")) / "model")
    parts = Partitions(store, model_dir, uploads)
    template = parts.add(0, _stage_parent(store, "seed"), exists=False)
    promote.promote_dev(store, PREFIX)
    expected = registry.get_alias(store, template, registry.CHAMPION)
    tmpl_run = expected.run_id
    seeder = Seeder(db_uri, template, pid_of(0), tmpl_run)
    results, made = [], 1
    for size in stages:
        load_before = os.getloadavg()
        cpu_before = time.process_time()
        fresh = min(new, size - made)
        seeded = list(range(made, size - fresh))
        seed_wall, rows = _timed(seeder.seed, [pid_of(i) for i in seeded])
        if seeded:  # a seeded model is what the steps make: checked through the server
            got = registry.get_alias(store, f"{PREFIX}.{pid_of(seeded[-1])}", registry.CHAMPION)
            assert got is not None and _same_shape(got, expected), got
            assert got.tags["partition"] == pid_of(seeded[-1]) and got.run_id != tmpl_run
        parent = _stage_parent(store, f"training {size}")
        parts.times = {}
        start = time.perf_counter()
        old = rng.sample(range(size - fresh), min(retrains, size - fresh))
        wanted = [parts.add(i, parent, exists=False) for i in range(size - fresh, size)]
        wanted += [parts.add(i, parent, exists=True) for i in old]
        grow_wall = time.perf_counter() - start
        search_wall, mine = _timed(registry.find_versions, store, parent_run_id=parent)
        assert len(mine) == len(wanted), (len(mine), len(wanted))
        few_wall, held = _timed(registry.alias_numbers, store, PREFIX, registry.CHAMPION, wanted)
        handoff = None if promote_all else {n.removeprefix(f"{PREFIX}."): n for n in wanted}
        promote_wall, moved = _timed(promote.promote_dev, store, PREFIX, names=handoff)
        assert len(moved) == len(wanted), (len(moved), len(wanted))
        names = [f"{PREFIX}.{pid_of(i)}" for i in rng.sample(range(size), min(lookups, size))]
        lookup_s = [_timed(registry.get_alias, store, n, registry.CHAMPION)[0] for n in names]
        numbers_wall, champions_wall, prod_wall = _maps(store, prod, size) if maps else (None,) * 3
        ops = {what: _stats(took) for what, took in sorted(parts.times.items())}
        ops["promote_dev per moved alias"] = _stats(
            [promote_wall / max(len(moved), 1)] * len(moved), promote_wall
        )
        ops["champion look-up (get_model_version_by_alias)"] = _stats(lookup_s)
        results.append({
            "registered_models": size,
            "seeded_this_stage": len(seeded),
            "seed_rows": rows,
            "seed_wall_s": round(seed_wall, 1),
            "new_this_stage": fresh,
            "retrained_this_stage": len(old),
            "measured_wall_s": round(grow_wall, 1),
            "ops": ops,
            "step_level": {
                "register: versions of this run (find_versions by parent_run_id) s": round(
                    search_wall, 3
                ),
                "register: champions of its partitions (alias_numbers by name) s": round(
                    few_wall, 3
                ),
                "promote_dev wall s (challenger -> champion)": round(promote_wall, 2),
                "promote_dev looked at": "every model (--all)" if promote_all else "the hand-off",
                "promoted": len(moved),
                "alias_numbers wall s (all champions' numbers)": _round(numbers_wall),
                "champions wall s (all champion versions, with tags)": _round(champions_wall),
                "promote --to prod planning wall s (every copy searched)": _round(prod_wall),
                "prod planning ms per champion": _round(prod_wall and 1000 * prod_wall / size),
            },
            "load_average_1m": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
            "bench_process_cpu_s": round(time.process_time() - cpu_before, 1),
        })  # fmt: skip
        made = size
        print(json.dumps(results[-1], indent=1), flush=True)  # noqa: T201
    seeder.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", type=int, nargs="+", default=[40, 120, 1000, 10000])
    parser.add_argument("--models", type=int, help="one stage of this many models (quick runs)")
    parser.add_argument("--backends", nargs="+", default=["postgresql", "sqlite"])
    parser.add_argument("--new", type=int, default=40, help="new partitions measured per stage")
    parser.add_argument("--retrains", type=int, default=40, help="known models given a version")
    parser.add_argument("--uploads", type=int, default=10, help="runs that upload a model")
    parser.add_argument("--lookups", type=int, default=200, help="sampled champion look-ups")
    parser.add_argument("--workers", type=int, default=2, help="mlflow server workers")
    parser.add_argument("--promote-all", action="store_true", help="promote as promote --all")
    parser.add_argument("--no-maps", action="store_true", help="skip whole-registry listings")
    parser.add_argument("--out", type=Path, help="results JSON (default: print only)")
    args = parser.parse_args(argv)
    stages = [args.models] if args.models else sorted(args.stages)
    # a killed benchmark still stops its server and database (the finally blocks run)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    report = {
        "benchmark": "mlflow_scale",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "benchmarks/mlflow_scale.py " + " ".join(argv or sys.argv[1:]),
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
                    uri = stack.enter_context(localservers.postgres())
                else:
                    root.mkdir(parents=True)
                    uri = f"sqlite:///{root / 'mlflow.db'}"
                url = stack.enter_context(
                    localservers.mlflow_server(uri, root / "server", args.workers)
                )
                stages_out = drive(
                    url, uri, stages, new=args.new, retrains=args.retrains,
                    uploads=args.uploads, lookups=args.lookups,
                    promote_all=args.promote_all, maps=not args.no_maps,
                )  # fmt: skip
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
