"""Scoring writes to a real PostgreSQL warehouse: per-partition replace, and a clear, redacted
error for wrong credentials. A throwaway cluster on loopback; skipped where PostgreSQL is absent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa

from manymodels import localservers
from manymodels.scoring import WarehouseError, write_sql

pytest.importorskip("psycopg", reason="the PostgreSQL driver (psycopg) is not installed")
pytestmark = pytest.mark.slow

PASSWORD = "right-pw-1234"
DAY = dt.date(2024, 1, 1)


@pytest.fixture(scope="module")
def warehouse() -> Iterator[str]:
    """A PostgreSQL cluster with user ``scorer`` (password auth); yields its URL."""
    if missing := localservers.postgres_missing():
        pytest.skip(missing)
    with localservers.postgres("scorer", PASSWORD) as url:
        yield url


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
