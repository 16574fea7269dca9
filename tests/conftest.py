"""Shared fixtures: the tiny committed raw sample, its conditioned table, and settings whose
working folder is the test's ``tmp_path``, so no test writes into the repository."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from manymodels.config import Settings, load_settings
from manymodels.data.condition import condition
from manymodels.data.sources import read_sources

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "pipelines"
# `make sample`: 2 regions x 2 stores x 6 products x 60 weeks from 2017-01-02, seed 7
SAMPLE_RAW = REPO / "tests" / "data" / "raw"
# a few days after the sample's last week ends (Sunday 2018-02-25): fresh, whatever today is
AS_OF = dt.date(2018, 3, 1)


# A test's `mlflow server` (a real one, on loopback) does not start MLflow's job runner: seven
# huey worker processes, each importing MLflow (~30 s of CPU per server start on 2 cores), for
# MLflow's GenAI jobs, which no test uses. Servers started with os.environ inherit this.
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")


# ---------------------------------------------------------------- scheduling (pytest-xdist)
# `make test` runs the suite with pytest-xdist (`-n N --dist loadfile --no-loadscope-reorder`):
# one test module runs on one worker, in file order (an integration module's tests share its
# module-scoped workspace), and the workers take the modules in collection order. So the longest
# go first: the act-executed workflows (three modules, so they run side by side), then the
# integration modules that train models; the short unit tests fill the gaps at the end. A run
# without workers keeps pytest's own order. (--dist loadgroup with xdist_group marks would be
# finer, but pytest-xdist 3.8 cannot rename pytest 9.2's node ids: its groups are ignored.)
def _rank(item: pytest.Item) -> int:
    if item.get_closest_marker("workflows"):
        return 0
    if item.get_closest_marker("slow"):
        return 1
    return 2


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker
        items.sort(key=_rank)


# Executed workflow runs (tests/workflows/conftest.py) travel to the controller with each report:
# the summary of act runs at the end of the session, and WORKFLOW_TIMINGS_JSON.
ACT_TIMINGS_KEY = "act_timings"
ACT_RUNS: list[list] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == ACT_TIMINGS_KEY:
            ACT_RUNS.extend(value)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not ACT_RUNS:
        return
    terminalreporter.section("executed workflows (act, host mode)")
    for label, seconds, jobs, _steps, cpu, step_cpu in ACT_RUNS:
        outcome = ", ".join(f"{job} {result}" for job, result in jobs.items()) or "no job ran"
        terminalreporter.write_line(f"{seconds:7.1f} s  {cpu:7.1f} CPU-s  {label}  [{outcome}]")
        for job, times in step_cpu.items():
            slow = sorted(times.items(), key=lambda item: -item[1])[:3]
            parts = ", ".join(f"{step[:40]} {secs:.1f} CPU-s" for step, secs in slow)
            terminalreporter.write_line(f"{'':12}{job}: {parts}")
    out = os.environ.get("WORKFLOW_TIMINGS_JSON")
    if out:
        runs = [{"run": label, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
                 "jobs": jobs,
                 "steps": {j: {k: round(v, 1) for k, v in t.items()} for j, t in steps.items()},
                 "step_cpu_seconds": {j: {k: round(v, 1) for k, v in t.items()}
                                      for j, t in step_cpu.items()}}
                for label, seconds, jobs, steps, cpu, step_cpu in ACT_RUNS]  # fmt: skip
        Path(out).write_text(json.dumps(runs, indent=2) + "\n")


# Test modules take these as fixtures rather than importing conftest (unit/ has no packages).
@pytest.fixture(scope="session")
def config_dir() -> Path:
    """The repository's ``pipelines/`` folder."""
    return CONFIG_DIR


@pytest.fixture(scope="session")
def sample_raw() -> Path:
    """The committed raw sample (read-only: copy it with ``raw_dir`` to change it)."""
    return SAMPLE_RAW


@pytest.fixture(scope="session")
def as_of() -> dt.date:
    """A date on which the sample is fresh."""
    return AS_OF


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The working folder the ``settings`` and ``common_args`` fixtures point at."""
    return tmp_path / "work"


@pytest.fixture
def overrides(workdir: Path) -> list[str]:
    return [f"project.workdir={workdir}"]


@pytest.fixture
def settings(overrides: list[str]) -> Settings:
    """The repository's settings (dev) with the working folder in ``tmp_path``."""
    return load_settings(CONFIG_DIR, "dev", overrides)


@pytest.fixture
def common_args(overrides: list[str]) -> list[str]:
    """Arguments every step's ``main`` takes: the repository's config, workdir in tmp_path."""
    args = ["--config-dir", str(CONFIG_DIR)]
    for item in overrides:
        args += ["--set", item]
    return args


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from ``tmp_path``, so a relative default path cannot land in the repo."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    return tmp_path


@pytest.fixture
def raw_dir(tmp_path: Path) -> Path:
    """A writable copy of the committed raw sample (corrupt it freely)."""
    return Path(shutil.copytree(SAMPLE_RAW, tmp_path / "raw"))


def condition_folder(raw: Path, overrides: tuple[str, ...] = ()) -> tuple[pd.DataFrame, dict]:
    """Condition the raw files in ``raw`` as the ``condition`` step does with these settings."""
    s = load_settings(CONFIG_DIR, "dev", list(overrides))
    sources = read_sources(s.sources, str(raw))
    return condition(sources, s.data, s.partition.slow_zero_share, s.training.split.test_weeks)


@pytest.fixture(scope="session")
def conditioner():
    """``conditioner(raw_folder, overrides=())``: the step's conditioning, as a function."""
    return condition_folder


@pytest.fixture(scope="session")
def _conditioned() -> tuple[pd.DataFrame, dict]:
    return condition_folder(SAMPLE_RAW)


@pytest.fixture
def table(_conditioned: tuple[pd.DataFrame, dict]) -> pd.DataFrame:
    """The conditioned sample (a fresh copy per test, so tests may corrupt it)."""
    return _conditioned[0].copy()


@pytest.fixture
def condition_stats(_conditioned: tuple[pd.DataFrame, dict]) -> dict:
    return dict(_conditioned[1])
