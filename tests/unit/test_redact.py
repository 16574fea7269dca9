"""Secrets out of URIs and messages: passwords, tokens in user info and query strings."""

from __future__ import annotations

import pytest

from manymodels.redact import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "postgresql+psycopg://scorer:s3cret@db:5432/wh",
            "postgresql+psycopg://scorer:***@db:5432/wh",
        ),
        ("https://ghp_abc123@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("https://user:p:a:ss@host/x", "https://user:***@host/x"),
        ("https://:only-password@host", "https://***@host"),
        (
            "http://mlflow:5000/?token=abc&experiment=1",
            "http://mlflow:5000/?token=***&experiment=1",
        ),
        (
            "https://acct.blob.core.windows.net/c?sv=2024&sig=Zm9v%2B&se=2026",
            "https://acct.blob.core.windows.net/c?sv=2024&sig=***&se=2026",
        ),
        ("mssql://h/db?Password=x;Encrypt=yes", "mssql://h/db?Password=***;Encrypt=yes"),
        ("host=db password=hunter2 dbname=x", "host=db password=*** dbname=x"),
        ("x?api_key=1&access_token=2&key=3", "x?api_key=***&access_token=***&key=***"),
        ("sqlite:////work/predictions.db", "sqlite:////work/predictions.db"),
        ("databricks://profile", "databricks://profile"),
        ("mail me: a@b.c", "mail me: a@b.c"),
        (
            "from sqlite:///a.db to http://u:p@h:1/?token=t",
            "from sqlite:///a.db to http://u:***@h:1/?token=***",
        ),
        (
            "override 'x' must look like section.key=value",
            "override 'x' must look like section.key=value",
        ),
        (None, ""),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected


def test_redacting_twice_changes_nothing():
    once = redact("http://u:p@h/?token=t")
    assert redact(once) == once
