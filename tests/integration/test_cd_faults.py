"""Faults in the middle of CD: a process SIGKILLed while it registers or promotes, and a real
MLflow server on loopback stopped between steps or lost in the middle of a request. After a
re-run every partition has exactly one valid champion and no model has a duplicate version.

The killed processes are real ``manymodels`` processes: a small wrapper lets the N-th call of a
registry function finish, then SIGKILLs its own process (no clean-up code runs).
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import mlflow_schema
from manymodels import localservers, registry
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
        env=mlflow_schema.child_env(),  # a store it creates copies the migrated schema
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


def test_sigkill_during_registration_and_promotion_then_rerun(evaluated_copy):
    workspace = evaluated_copy  # what _prepare(workspace) leaves: trained and gated, a copy
    settings = load_settings("pipelines", "dev", [f"project.workdir={workspace.work}"])
    dev, prod = (registry.resolve_store(settings, env) for env in ("dev", "prod"))
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


@pytest.fixture
def server(tmp_path):
    """A real ``mlflow server`` on sqlite; ``stop(graceful=False)`` kills it as a crash would."""
    server = localservers.MlflowServer(tmp_path / "server")
    mlflow_schema.precreate(Path(server.backend_uri.removeprefix("sqlite:///")))  # no migrating
    yield server
    server.stop(graceful=False)


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
    server.stop(graceful=False)  # the server dies between evaluate and register
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


class DroppingProxy:
    """A TCP proxy in front of the server that, for a chosen request, forwards it, waits for
    the server's whole answer (the work is done) and then resets the client's connection: the
    server dies mid-request as far as the client can tell."""

    def __init__(self, upstream: int) -> None:
        self.upstream, self.rules, self.dropped = upstream, [], []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def drop(self, method: str, path: str) -> None:
        """Lose the answer of the next ``method`` request whose path contains ``path``."""
        self.rules.append((method, path))

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.closing(conn):
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, body = data.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = [h for h in lines[1:] if not h.lower().startswith("connection:")]
            length = next(
                (
                    int(h.split(":", 1)[1])
                    for h in headers
                    if h.lower().startswith("content-length:")
                ),
                0,
            )
            chunked = any(h.lower().startswith("transfer-encoding:") for h in headers)
            while (len(body) < length) or (chunked and not body.endswith(b"0\r\n\r\n")):
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
            request = "\r\n".join([lines[0], *headers, "Connection: close", "", ""]).encode()
            with socket.create_connection(("127.0.0.1", self.upstream)) as up:
                up.sendall(request + body)
                answer = b""
                while chunk := up.recv(65536):
                    answer += chunk
            rule = next((r for r in self.rules if r[0] == method and r[1] in path), None)
            if rule is not None:
                self.rules.remove(rule)
                self.dropped.append(f"{method} {path}")
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return  # closed with a reset, the answer never sent
            conn.sendall(answer)


def test_a_server_lost_mid_request_is_a_clear_error_and_a_rerun_completes(
    workspace, server, monkeypatch, caplog
):
    """Registration, promotion and the champion look-up each lose a request in flight (the
    server did the work, the answer never came): the step exits 3 with a redacted RegistryError,
    never reads it as "no champion", and re-runs complete with one champion per partition and no
    duplicate version."""
    monkeypatch.setenv("MANYMODELS_ALLOW_MOCK", "true")  # the sample is mock data
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    url = server.start()
    proxy = DroppingProxy(server.port)
    monkeypatch.setenv("MANYMODELS_DEV_TRACKING_URI", f"http://ci:s3cret-pw@127.0.0.1:{proxy.port}")
    (workspace.work / "raw" / "MOCK_DATA.json").unlink()
    _prepare(workspace, "--sample", "2")
    store = registry.Store("dev", url, url)  # straight to the server, no proxy
    partitions = list(json.loads((workspace.work / "runs/training.json").read_text())["partitions"])

    def failed_clearly(step: str) -> None:
        caplog.clear()
        assert workspace.run(step) == 3, step
        assert "MLflow registry error" in caplog.text, step
        assert "s3cret-pw" not in caplog.text and "Traceback" not in caplog.text, step

    proxy.drop("POST", "/model-versions/create")
    failed_clearly("register")
    assert len(registry.find_versions(store)) == 1  # made by the server, its answer lost
    assert workspace.run("register") == 0  # reuses it: no duplicate
    assert len(registry.find_versions(store)) == len(partitions)
    proxy.drop("POST", "/registered-models/alias")  # the first champion move
    failed_clearly("promote")
    assert workspace.run("promote") == 0
    _assert_one_valid_champion_each(store, partitions)
    gate = (workspace.work / "reports" / "gate.json").read_bytes()
    proxy.drop("GET", "/registered-models/search")  # evaluate's champion look-up (one search)
    failed_clearly("evaluate")  # not "no champion: promote without comparing"
    assert (workspace.work / "reports" / "gate.json").read_bytes() == gate  # nothing half-made
    assert len(proxy.dropped) == 3
    _assert_one_valid_champion_each(store, partitions)
