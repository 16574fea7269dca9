"""CI on a push to main, run with act: lint, tests, the mock end to end, then the package
(see test_workflows_executed.py)."""

from __future__ import annotations

import tarfile
import zipfile

import pytest
from executed_checks import (
    E2E_IN_PROCESS,
    QUICK_TEST_COV,
    _assert_coverage,
    _assert_e2e_reports,
    _files,
)
from workflow_harness import Act, require_targets

pytestmark = [pytest.mark.workflows, pytest.mark.slow]


def test_push_to_main_runs_ci_and_packages(act: Act):
    require_targets("ci")
    result = act.run("push", "ci", "push_main.json", env=QUICK_TEST_COV | E2E_IN_PROCESS,
                     label="CI (push to main)")  # fmt: skip
    result.assert_job("test-cov")
    _assert_coverage(result)
    result.assert_job("e2e")
    _assert_e2e_reports(result)
    result.assert_job("lint")
    result.assert_jobs(dict.fromkeys(["lint", "test-cov", "e2e", "package"], "success"))
    dist = _files(result.artifacts / "dist")
    wheels = [p for p in dist if p.suffix == ".whl"]
    assert len(wheels) == 1 and wheels[0].name.startswith("manymodels-")
    assert "manymodels/__init__.py" in zipfile.ZipFile(wheels[0]).namelist()
    bundled = []
    for path in dist:
        if path not in wheels and tarfile.is_tarfile(path):
            bundled += tarfile.open(path).getnames()
        elif path not in wheels and zipfile.is_zipfile(path):
            bundled += zipfile.ZipFile(path).namelist()
    assert any(name.endswith("training.yaml") for name in bundled), f"no pipeline bundle in {dist}"
