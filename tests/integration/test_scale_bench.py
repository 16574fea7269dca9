"""``benchmarks/scale.py`` at tiny N: generated partitions go through every step, measured."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import mlflow_schema
from manymodels.config import load_settings

pytestmark = pytest.mark.slow
BENCH = Path(__file__).parents[2] / "benchmarks"
# in-process fits and scoring (workers=1): no pool start-up, so the test stays under a minute;
# 2 partitions: every stage still runs on several models (each more costs ~5 CPU-s in all)
ARGS = ["--partitions", "2", "--regions", "1", "--set", "training.nn.epochs=2",
        "--set", "training.workers=1", "--set", "scoring.workers=1"]  # fmt: skip


def _scale_data():
    spec = importlib.util.spec_from_file_location("scale_data", BENCH / "scale_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_writes_distinct_valid_partitions(tmp_path):
    settings = load_settings("pipelines", "dev", [f"project.workdir={tmp_path}"])
    info = _scale_data().write_scale_data(settings, 6, regions=1, weeks=80)
    index = json.loads((tmp_path / "partitions" / "index.json").read_text())
    ids = list(index["partitions"])
    assert info["partitions"] == len(ids) == len(set(ids)) == 6
    assert "north-texas-d1.large.fast" in ids and "north-texas.large.fast" in ids
    first = pd.read_parquet(tmp_path / "partitions" / "north-texas.large.fast.parquet")
    copy = pd.read_parquet(tmp_path / "partitions" / "north-texas-d1.large.fast.parquet")
    assert len(first) == len(copy) == index["partitions"]["north-texas-d1.large.fast"]["rows"]
    assert set(first["store_id"]).isdisjoint(copy["store_id"])  # new stores ...
    assert not first["units"].equals(copy["units"])  # ... with their own sales
    assert copy["units"].isna().sum() == first["units"].isna().sum()  # same future weeks
    table = pd.read_parquet(tmp_path / "conditioned" / "demand.parquet")
    manifest = json.loads((tmp_path / "conditioned" / "manifest.json").read_text())
    assert len(table) == manifest["rows"] == sum(p["rows"] for p in index["partitions"].values())


def test_benchmark_runs_every_stage_and_records_it(tmp_path):
    out = tmp_path / "scale.json"
    command = [sys.executable, str(BENCH / "scale.py"), *ARGS, "--out", str(out)]
    command += ["--docs", "", "--workdir", str(tmp_path / "work")]
    env = mlflow_schema.child_env()  # the stages' new store copies the migrated schema
    bench = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:  # ~40 s on an idle 2-core machine; the limit allows for a busy one
        stdout, _ = bench.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        bench.terminate()  # the benchmark stops its running step (own process group) with it
        stdout, _ = bench.communicate(timeout=60)
        pytest.fail(f"benchmark did not finish in 600 s:\n{stdout[-3000:]}")
    assert bench.returncode == 0, stdout[-3000:]
    result = json.loads(out.read_text())
    stages = {s["stage"]: s for s in result["stages"]}
    assert list(stages) == ["train", "evaluate", "register", "promote", "score"]
    assert all(s["exit_code"] == 0 and s["cpu_s"] > 0 for s in stages.values())
    assert stages["train"]["trained"] == 2 and stages["score"]["scored"] == 2
    assert stages["train"]["peak_rss_process_mb"] > 100  # torch was loaded and measured
    assert stages["register"]["mlflow_store_mb"] > 0
    assert result["summary"]["score_vcpu_s_per_model"] > 0
    assert "| train |" in stdout  # the markdown table
    assert not (tmp_path / "work").exists()  # not kept without --keep


def _scale():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("scale", BENCH / "scale.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_a_run_of_some_stages_is_not_shown_as_the_whole_chain():
    """A `--stages score` run has no train or register: its row says "not run" there, not
    0.000 vCPU-s per model, and its wall is labelled with the stages it covers."""
    result = json.loads((BENCH / "results" / "scale-local-10000-score5.json").read_text())
    row = next(x for x in _scale().markdown([result]).splitlines() if x.startswith("| 10,000 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == "not run"  # train + register
    assert cells[5] == "0.033"  # score
    assert cells[6] == "247 s (score only)"


def test_the_summary_row_rounds_as_the_stage_table_does():
    """305.5 CPU-s of scoring over 10,000 models is 0.031 in both tables (the summary once
    rounded an already rounded 0.0305 to 0.030)."""
    result = json.loads((BENCH / "results" / "scale-spark-10000-lean.json").read_text())
    lines = _scale().markdown([result]).splitlines()
    row = next(x for x in lines if x.startswith("| 10,000 |"))
    stage = next(x for x in lines if x.startswith("| score |"))
    assert [c.strip() for c in row.strip("|").split("|")][5] == "0.031"
    assert [c.strip() for c in stage.strip("|").split("|")][4] == "0.031"
