"""Benchmark: N partitions of the seed's shape through train -> evaluate -> register -> promote ->
score with the project's own step CLIs; per stage: wall time, vCPU-seconds per model, peak memory
per process and the MLflow store's size. Results JSON + a table in docs/benchmarks.md.

    python benchmarks/scale.py --partitions 200                       # local backend, sqlite
    python benchmarks/scale.py --partitions 1000 --backend spark      # training.backend=spark

Results: ``benchmarks/results/scale-<backend>-<N>[-<branches merged beyond main>].json``.
    python benchmarks/scale.py --partitions 200 --set training.block_size=64
    python benchmarks/scale.py --partitions 200 --tracking-uri http://127.0.0.1:5000
    python benchmarks/scale.py --docs-only                            # rewrite the docs table

Data: :mod:`scale_data` (``benchmarks/scale_data.py``) writes N distinct partitions (about 4,240
rows each) one at a time. Each stage is one ``python -m manymodels <step>`` process: its CPU
time is the whole process tree's (``os.wait4`` reports the stage with the workers it reaped),
cross-checked by sampling ``/proc`` every second (which also sees processes a stage does not
reap, such as a Spark JVM); peak RSS, sampled the same way, is the largest single process of the
tree (``ru_maxrss`` is no use here: a forked child inherits its parent's high-water mark), and
the largest sum over the tree at one sample. CPU time is the comparable figure on a shared
machine; the load average is recorded beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

from scale_data import write_scale_data  # beside this script: sys.path[0] when it runs

from manymodels.config import ConfigError, load_settings
from manymodels.profiles import profile_overrides

STAGES = ("train", "evaluate", "register", "promote", "score")
# the reference architecture: 10,000 models on 12 nodes x 16 vCPUs; train 30 min, score ~20 min
REFERENCE = {"train": 35.0, "score": 23.0}
TARGETS = {"train_register": 0.35, "score": 0.05, "end_to_end_10k_s": 3600}
RESULTS = Path("benchmarks/results")
DOCS = Path("docs/benchmarks.md")
SECTION = "## Scale: `benchmarks/scale.py`"
BEGIN, END = "<!-- scale.py: generated table -->", "<!-- scale.py: end -->"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class TreeSampler(threading.Thread):
    """Samples a process tree in ``/proc``: CPU seconds per process (last seen) and RSS."""

    def __init__(self, root: int, interval: float = 1.0):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.cpu: dict[tuple[int, int], float] = {}  # (pid, start time) -> own utime + stime
        self.peak_process_mb = self.peak_tree_mb = self.peak_root_mb = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        stats = _proc_stats()
        tree, frontier = set(), {self.root}
        while frontier:
            tree |= frontier
            frontier = {p for p, s in stats.items() if s["ppid"] in frontier} - tree
        total = 0.0
        for pid in tree & stats.keys():
            s = stats[pid]
            self.cpu[(pid, s["start"])] = s["cpu"]
            total += s["rss_mb"]
            self.peak_process_mb = max(self.peak_process_mb, s["rss_mb"])
            if pid == self.root:  # the step's own process: what it holds for all partitions
                self.peak_root_mb = max(self.peak_root_mb, s["rss_mb"])
        self.peak_tree_mb = max(self.peak_tree_mb, total)


def _proc_stats() -> dict[int, dict]:
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        # after the name: state ppid ... utime(14) stime(15) ... starttime(22) vsize rss(24)
        out[int(entry)] = {
            "ppid": int(fields[1]),
            "cpu": (int(fields[11]) + int(fields[12])) / TICK,
            "start": int(fields[19]),
            "rss_mb": int(fields[21]) * PAGE / 2**20,
        }
    return out


def run_stage(name: str, argv: list[str], env: dict, log_dir: Path) -> dict:
    """Run one step as a child process; its wall, CPU (tree) and memory, and its exit code."""
    load = os.getloadavg()
    log_file = log_dir / f"{name}.log"
    t0 = time.perf_counter()
    with log_file.open("w") as out:
        # its own process group: a stopped benchmark stops the step and its workers with it
        child = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        sampler = TreeSampler(child.pid)
        sampler.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
        child.returncode = os.waitstatus_to_exitcode(status)
        sampler.stopped.set()
        sampler.join()
    wall = time.perf_counter() - t0
    rusage_cpu = usage.ru_utime + usage.ru_stime
    sampled_cpu = sum(sampler.cpu.values())
    return {
        "stage": name,
        "exit_code": child.returncode,
        "wall_s": round(wall, 2),
        # the reaped tree's exact figure, unless sampling saw more (an unreaped JVM)
        "cpu_s": round(max(rusage_cpu, sampled_cpu), 2),
        "cpu_rusage_s": round(rusage_cpu, 2),
        "cpu_sampled_s": round(sampled_cpu, 2),
        # sampled, not ru_maxrss: a forked child starts with its parent's high-water mark
        "peak_rss_process_mb": round(sampler.peak_process_mb, 1),
        "peak_rss_tree_mb": round(sampler.peak_tree_mb, 1),
        "peak_rss_step_process_mb": round(sampler.peak_root_mb, 1),
        "load_avg_before": [round(x, 2) for x in load],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "log": str(log_file),
        "log_tail": log_file.read_text()[-1500:] if child.returncode else "",
    }


def folder_mb(path: Path) -> float | None:
    if not path.exists():
        return None
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return round(size / 2**20, 1)


def stage_args(args: argparse.Namespace, workdir: Path, today: dt.date) -> dict[str, list[str]]:
    common = ["--config-dir", args.config_dir, "--set", f"project.workdir={workdir}"]
    for item in args.overrides:
        common += ["--set", item]
    if not args.tracking_uri:
        common.append("--local")
    return {
        "train": ["train", *common],
        "evaluate": ["evaluate", *common],
        "register": ["register", *common],
        "promote": ["promote", *common],
        "score": ["score", *common, "--as-of", str(today)],
    }


def bytecode_cached() -> bool:
    """Whether the installed packages have compiled bytecode (``uv pip install`` writes none,
    and with ``PYTHONDONTWRITEBYTECODE`` set every process compiles torch, MLflow, pandas and
    scikit-learn again: ~5 CPU-s more per step process and worker here)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return False
    # where this interpreter reads it from: beside the source, or under PYTHONPYCACHEPREFIX
    return Path(importlib.util.cache_from_source(spec.origin)).is_file()


def backend_overrides(backend: str, config_dir: str) -> list[str]:
    """The settings that select ``backend`` (scoring too, where the settings have it)."""
    if backend == "local":
        return []
    wanted = [f"training.backend={backend}", f"scoring.backend={backend}"]
    usable = []
    for item in wanted:
        try:
            load_settings(config_dir, "dev", [*usable, item])
        except ConfigError:
            if item.startswith("training."):
                raise
            continue
        usable.append(item)
    return usable


def _per_model(result: dict, *names: str) -> float:
    """A result's CPU seconds per model in the stages ``names``, unrounded."""
    cpu = sum(st["cpu_s"] for st in result["stages"] if st["stage"] in names)
    return cpu / result["partitions"]


def summarise(stages: list[dict], n: int) -> dict:
    by = {s["stage"]: s for s in stages}

    def per_model(*names: str) -> float:
        return round(sum(by[s]["cpu_s"] for s in names if s in by) / n, 4)

    wall = sum(s["wall_s"] for s in stages)
    return {
        "vcpu_s_per_model": {s["stage"]: round(s["cpu_s"] / n, 4) for s in stages},
        "train_register_vcpu_s_per_model": per_model("train", "register"),
        "train_to_promote_vcpu_s_per_model": per_model("train", "evaluate", "register", "promote"),
        "score_vcpu_s_per_model": per_model("score"),
        "end_to_end_wall_s": round(wall, 1),
        "end_to_end_cpu_s": round(sum(s["cpu_s"] for s in stages), 1),
        # extrapolations, labelled as such: this run's wall per model x 10,000 (at its load),
        # and its CPU per model x 10,000 over the machine's cores (an idle machine's wall)
        "extrapolated_10k_wall_s": round(wall / n * 10_000),
        "extrapolated_10k_idle_wall_s": round(
            sum(s["cpu_s"] for s in stages) / n * 10_000 / (os.cpu_count() or 1)
        ),
        "peak_rss_process_mb": max(s["peak_rss_process_mb"] for s in stages),
    }


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--partitions", type=int, default=56, help="N partitions (default 56)")
    parser.add_argument("--backend", choices=("local", "spark"), default="local")
    parser.add_argument(
        "--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
        help="passed to every step, e.g. training.nn.epochs=10 (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", action="append", default=[], metavar="FILE",
        help="a settings profile (e.g. pipelines/profiles/lean.yaml), as its --set items",
    )  # fmt: skip
    parser.add_argument("--tracking-uri", default="", help="an MLflow server (default: sqlite)")
    parser.add_argument("--config-dir", default="pipelines")
    parser.add_argument(
        "--regions", type=int, default=14, help="template regions (4 partitions each)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, help="default: work/scale-<backend>-<N>")
    parser.add_argument("--keep", action="store_true", help="keep the workdir afterwards")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset")
    parser.add_argument(
        "--reuse", action="store_true",
        help="run --stages on the workdir an earlier --keep run left (its data, its models)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, help="default: benchmarks/results/scale-<backend>-<N>[-<merged>].json"
    )
    parser.add_argument("--docs", default=str(DOCS), help="markdown file to update ('': none)")
    parser.add_argument("--docs-only", action="store_true", help="only rewrite the docs table")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the running step too
    if args.docs_only:
        update_docs(Path(args.docs))
        return 0
    n, backend = args.partitions, args.backend
    profiled = profile_overrides(*args.profile)
    args.overrides = [*backend_overrides(backend, args.config_dir), *profiled, *args.overrides]
    workdir = (args.workdir or Path("work") / f"scale-{backend}-{n}").resolve()
    if workdir.exists() and not args.reuse:
        shutil.rmtree(workdir)
    today = dt.date.today()
    settings = load_settings(
        args.config_dir, "dev", [f"project.workdir={workdir}", *args.overrides]
    )
    t0, cpu0 = time.perf_counter(), time.process_time()
    if args.reuse:
        data, today = _reused(workdir)
    else:
        data = write_scale_data(settings, n, seed=args.seed, today=today, regions=args.regions)
        data |= {
            "wall_s": round(time.perf_counter() - t0, 2),
            "cpu_s": round(time.process_time() - cpu0, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        (workdir / "bench-data.json").write_text(json.dumps(data | {"today": str(today)}))
    _say(f"data: {n} partitions, {data['rows']:,} rows in {data['wall_s']} s")
    env = os.environ | {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONUNBUFFERED": "1",
    }
    if args.tracking_uri:
        env |= {"MLFLOW_TRACKING_URI": args.tracking_uri, "MANYMODELS_ALLOW_MOCK": "true"}
    logs = workdir / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    wanted = [s for s in args.stages.split(",") if s]
    if not wanted or set(wanted) - set(STAGES):
        parser.error(f"--stages: a comma-separated subset of {','.join(STAGES)}")
    steps = stage_args(args, workdir, today)
    merged = "".join(f"-{b}" for b in _git()["merged"])  # main's figures are not overwritten
    out = args.out or RESULTS / f"scale-{backend}-{n}{merged}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    base = {
        "partitions": n,
        "backend": backend,
        "overrides": args.overrides,
        "profiles": args.profile,
        "tracking": "server" if args.tracking_uri else "sqlite (embedded)",
        "bytecode_cached": bytecode_cached(),
        "data": data,
        "git": _git(),  # at the start: a long run's checkout may move on under it
    }
    stages = []
    for name in wanted:
        sha = _git()["sha"]  # the code this stage's process imports
        stage = run_stage(name, [sys.executable, "-m", "manymodels", *steps[name]], env, logs)
        stage["git_sha"] = sha
        stage["mlflow_store_mb"] = folder_mb(workdir / "mlflow")
        stage |= _counts(name, workdir)
        stages.append(stage)
        _say(
            f"{name}: exit {stage['exit_code']}, {stage['wall_s']} s wall, "
            f"{stage['cpu_s'] / n:.3f} vCPU-s/model, {stage['peak_rss_process_mb']} MB peak"
        )
        result = base | _record(stages, n) | {"complete": len(stages) == len(wanted)}
        out.write_text(json.dumps(result, indent=2) + "\n")  # after each stage: a stopped
        if stage["exit_code"] not in (0, 1):  # run keeps what it measured (1: a partition
            _say(stage["log_tail"])  # failed, the others are measured)
            break
    _say(markdown([result]))
    _say(f"results: {out}")
    if args.docs and out.parent.resolve() == RESULTS.resolve():
        update_docs(Path(args.docs))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    failed = [s["stage"] for s in stages if s["exit_code"]]
    return 1 if failed or len(stages) < len(wanted) else 0


def _reused(workdir: Path) -> tuple[dict, dt.date]:
    """The data an earlier run wrote into ``workdir`` (``--reuse``), and its scoring date."""
    try:
        data = json.loads((workdir / "bench-data.json").read_text())
    except OSError as exc:
        raise SystemExit(f"--reuse: {workdir} holds no earlier run (run with --keep)") from exc
    today = dt.date.fromisoformat(data.pop("today"))
    return data | {"reused": True}, today


def _record(stages: list[dict], n: int) -> dict:
    return {
        "stages": stages,
        "summary": summarise(stages, n),
        "reference_vcpu_s_per_model": REFERENCE,
        "targets": TARGETS,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "versions": _versions(),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _counts(stage: str, workdir: Path) -> dict:
    """What the stage produced, from its hand-off files (a check the run did the work)."""
    runs = workdir / "runs"
    try:
        if stage == "train":
            parts = json.loads((runs / "training.json").read_text())["partitions"]
            return {"trained": sum(p["status"] == "trained" for p in parts.values())} | (
                _fit_cpu(parts)
            )
        if stage == "evaluate":
            gate = json.loads((workdir / "reports" / "gate.json").read_text())
            decisions = [v.get("decision") for v in _verdicts(gate)]
            return {"decisions": {d: decisions.count(d) for d in sorted(set(map(str, decisions)))}}
        if stage == "register":
            reg = json.loads((runs / "registration.json").read_text())
            return {"registered": len(reg.get("registered", []))}
        if stage == "score":
            text = (workdir / "reports" / "scoring.md").read_text()
            return {"scored": len(re.findall(r"\|\s*scored", text))}
    except (OSError, KeyError, ValueError, TypeError):
        return {}
    return {}


def _fit_cpu(parts: dict) -> dict:
    """Per model: the CPU seconds of each part of a fit, where the train step records them."""
    total: dict[str, float] = {}
    for part in parts.values():
        for what, seconds in (part.get("cpu_seconds") or {}).items():
            total[what] = total.get(what, 0.0) + seconds
    if not total:
        return {}
    n = len(parts)
    return {"fit_cpu_s_per_model": {k: round(v / n, 4) for k, v in sorted(total.items())}}


def _verdicts(gate: dict) -> list[dict]:
    items = gate.get("partitions", gate.get("verdicts", []))
    return list(items.values()) if isinstance(items, dict) else list(items)


def _versions() -> dict:
    out = {}
    for p in ("torch", "scikit-learn", "mlflow", "pandas", "pyspark"):
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            continue
    return out


def _git() -> dict:
    def git(*a: str) -> str:
        done = subprocess.run(["git", *a], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    subjects = git("log", "--merges", "--format=%s", "main..HEAD").splitlines()
    merged = sorted({m.group(1) for t in subjects if (m := re.match(r"Merge branch '([^']+)'", t))})
    return {
        "sha": git("rev-parse", "--short", "HEAD"),
        "branch": git("branch", "--show-current"),
        "merged": merged,  # the other branches merged in: what was measured beyond main
    }


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def markdown(results: list[dict]) -> str:
    """One summary row per run, then each run's stages."""
    head = (
        "| N | backend | settings | rows | train + register vCPU-s/model | score vCPU-s/model "
        "| end to end wall | 10,000 on idle cores (extrapolated from CPU) | peak RSS / process "
        "| MLflow store | load avg | measured |\n" + _rule(12)
    )
    rows = []
    for r in sorted(results, key=lambda r: (r["backend"], r["partitions"], r["measured_at"])):
        s = r["summary"]
        store = [st.get("mlflow_store_mb") for st in r["stages"] if st.get("mlflow_store_mb")]
        loads = [st["load_avg_before"][0] for st in r["stages"]]
        ran = [st["stage"] for st in r["stages"]]
        # from the stages' CPU seconds, as the per-stage table rounds them (the summary's
        # figures are rounded to 4 places already: rounding those again can differ by 0.001)
        score = f"{_per_model(r, 'score'):.3f}" if "score" in ran else "not run"
        # a --stages run without train (e.g. score alone on kept models) has no such figure
        trained = f"{_per_model(r, 'train', 'register'):.3f}" if "train" in ran else "not run"
        wall = _duration(s["end_to_end_wall_s"])
        if "train" not in ran:  # not end to end: say what the wall covers
            wall += f" ({', '.join(ran)} only)"
        rows.append(
            f"| {r['partitions']:,} | {r['backend']} | {_settings_text(r)} "
            f"| {r['data']['rows']:,} | {trained} "
            f"| {score} | {wall} "
            f"| {_duration(s.get('extrapolated_10k_idle_wall_s', 0))} "
            f"| {s['peak_rss_process_mb']:,.0f} MB "
            f"| {f'{max(store):,.0f} MB' if store else 'n/a'} "
            f"| {min(loads):.1f}-{max(loads):.1f} | {r['measured_at'][:16]} {_code(r['git'])} |"
        )
    detail = []
    for r in sorted(results, key=lambda r: (r["backend"], r["partitions"], r["measured_at"])):
        n = r["partitions"]
        detail.append(
            f"\n{n:,} partitions, {r['backend']} ({_settings_text(r)}), per stage:\n\n"
            "| stage | exit | wall | vCPU-s total | vCPU-s/model | reference vCPU-s/model "
            "| peak RSS / process | step's own process | tree (sum) | MLflow store "
            "| load avg (1 min) |\n" + _rule(11)
        )
        for st in r["stages"]:
            ref = REFERENCE.get(st["stage"])
            store = st.get("mlflow_store_mb")
            detail.append(
                f"| {st['stage']} | {st['exit_code']} | {st['wall_s']:,.1f} s | {st['cpu_s']:,.1f} "
                f"| {st['cpu_s'] / n:.3f} | {ref if ref else ''} "
                f"| {st['peak_rss_process_mb']:,.0f} MB "
                f"| {_mb(st.get('peak_rss_step_process_mb'))} "
                f"| {st['peak_rss_tree_mb']:,.0f} MB "
                f"| {f'{store:,.1f} MB' if store is not None else 'n/a'} "
                f"| {st['load_avg_before'][0]:.1f} -> {st['load_avg_after'][0]:.1f} |"
            )
    return "\n".join([head, *rows, *detail])


def _code(git: dict) -> str:
    merged = git.get("merged", [])
    return f"{git['sha']} (main{''.join(f' + {b}' for b in merged)})"


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} MB"


def _rule(columns: int) -> str:
    return "|" + "---|" * columns


def _settings_text(r: dict) -> str:
    profiled = set(profile_overrides(*r.get("profiles", [])))
    shown = [f"profile `{Path(f).stem}`" for f in r.get("profiles", [])] + [
        f"`{o}`"
        for o in r["overrides"]
        if o not in profiled and not o.startswith(("training.backend", "scoring.backend"))
    ]
    text = ", ".join(shown) or "defaults (30 epochs)"
    return (
        text if r.get("complete", True) else f"{text}; **stopped after {r['stages'][-1]['stage']}**"
    )


def _duration(seconds: float) -> str:
    if seconds >= 7200:  # noqa: PLR2004
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds:,.0f} s" if seconds < 600 else f"{seconds / 60:,.1f} min"


def update_docs(docs: Path) -> None:
    """Replace the generated table in ``docs``' scale section with all recorded results."""
    results = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("scale-*.json"))]
    if not results or not docs.exists():
        return
    text = docs.read_text()
    block = f"{BEGIN}\n{markdown(results)}\n{END}"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        text = before + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{block}\n"
    docs.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
