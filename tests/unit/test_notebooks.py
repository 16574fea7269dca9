"""Every notebook under notebooks/ is a jupytext percent notebook without outputs, and runs as a
script on the tiny committed sample, so none of them rots while the package changes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.py"))
# each runs the package's steps in a fresh process (8 s); compare_variants trains twice (~1 min)
SLOW = {"explore_conditioned.py", "compare_variants.py"}


def params():
    for path in NOTEBOOKS:
        marks = [pytest.mark.slow] if path.name in SLOW else []
        yield pytest.param(path, id=str(path.relative_to(ROOT / "notebooks")), marks=marks)


def test_the_templates_are_there():
    names = {p.name for p in NOTEBOOKS}
    assert {"explore_conditioned.py", "compare_variants.py"} <= names


@pytest.mark.parametrize("path", list(params()))
def test_each_notebook_is_a_jupytext_notebook_without_outputs(path):
    notebook = jupytext.read(path)
    kinds = [c.cell_type for c in notebook.cells]
    assert kinds[0] == "markdown" and kinds.count("code") >= 2, f"{path}: {kinds}"
    assert all(not c.get("outputs") for c in notebook.cells)
    assert notebook.metadata["jupytext"]["text_representation"]["format_name"] == "percent"


@pytest.mark.parametrize("path", list(params()))
def test_each_notebook_runs_on_the_sample(path, tmp_path, sample_raw, config_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {
        "NOTEBOOK_RAW": str(sample_raw),
        "NOTEBOOK_WORKDIR": str(tmp_path / "work"),
        "NOTEBOOK_CONFIG": str(config_dir),
        "NOTEBOOK_EPOCHS": "1",
        "MPLBACKEND": "Agg",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    done = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{path}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
