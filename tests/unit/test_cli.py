"""The ``manymodels`` command: help without heavy imports, errors, and pipelines that stop early."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import pytest

from manymodels import cli
from manymodels.config import ConfigError
from manymodels.steps import setup_logging

pytestmark = pytest.mark.usefixtures("in_tmp")

# the foundation's part of the training pipeline: no models, no MLflow
FOUNDATION = "training.steps=[condition, validate, partition]"
# the sample's last week is long past: judge freshness loosely, whatever today is
FRESH_ENOUGH = "data.max_age_days=1000000"


def python(*args: str, cwd) -> subprocess.CompletedProcess:
    env = os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


@pytest.fixture
def raw_in_workdir(raw_dir, workdir):
    return shutil.copytree(raw_dir, workdir / "raw")


def test_help_lists_the_steps_without_importing_torch(tmp_path):
    code = (
        "import sys\n"
        "from manymodels.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "assert 'torch' not in sys.modules, 'manymodels --help imported torch'\n"
    )
    result = python("-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for step in ("mock", "condition", "validate", "partition", "run", "demo"):
        assert step in result.stdout
    via_module = python("-m", "manymodels", "--help", cwd=tmp_path)
    assert via_module.returncode == 0, via_module.stderr
    assert via_module.stdout == result.stdout


def test_a_step_module_runs_as_a_script(tmp_path):
    result = python("-m", "manymodels.steps.validate", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: manymodels validate")
    assert "--as-of" in result.stdout
    assert list(tmp_path.iterdir()) == []  # help writes nothing


def test_an_unknown_step_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["conditon"])
    assert exc.value.code == 2
    assert "invalid choice: 'conditon'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown step 'conditon'"):
        cli.run_step("conditon", [])


@pytest.mark.parametrize("pipeline", ["nosuch", "mock"])
def test_an_unknown_pipeline_exits_2(config_dir, pipeline, caplog):
    assert cli.main(["run", pipeline, "--config-dir", str(config_dir)]) == 2
    assert f"no pipeline {pipeline!r}" in caplog.text


def test_a_bad_setting_exits_2(config_dir, caplog):
    assert cli.main(["condition", "--config-dir", str(config_dir), "--set", "data.nope=1"]) == 2
    assert "data.nope: unknown key" in caplog.text
    assert cli.main(["run", "training", "--config-dir", str(config_dir), "--set", "x"]) == 2
    assert "must look like section.key=value" in caplog.text


def test_one_step_runs_through_the_command(raw_in_workdir, workdir, common_args):
    assert cli.main(["condition", *common_args]) == 0
    assert (workdir / "conditioned" / "manifest.json").exists()


def test_run_training_runs_the_steps_in_order(raw_in_workdir, workdir, common_args, caplog):
    args = [*common_args, "--set", FOUNDATION, "--set", FRESH_ENOUGH]
    assert cli.main(["run", "training", *args]) == 0
    assert (workdir / "reports" / "validation.json").exists()
    index = json.loads((workdir / "partitions" / "index.json").read_text())
    assert len(index["partitions"]) == 8
    started = [m for m in caplog.messages if m.startswith("== training: ")]
    assert started == [f"== training: {s}" for s in ("condition", "validate", "partition")]


def test_run_training_stops_at_a_failing_step(raw_in_workdir, workdir, common_args, caplog):
    returns = raw_in_workdir / "returns.jsonl"  # a return far larger than any shipment
    returns.write_text(
        returns.read_text()
        + '{"return_date":"2017-03-07","store":"S0001","sku":"P004","qty":99999}\n'
    )
    args = [*common_args, "--set", FOUNDATION, "--set", FRESH_ENOUGH]
    assert cli.main(["run", "training", *args]) == 1
    assert "training pipeline stopped: step 'validate' exited with 1" in caplog.text
    assert "== training: partition" not in caplog.text
    assert not (workdir / "partitions").exists()
    findings = json.loads((workdir / "reports" / "validation.json").read_text())["findings"]
    assert [(f["check"], f["column"]) for f in findings] == [("range", "units")]
    assert findings[0]["rows"][0]["store_id"] == "S0001"


def test_run_training_without_raw_data_stops_at_condition(workdir, common_args, caplog):
    assert cli.main(["run", "training", *common_args, "--set", FOUNDATION]) == 1
    assert "step 'condition' exited with 1" in caplog.text
    assert not (workdir / "reports").exists()  # validate never ran


def test_demo_stops_when_mock_fails(workdir, common_args, caplog):
    assert cli.main(["demo", *common_args, "--set", "mock.regions=15"]) == 2
    assert "regions must be between 1 and 14" in caplog.text
    assert not workdir.exists()


def test_setup_logging_adds_one_stdout_handler(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    previous = root.level
    root.setLevel(logging.WARNING)
    try:
        setup_logging()
        setup_logging()  # once per process: a second call adds nothing
        assert root.level == logging.INFO
    finally:
        root.setLevel(previous)
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    assert handler.stream is sys.stdout
    assert logging.getLogger("mlflow").level == logging.WARNING


def test_setup_logging_turns_off_mlflow_download_bars_unless_asked(monkeypatch):
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR  # noqa: PLC0415

    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    setup_logging()
    assert MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get() is False  # what MLflow's downloads read
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    setup_logging()
    assert MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get() is True  # a user's own choice is kept
