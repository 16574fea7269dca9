"""Scoring writes to a real PostgreSQL warehouse: per-partition replace, and a clear, redacted
error for wrong credentials. A throwaway cluster on loopback; skipped where PostgreSQL is absent.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from manymodels.scoring import WarehouseError, write_sql

pytest.importorskip("psycopg", reason="the PostgreSQL driver (psycopg) is not installed")
pytestmark = pytest.mark.slow

PASSWORD = "right-pw-1234"
DAY = dt.date(2024, 1, 1)


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(versions[-1]) if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def warehouse() -> Iterator[str]:
    """A PostgreSQL cluster with user ``scorer`` (password auth); yields its URL."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="manymodels-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser")
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    (root / "pw").write_text(PASSWORD)
    if as_user:
        shutil.chown(root / "pw", "postgres")
    data, port = root / "data", _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    run(initdb, "-D", str(data), "-U", "scorer", "-A", "scram-sha-256", f"--pwfile={root}/pw")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    run(pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql+psycopg://scorer:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _frame(partition: str, predictions: list[float]) -> pd.DataFrame:
    weeks = pd.date_range("2024-01-08", periods=len(predictions), freq="7D")
    return pd.DataFrame(
        {"scoring_date": str(DAY), "partition": partition, "week": weeks, "prediction": predictions}
    )


def test_rescoring_replaces_only_the_partitions_scored(warehouse):
    both = pd.concat([_frame("a", [1.0, 2.0]), _frame("b", [3.0])], ignore_index=True)
    assert write_sql(both, warehouse, "predictions", DAY) == 3
    assert write_sql(_frame("b", [9.0]), warehouse, "predictions", DAY, ["b"]) == 1
    with sa.create_engine(warehouse).connect() as conn:
        rows = conn.execute(
            sa.text('SELECT "partition", prediction FROM predictions ORDER BY 1, 2')
        ).fetchall()
    assert [tuple(r) for r in rows] == [("a", 1.0), ("a", 2.0), ("b", 9.0)]


def test_wrong_credentials_are_a_clear_redacted_error(warehouse):
    wrong = warehouse.replace(PASSWORD, "wrong-pw-5678")
    with pytest.raises(WarehouseError) as err:
        write_sql(_frame("a", [1.0]), wrong, "predictions", DAY)
    message = str(err.value)
    assert "cannot reach postgresql+psycopg://scorer:***@127.0.0.1" in message
    assert "password authentication failed" in message
    assert "wrong-pw-5678" not in message
