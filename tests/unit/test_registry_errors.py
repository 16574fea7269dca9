"""A registry that cannot answer is an error, never "no champion"; URIs in messages are redacted.

The failing registries are real HTTP servers on loopback: one that answers every request with a
given status (a proxy refusing, a server erroring) and a port nobody listens on (server down).
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import socket
import threading

import pytest

from manymodels import registry
from manymodels.cli import run_step
from manymodels.io import write_json
from manymodels.registry import RegistryError, Store

VARS = registry.STORE_VARIABLES


@pytest.fixture(autouse=True)
def _no_retries(monkeypatch):
    for var in VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


class _Answer(http.server.BaseHTTPRequestHandler):
    def _reply(self) -> None:
        status = int(self.path.split("/")[1])  # the URI's first segment is the status to send
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>go away</html>")

    do_GET = do_POST = do_PATCH = do_DELETE = _reply

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def failing_server():
    """``http://127.0.0.1:<port>/<status>`` answers every MLflow request with ``status``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _closed_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _store(uri: str) -> Store:
    return Store("dev", uri, uri)


@pytest.mark.parametrize("status", [401, 403, 404, 500, 503])
def test_an_http_error_is_a_registry_error_not_no_champion(failing_server, status):
    store = _store(f"http://user:s3cret@{failing_server}/{status}")
    with pytest.raises(RegistryError) as caught:
        registry.get_alias(store, "demand.a.b.c", registry.CHAMPION)
    message = str(caught.value)
    assert "looking up demand.a.b.c@champion" in message and "dev store" in message
    assert "s3cret" not in message and "user:***@" in message


def test_a_server_that_is_down_is_a_registry_error_everywhere():
    store = _store(f"http://127.0.0.1:{_closed_port()}/?token=abc123")
    for call in (
        lambda: registry.get_alias(store, "m", registry.CHAMPION),
        lambda: registry.champions(store, "demand"),
        lambda: registry.find_versions(store, partition="p"),
        lambda: registry.set_alias(store, "m", registry.CHAMPION, 1),
        lambda: registry.delete_alias(store, "m", registry.CHALLENGER),
        lambda: registry.tag_version(store, "m", 1, {"x": "y"}),
        lambda: registry.log_metrics(store, "run", {"a": 1.0}),
    ):
        with pytest.raises(RegistryError, match="server is up") as caught:
            call()
        assert "abc123" not in str(caught.value)


def test_missing_model_or_alias_is_none_on_sqlite(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = _store(uri)
    assert registry.get_alias(store, "demand.none", registry.CHAMPION) is None  # no model
    store.client().create_registered_model("demand.some")
    assert registry.get_alias(store, "demand.some", registry.CHAMPION) is None  # no alias
    registry.delete_alias(store, "demand.none", registry.CHAMPION)  # nothing to delete: fine
    registry.tag_version(store, "demand.some", 9, {"x": None})  # deleting nothing: fine


@pytest.mark.parametrize(
    ("uri", "redacted"),
    [
        ("https://user:secret@host/path", "https://user:***@host/path"),
        ("postgresql+psycopg://me:pw@db:5432/x", "postgresql+psycopg://me:***@db:5432/x"),
        ("https://host/p?token=abc&x=1", "https://host/p?token=***&x=1"),
        ("https://acct.blob/c?sv=1&sig=ABC%3D", "https://acct.blob/c?sv=1&sig=***"),
        ("databricks://profile", "databricks://profile"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("see http://u:p@h/a?access_token=t for", "see http://u:***@h/a?access_token=*** for"),
    ],
)
def test_redact_uri(uri, redacted):
    assert registry.redact_uri(uri) == redacted


def test_steps_turn_a_registry_outage_into_exit_3_and_a_readable_message(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("MANYMODELS_DEV_TRACKING_URI", f"http://me:pw@127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("MANYMODELS_PROD_TRACKING_URI", f"sqlite:///{tmp_path / 'prod.db'}")
    code = run_step(
        "promote", ["--to", "prod", "--env", "prod", "--set", f"project.workdir={tmp_path}"]
    )
    assert code == 3
    text = caplog.text
    assert "MLflow registry error" in text and "Traceback" not in text
    assert "pw@" not in text and ":pw" not in text


def test_evaluate_and_score_stop_on_an_outage_instead_of_finding_no_champion(
    tmp_path, monkeypatch, caplog, sample_raw
):
    down = f"http://127.0.0.1:{_closed_port()}"
    work = tmp_path / "work"
    args = ["--set", f"project.workdir={work}"]
    shutil.copytree(sample_raw, work / "raw")
    assert run_step("condition", args) == 0
    monkeypatch.setenv("MANYMODELS_PROD_TRACKING_URI", down)
    assert run_step("score", ["--env", "prod", "--as-of", "2018-02-26", *args]) == 3
    assert not (work / "predictions").exists()  # nothing scored or written as "no model"
    monkeypatch.setenv("MANYMODELS_DEV_TRACKING_URI", down)
    partition = {"status": "trained", "keys": {}, "metrics": {}, "test_weeks": []}
    training = {"parent_run_id": "r", "local": False, "data_version": "d"}
    write_json(training | {"partitions": {"a.b.c": partition}}, work / "runs" / "training.json")
    caplog.clear()
    assert run_step("evaluate", args) == 3
    assert "searching models demand.* for champion" in caplog.text  # one search, not per model
    assert not (work / "reports" / "gate.json").exists()  # no gate without the champion
