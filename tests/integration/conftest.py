"""Whole pipelines on the tiny committed sample, against real MLflow stores in a temporary folder.

Steps run in-process through their ``main(argv)`` (the same code the CLI runs), one worker, so
coverage sees them. The sample's last week starts 2018-02-19; ``AS_OF`` is the day after it ends.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from manymodels import registry
from manymodels.cli import run_step

SAMPLE = Path(__file__).parents[1] / "data" / "raw"
AS_OF = dt.date(2018, 2, 26)


class Workspace:
    """A working folder with the sample's raw sources, and a way to run steps on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.work = root / "work"
        shutil.copytree(SAMPLE, self.work / "raw")

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
            *extra,
        ]

    def run(self, step: str, *extra: str) -> int:
        return run_step(step, [*extra, *self.args()])

    def train_pipeline(self, *extra: str) -> None:
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


@pytest.fixture(scope="session", autouse=True)
def _isolated_mlflow():
    """No configured server leaks in: every test uses the embedded stores under tmp_path."""
    with pytest.MonkeyPatch.context() as mp:
        for var in registry.STORE_VARIABLES:
            mp.delenv(var, raising=False)
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Workspace:
    """The sample trained, gated, registered and promoted once in dev (shared by a module)."""
    ws = Workspace(tmp_path_factory.mktemp("trained"))
    ws.train_pipeline()
    return ws


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    return Workspace(tmp_path)
