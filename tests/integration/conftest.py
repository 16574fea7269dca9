"""Whole pipelines on the tiny committed sample, against real MLflow stores in a temporary folder.

Steps run in-process through their ``main(argv)`` (the same code the CLI runs), one worker, so
coverage sees them. The sample's last week starts 2018-02-19; ``AS_OF`` is the day after it ends.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

import mlflow_schema
from manymodels import registry
from manymodels.cli import run_step
from manymodels.config import load_settings
from manymodels.steps.train import config_hash

SAMPLE = Path(__file__).parents[1] / "data" / "raw"
AS_OF = dt.date(2018, 2, 26)


class Workspace:
    """A working folder with the sample's raw sources, and a way to run steps on it."""

    def __init__(self, root: Path, *, raw: bool = True, plots: bool = False) -> None:
        self.root = root
        self.work = root / "work"
        # a residual plot is ~0.3 CPU-s per partition and only `trained_once`'s are looked at
        # (test_parent_and_nested_runs_carry_lineage): the other trainings draw none
        self.plots = plots
        if raw:
            shutil.copytree(SAMPLE, self.work / "raw")

    def copy_to(self, root: Path) -> Workspace:
        """A private copy of this workspace at ``root``, stores included: the embedded MLflow
        stores keep absolute artifact URIs, so every mention of the old folder in the SQLite
        files and the text files is rewritten to the new one. The settings hash the runs and
        versions are tagged with (``config_hash``) leaves the folder out, so a re-run in the copy
        with this workspace's settings is an identical re-run (checked here). The copy
        shares nothing with this one: a test may register, promote, score or corrupt it freely.
        It trains without residual plots."""
        shutil.copytree(self.root, root, dirs_exist_ok=True)
        moved = Workspace(root, raw=False)
        _relocate(root, str(self.root), str(root))
        hashes = _config_hashes(root)
        assert hashes <= {moved.config_hash()}, (
            f"{self.root} was trained with other settings: {hashes}"
        )
        return moved

    def config_hash(self) -> str:
        """The settings hash a step run through :meth:`run` tags its runs with."""
        args = self.args()
        overrides = [value for flag, value in zip(args, args[1:], strict=False) if flag == "--set"]
        return config_hash(load_settings("pipelines", "dev", overrides))

    def args(self, *extra: str) -> list[str]:
        return [
            "--set",
            f"project.workdir={self.work}",
            "--set",
            "training.nn.epochs=2",
            "--set",
            "training.workers=1",
            "--set",
            "scoring.workers=1",
            "--set",
            f"training.plots={str(self.plots).lower()}",
            *extra,
        ]

    def run(self, step: str, *extra: str) -> int:
        return run_step(step, [*extra, *self.args()])

    def train_pipeline(
        self, *extra: str, snapshot_after: str = "", snapshot: Path = Path()
    ) -> None:
        """condition ... promote; with ``snapshot_after``, a copy of the workspace as that step
        left it is kept at ``snapshot`` (see :meth:`copy_to`)."""
        for step, more in (
            ("condition", ()),
            ("validate", ("--as-of", str(AS_OF))),
            ("partition", ()),
            ("train", extra),
            ("evaluate", ()),
            ("register", ()),
            ("promote", ()),
        ):
            assert self.run(step, *more) == 0, f"step {step} failed"
            if step == snapshot_after:
                self.copy_to(snapshot)


@pytest.fixture(scope="session", autouse=True)
def _isolated_mlflow():
    """No configured server leaks in: every test uses the embedded stores under tmp_path."""
    with pytest.MonkeyPatch.context() as mp:
        for var in registry.STORE_VARIABLES:
            mp.delenv(var, raising=False)
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mlflow_schema.install()  # new embedded stores copy one migrated schema
        yield


def _relocate(root: Path, old: str, new: str) -> None:
    """Replace the folder ``old`` by ``new`` in every SQLite text column and text file."""
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".db":
            with sqlite3.connect(path) as db:
                for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                    columns = db.execute(f'PRAGMA table_info("{table}")').fetchall()
                    for column in (c[1] for c in columns if _is_text(c[2])):
                        db.execute(
                            f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                            f'WHERE instr("{column}", ?) > 0',
                            (old, new, old),
                        )
            db.close()
        elif path.stat().st_size < 2_000_000:
            data = path.read_bytes()
            if old.encode() in data:
                path.write_bytes(data.replace(old.encode(), new.encode()))


def _config_hashes(root: Path) -> set[str]:
    """Every ``config_hash`` tag of the runs in the SQLite stores under ``root``."""
    found = set()
    for path in root.rglob("*.db"):
        with sqlite3.connect(path) as db:
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'tags'").fetchone():
                found |= {
                    v
                    for (v,) in db.execute("SELECT value FROM tags WHERE key = ?", ("config_hash",))
                }
        db.close()
    return found


def _is_text(sql_type: str) -> bool:
    return not sql_type or any(word in sql_type.upper() for word in ("CHAR", "TEXT", "CLOB"))


def _shared_basetemp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest's temp folder of this session, the same for every pytest-xdist worker."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def trained_once(tmp_path_factory) -> Workspace:
    """The sample trained, gated, registered and promoted once in dev for the whole session
    (for all pytest-xdist workers together: the first trains, the others wait and reuse it).
    Read-only: tests take a private copy through ``trained`` or ``trained_copy``. Its state
    after ``evaluate`` (trained and gated, nothing registered yet) is kept as ``evaluated``."""
    root = _shared_basetemp(tmp_path_factory) / "trained-once"
    with (root.parent / "trained-once.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / "TRAINED"
        if not done.is_file():
            shutil.rmtree(root, ignore_errors=True)  # a worker that died half-way
            ws = Workspace(root / "registered", plots=True)
            ws.train_pipeline(snapshot_after="evaluate", snapshot=root / "evaluated")
            done.write_text("")
    return Workspace(root / "registered", raw=False, plots=True)


@pytest.fixture(scope="module")
def trained(trained_once, tmp_path_factory) -> Workspace:
    """The sample trained, gated, registered and promoted in dev: a copy of ``trained_once``
    shared by the tests of one module."""
    return trained_once.copy_to(tmp_path_factory.mktemp("trained"))


@pytest.fixture
def trained_copy(trained_once, tmp_path) -> Workspace:
    """A copy of ``trained_once`` of the test's own (what ``workspace`` holds after
    ``workspace.train_pipeline()``)."""
    return trained_once.copy_to(tmp_path / "trained")


@pytest.fixture
def evaluated_copy(trained_once, tmp_path) -> Workspace:
    """A copy of ``trained_once`` as it was after ``evaluate``: the sample conditioned,
    validated, partitioned, trained and gated, nothing registered (what ``workspace`` holds
    after condition ... evaluate with the settings of :meth:`Workspace.args`; plots, which
    ``config_hash`` leaves out, were on)."""
    evaluated = Workspace(trained_once.root.parent / "evaluated", raw=False, plots=True)
    return evaluated.copy_to(tmp_path / "evaluated")


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    return Workspace(tmp_path)
