"""Faults in the middle of CD: a process SIGKILLed while it registers or promotes, and a real
MLflow server on loopback stopped mid-run. After a re-run every partition has exactly one valid
champion and no model has a duplicate version.

The killed processes are real ``manymodels`` processes: a small wrapper lets the N-th call of a
registry function finish, then SIGKILLs its own process (no clean-up code runs).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from manymodels import registry
from manymodels.config import load_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2018-02-26"
DIE_AFTER = """
import os, signal, sys
from manymodels import registry
from manymodels.cli import main
target, after = sys.argv[1], int(sys.argv[2])
real, done = getattr(registry, target), []
def dying(*args, **kwargs):
    result = real(*args, **kwargs)
    if target != "set_alias" or args[2] == registry.CHAMPION:
        done.append(1)
    if len(done) == after:
        os.kill(os.getpid(), signal.SIGKILL)
    return result
setattr(registry, target, dying)
raise SystemExit(main(sys.argv[3:]))
"""


def _killed(ws, function: str, after: int, *argv: str) -> int:
    """Run ``manymodels <argv>`` in a process that dies after the ``after``-th ``function``."""
    done = subprocess.run(
        [sys.executable, "-c", DIE_AFTER, function, str(after), *argv, *ws.args()],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return done.returncode


def _prepare(ws, *train: str) -> None:
    for step, more in (
        ("condition", ()),
        ("validate", ("--as-of", AS_OF)),
        ("partition", ()),
        ("train", train),
        ("evaluate", ()),
    ):
        assert ws.run(step, *more) == 0, step


def _assert_one_valid_champion_each(store, partitions) -> None:
    prefix = "demand"
    champions = registry.champions(store, prefix)
    assert sorted(champions) == sorted(f"{prefix}.{p}" for p in partitions)
    for name, champion in champions.items():
        versions = [v for v in registry.find_versions(store) if v.name == name]
        assert [str(v.version) for v in versions] == [str(champion.version)], name  # no duplicate
        assert registry.get_alias(store, name, registry.CHALLENGER) is None
        assert registry.load(store, name, alias=registry.CHAMPION).predict is not None


def test_sigkill_during_registration_and_promotion_then_rerun(workspace):
    settings = load_settings("pipelines", "dev", [f"project.workdir={workspace.work}"])
    dev, prod = (registry.resolve_store(settings, env) for env in ("dev", "prod"))
    _prepare(workspace)
    partitions = list(json.loads((workspace.work / "runs/training.json").read_text())["partitions"])
    assert _killed(workspace, "register", 3, "register") == -signal.SIGKILL
    assert len(registry.find_versions(dev)) == 3  # registered, never aliased
    # the whole pipeline again (a new training run of the same code, settings and data) ...
    _prepare(workspace)
    assert workspace.run("register") == 0
    assert len(registry.find_versions(dev)) == len(partitions)  # the 3 were reused
    # ... now killed while promoting, after 3 champions moved
    assert _killed(workspace, "set_alias", 3, "promote") == -signal.SIGKILL
    assert len(registry.champions(dev, "demand")) == 3
    assert workspace.run("promote") == 0
    _assert_one_valid_champion_each(dev, partitions)
    # the prod copy killed after 2 copies, then re-run
    prod_args = ("promote", "--to", "prod", "--env", "prod")
    assert _killed(workspace, "copy_version", 2, *prod_args) == -signal.SIGKILL
    assert len(registry.find_versions(prod)) == 2
    assert workspace.run(*prod_args) == 0
    _assert_one_valid_champion_each(prod, partitions)


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """A real ``mlflow server`` on loopback that can be stopped and started again."""

    def __init__(self, root: Path) -> None:
        self.root, self.port, self.proc = root, _free_port(), None
        root.mkdir(parents=True, exist_ok=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--workers", "1"]
        cmd += ["--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}"]
        cmd += ["--artifacts-destination", str(self.root / "artifacts")]
        env = os.environ | {"HOME": str(self.root), "MLFLOW_DISABLE_TELEMETRY": "true"}
        with (self.root / "server.log").open("a") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=self.root, stdout=log, stderr=log, env=env, start_new_session=True
            )
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return self.url
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start; see {self.root / 'server.log'}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # as a crash would
            self.proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path):
    server = MlflowServer(tmp_path / "server")
    yield server
    server.stop()


def test_a_stopped_mlflow_server_gives_a_clear_error_and_a_rerun_completes(
    workspace, server, monkeypatch, caplog
):
    monkeypatch.setenv("MANYMODELS_ALLOW_MOCK", "true")  # the sample is mock data
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    url = server.start()
    monkeypatch.setenv("MANYMODELS_DEV_TRACKING_URI", url)
    # condition refuses mock data with a real store: here the sample stands in for real data
    (workspace.work / "raw" / "MOCK_DATA.json").unlink()
    _prepare(workspace, "--sample", "2")  # 2 partitions: every HTTP upload costs
    server.stop()  # the server goes away between evaluate and register
    caplog.clear()
    assert workspace.run("register") == 3
    assert "MLflow registry error" in caplog.text and url in caplog.text
    assert "Traceback" not in caplog.text
    assert workspace.run("promote") == 3  # an outage is not "no challenger, nothing to do"
    server.start()
    assert workspace.run("register") == 0
    assert workspace.run("promote") == 0
    store = registry.Store("dev", url, url)
    partitions = json.loads((workspace.work / "runs/training.json").read_text())
    _assert_one_valid_champion_each(store, list(partitions["partitions"]))
