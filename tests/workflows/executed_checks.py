"""What the executed workflow tests share: the runs' settings and the checks of their outcomes.

The act runs are spread over three test modules (test_workflows_executed*.py) so that
pytest-xdist (``--dist loadfile``, one module per worker) runs them side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from workflow_harness import EVENTS, ActResult, clean_env

# Fixed Azure ids in the OIDC test: the azure/login stand-in checks it is called, never logs in.
AZURE = {
    "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
    "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000002",
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000003",
}
# Gate decisions after which a partition has a champion in a registry that started empty.
SERVING = {"promote", "fallback_baseline"}
EMBEDDED_STEP = "Model validation (embedded mode, no remote registry)"
# Inside act, the test-cov job runs one small test module, without the coverage gate: this pytest
# session runs every test once already; what the act run shows is the job's wiring (make
# test-cov, coverage.xml, the summary, the upload), which any module shows as well; in one
# process (TEST_WORKERS=0): two pytest-xdist workers and their controller cost ~20 CPU-s per
# job, one process ~7; the outer session's `make test` runs the same --cov on workers and
# combines their data, which is what the job's xdist options would show.
QUICK_TEST_COV = {"PYTEST_ADDOPTS": "tests/unit/test_io.py --cov-fail-under=0", "TEST_WORKERS": "0"}
# Training in the step's own process (training.workers=1: one block of the 8 tiny partitions)
# instead of a pool of one spawned worker per core, each importing torch, MLflow and scikit-learn
# (~7 CPU-s apiece on this machine under load) for a few seconds of fitting: same models, same
# gate, same registry. The pool itself still runs in the shared-registry CD run (CI's wheel
# installed, the path a deployment takes) and in the integration tests.
IN_PROCESS = "--set training.workers=1"
# PR validation and CI: for `make e2e` only (E2E_ARGS; ARGS would reach test-cov's pytest too).
E2E_IN_PROCESS = {"E2E_ARGS": IN_PROCESS}
# The CD runs train make e2e's tiny mock set (2 of the 14 regions, 2 stores each, 6 products: 8
# partitions of ~1,550 rows instead of 56 of ~10,400) with 3 NN epochs instead of 30 (ARGS reaches
# `manymodels run` through the make targets, in dev and in prod, so scoring generates the same
# mock data): they test the hand-over between workflows, registries and environments; what
# training produces is tested in tests/integration.
TINY_MOCK = "--set mock.regions=2 --set mock.stores_per_region=2 --set mock.products=6"
FEW_EPOCHS = {"ARGS": f"--set training.nn.epochs=3 {TINY_MOCK}"}
FEW_EPOCHS_IN_PROCESS = {"ARGS": f"{FEW_EPOCHS['ARGS']} {IN_PROCESS}"}
E2E_REGIONS = 2  # `make e2e` trains the tiny mock set: 2 regions x 2 stores x 6 products
CI_RUN_ID = "4242"  # the CI run whose `dist` artifact cd-model-validation downloads


def _client(uri: str):
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _champions(uri: str) -> dict[str, str]:
    """Registered model name -> version that carries the ``champion`` alias."""
    client = _client(uri)
    found = {}
    for model in client.search_registered_models(max_results=1000):
        if "champion" in model.aliases:
            found[model.name] = model.aliases["champion"]
    return found


def _champion_versions(uri: str) -> dict:
    """Registered model name -> the champion's ModelVersion (tags, run id)."""
    client = _client(uri)
    return {
        name: client.get_model_version(name, version) for name, version in _champions(uri).items()
    }


def _ci_dist(snapshot: Path, downloads: Path) -> Path:
    """What CI's package job uploads as `dist`: the wheel of the commit under test, stored where
    the download-artifact stand-in looks for run CI_RUN_ID's artifacts."""
    dist = downloads / CI_RUN_ID / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(snapshot)],
        capture_output=True, text=True, env=clean_env(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (wheel,) = dist.glob("manymodels-*.whl")
    return wheel


def _event(folder: Path, name: str, **changes) -> str:
    """A copy of events/<name> with workflow_run fields changed; returns its path."""
    event = json.loads((EVENTS / name).read_text())
    event["workflow_run"].update(changes)
    path = folder / name
    path.write_text(json.dumps(event))
    return str(path)


def _gate(report_dir: Path) -> dict:
    gate = json.loads((report_dir / "gate.json").read_text())
    assert gate["partitions"], "the gate judged no partition"
    return gate


def _verdicts(gate: dict) -> dict[str, dict]:
    """Partition id -> verdict (gate.json keys them by partition; a list is accepted too)."""
    partitions = gate["partitions"]
    if isinstance(partitions, dict):
        return partitions
    return {verdict["partition"]: verdict for verdict in partitions}


def _expected_champions(gate: dict) -> set[str]:
    return {f"demand.{pid}" for pid, v in _verdicts(gate).items() if v["decision"] in SERVING}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _first_line(path: Path) -> str:
    return next(line for line in path.read_text().splitlines() if line.strip())


def _assert_e2e_reports(result: ActResult) -> None:
    reports = result.artifacts / "e2e-reports" / "reports"
    gate = _gate(reports)
    assert _expected_champions(gate), f"no partition passed the gate: {gate['partitions']}"
    # make e2e's tiny mock set (2 regions), also when MANYMODELS_DATA_URI=mock regenerates it
    regions = {pid.split(".")[0] for pid in _verdicts(gate)}
    assert len(regions) == E2E_REGIONS, f"e2e trained {sorted(regions)}, not the tiny mock set"
    assert _files(result.artifacts / "e2e-reports" / "predictions"), "e2e wrote no predictions"
    summary = result.summaries.get("e2e", "")
    assert _first_line(reports / "gate.md") in summary
    assert _first_line(reports / "scoring.md") in summary


def _assert_coverage(result: ActResult) -> None:
    coverage = result.artifacts / "coverage"
    root = ET.parse(coverage / "coverage.xml").getroot()
    assert root.tag == "coverage" and float(root.get("line-rate")) > 0
    summary = (coverage / "work" / "reports" / "coverage.md").read_text()
    assert summary.strip() and summary.strip().splitlines()[0] in result.summaries["test-cov"]
