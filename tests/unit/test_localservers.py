"""``manymodels.localservers``: free ports, finding PostgreSQL, and the server process' life
(started until ``/health`` answers, a clear error naming its log when it dies, stopped with its
workers). A stand-in process plays the server here; the real PostgreSQL and ``mlflow server``
are exercised by tests/integration (test_warehouse_postgres, test_cd_faults,
test_mlflow_scale_bench)."""

from __future__ import annotations

import os
import socket
import sys
import time

import pytest

from manymodels import localservers

# answers GET /health with 200 on the port given, and starts a child (a "worker") that lives as
# long as it does: stop() must end both
HEALTHY = """
import http.server, subprocess, sys, pathlib
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
pathlib.Path(sys.argv[2]).write_text(str(child.pid))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone but for its parent's wait
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_free_port_can_be_bound():
    port = localservers.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_postgres_bin_prefers_path_then_the_newest_debian_major(tmp_path, monkeypatch):
    for major in ("9", "15", "13"):
        (tmp_path / "pg" / major / "bin").mkdir(parents=True)
        (tmp_path / "pg" / major / "bin" / "initdb").write_text("")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert localservers.postgres_bin("initdb", tmp_path / "pg") == str(
        tmp_path / "pg" / "15" / "bin" / "initdb"
    )  # 15, not "9" (a string sort's newest)
    assert localservers.postgres_bin("pg_ctl", tmp_path / "pg") is None
    on_path = tmp_path / "bin" / "initdb"
    on_path.parent.mkdir()
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert localservers.postgres_bin("initdb", tmp_path / "pg") == str(on_path)


def test_postgres_without_postgresql_is_unavailable_with_what_to_install(monkeypatch):
    monkeypatch.setattr(localservers, "postgres_bin", lambda name, root=None: None)
    assert "make postgres" in localservers.postgres_missing()
    with pytest.raises(localservers.Unavailable, match="apt-get install -y postgresql"):
        with localservers.postgres():
            pass


def test_server_env_has_no_telemetry_no_job_runner_and_its_own_home(tmp_path):
    env = localservers.server_env(tmp_path, {"PATH": "/bin", "MLFLOW_DISABLE_TELEMETRY": "false"})
    assert env == {
        "PATH": "/bin",
        "HOME": str(tmp_path),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }


def test_mlflow_server_command_defaults_to_sqlite_in_its_folder(tmp_path):
    server = localservers.MlflowServer(tmp_path / "srv", workers=3)
    cmd = server.command()
    assert cmd[:4] == [sys.executable, "-m", "mlflow", "server"]
    assert cmd[cmd.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path / 'srv/mlflow.db'}"
    assert cmd[cmd.index("--workers") + 1] == "3"
    assert cmd[cmd.index("--port") + 1] == str(server.port)
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_a_server_that_dies_is_a_clear_error_naming_its_log(tmp_path, monkeypatch):
    server = localservers.MlflowServer(tmp_path)
    script = "import sys; print('bad backend store'); sys.exit(3)"
    monkeypatch.setattr(server, "command", lambda: [sys.executable, "-c", script])
    with pytest.raises(localservers.ServerError, match="did not start; see .*server.log"):
        server.start(timeout=60)
    assert server.proc.returncode == 3
    assert "bad backend store" in server.log.read_text()


def test_started_when_healthy_and_stopped_with_its_workers(tmp_path, monkeypatch):
    child = tmp_path / "child.pid"

    def stand_in(self):
        return [sys.executable, "-c", HEALTHY, str(self.port), str(child)]

    monkeypatch.setattr(localservers.MlflowServer, "command", stand_in)
    with localservers.mlflow_server(None, tmp_path / "a", timeout=60) as url:
        assert url.startswith("http://127.0.0.1:")
        worker = int(child.read_text())
        assert _alive(worker)
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)  # the whole process group went, not only the parent
    server = localservers.MlflowServer(tmp_path / "b")
    server.stop()  # never started: nothing to do
    assert server.start(timeout=60) == server.url
    server.stop(graceful=False)  # as a crash would
    assert server.proc.returncode == -9
    assert server.start(timeout=60) == server.url  # again, on the same port
    server.stop()
