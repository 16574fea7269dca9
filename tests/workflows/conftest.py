"""Fixtures for the workflow tests; the helpers themselves are in workflow_harness.py.

The executed tests keep their folders (snapshot, act's job workspaces, artifacts, MLflow servers)
under a folder of their own in the system temp dir, not in pytest's tmp_path: pytest keeps only
the three newest ``pytest-N`` folders per user, so another pytest session started during a
minutes-long workflow run would delete the run's workspace under its feet.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("executed_checks")  # its asserts explain themselves, as in a test

from workflow_harness import (  # noqa: E402
    TIMINGS,
    Act,
    act_binary,
    build_wheelhouse,
    snapshot_tree,
    wheelhouse_dir,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "workflows: runs GitHub workflow files with act (excluded from make test-cov)"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    if TIMINGS:  # the act runs of this test travel with its report (to the pytest-xdist controller)
        report.user_properties.append((TIMINGS_KEY, [list(t) for t in TIMINGS]))
        TIMINGS.clear()
    return report


FAILED = pytest.StashKey[bool]()
TIMINGS_KEY = "act_timings"  # tests/conftest.py reads them: the summary, WORKFLOW_TIMINGS_JSON


@pytest.fixture(scope="session")
def snapshot() -> Iterator[Path]:
    """The working tree as a job sees it, copied once per session (act copies from here)."""
    root = Path(tempfile.mkdtemp(prefix="manymodels-snapshot-"))
    try:
        yield snapshot_tree(root / "manymodels")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def installs(snapshot: Path) -> dict[str, str]:
    """The wheelhouse every job installs from (see build_wheelhouse), cached between sessions;
    built by one pytest-xdist worker while the others wait for it."""
    root = wheelhouse_dir(snapshot)
    root.parent.mkdir(parents=True, exist_ok=True)
    with Path(f"{root}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build_wheelhouse(snapshot, root)


@pytest.fixture
def act_tmp(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A private temp folder, removed after a passing test and kept (logs!) after a failing one."""
    root = Path(tempfile.mkdtemp(prefix=f"manymodels-act-{request.node.name[:40]}-"))
    yield root
    if request.node.stash.get(FAILED, True):
        request.node.add_report_section("teardown", "act", f"kept for inspection: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def act(snapshot: Path, act_tmp: Path, installs: dict[str, str]) -> Act:
    return Act(snapshot, act_tmp, act_binary(), installs)
