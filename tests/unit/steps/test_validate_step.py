"""Step ``validate``: the report, exit 1 on bad data, exit 2 on missing input."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from manymodels.steps import condition, validate
from manymodels.steps.condition import TABLE

pytestmark = pytest.mark.usefixtures("in_tmp")


@pytest.fixture
def conditioned(raw_dir, workdir, common_args):
    """``<workdir>/conditioned`` from the sample, as the condition step writes it."""
    out = workdir / "conditioned"
    assert condition.main(["--raw", str(raw_dir), "--out", str(out), *common_args]) == 0
    return out


@pytest.fixture
def args(common_args, as_of):
    return [*common_args, "--as-of", as_of.isoformat()]


def report(workdir) -> tuple[dict, str]:
    """The JSON and markdown reports the step wrote."""
    folder = workdir / "reports"
    data = json.loads((folder / "validation.json").read_text())
    return data, (folder / "validation.md").read_text()


def test_clean_data_passes_and_is_reported(conditioned, workdir, args, caplog):
    assert validate.main(args) == 0
    data, text = report(workdir)
    manifest = json.loads((conditioned / "manifest.json").read_text())
    assert data["findings"] == []
    summary = data["summary"]
    assert {k: summary[k] for k in ("file", "data_version", "rows", "weeks", "as_of")} == {
        "file": str(conditioned / TABLE),
        "data_version": manifest["data_version"],
        "rows": manifest["rows"],
        "weeks": "2017-01-02 .. 2018-02-19",
        "as_of": "2018-03-01",
    }
    assert summary["mock data"] is True
    assert "tmax_f (climatology)" in summary["covariates"]
    assert summary["new series"] == 0
    assert "**PASSED**: 0 finding(s)" in text
    assert "validate: passed" in caplog.text


def test_bad_data_exits_1_with_a_report_naming_the_problem(conditioned, workdir, args, caplog):
    table = pd.read_parquet(conditioned / TABLE)
    row = (table["store_id"] == "S0003") & (table["week"] == pd.Timestamp("2017-05-01"))
    table.loc[row & (table["product_id"] == "P005"), "tmax_f"] = 171.0
    table.to_parquet(conditioned / TABLE, index=False)
    assert validate.main(["--data", str(conditioned), *args]) == 1
    data, text = report(workdir)
    (finding,) = data["findings"]
    assert (finding["check"], finding["column"], finding["source"]) == (
        "range",
        "tmax_f",
        "source 'weather' (weather.csv)",
    )
    assert finding["rows"] == [
        {"store_id": "S0003", "product_id": "P005", "week": "2017-05-01", "tmax_f": "171.0"}
    ]
    assert "**FAILED**: 1 finding(s)" in text
    assert "'store_id': 'S0003'" in text
    assert "range in column 'tmax_f'" in caplog.text
    assert "validate: FAILED with 1 finding(s)" in caplog.text


def test_stale_data_fails_on_the_as_of_date(conditioned, workdir, common_args, caplog):
    assert validate.main([*common_args, "--as-of", "2019-01-01"]) == 1
    data, _ = report(workdir)
    assert [(f["check"], f["column"]) for f in data["findings"]] == [("freshness", "week")]
    assert data["summary"]["as_of"] == "2019-01-01"
    # a finding about the whole table has no example rows: the log line offers none
    (line,) = [r.getMessage() for r in caplog.records if "freshness" in r.getMessage()]
    assert line.endswith(
        "or pass --as-of (a historical export: set data.as_of to the Monday after it ends)"
    )


def test_a_missing_table_exits_2(tmp_path, workdir, args, caplog):
    assert validate.main(["--data", str(tmp_path / "nowhere"), *args]) == 2
    assert "run `manymodels condition` first" in caplog.text
    assert not (workdir / "reports").exists()


def test_a_missing_manifest_exits_2_naming_the_step(conditioned, workdir, args, caplog):
    (conditioned / "manifest.json").unlink()
    assert validate.main(args) == 2
    assert f"{conditioned / 'manifest.json'} does not exist" in caplog.text
    assert "run `manymodels condition` first" in caplog.text
    assert not (workdir / "reports").exists()


def test_a_failed_run_replaces_the_report_of_a_passed_one(conditioned, workdir, args):
    assert validate.main(args) == 0
    table = pd.read_parquet(conditioned / TABLE)
    table.drop(columns=["tmax_f"]).to_parquet(conditioned / TABLE, index=False)
    assert validate.main(args) == 1
    data, text = report(workdir)
    assert [(f["check"], f["column"]) for f in data["findings"]] == [("schema", "tmax_f")]
    assert "**FAILED**" in text
    assert sorted(p.name for p in (workdir / "reports").iterdir()) == [
        "validation.json",
        "validation.md",
    ]


def test_a_bad_as_of_date_is_a_usage_error(common_args, capsys):
    with pytest.raises(SystemExit) as exc:
        validate.main([*common_args, "--as-of", "01/03/2018"])
    assert exc.value.code == 2
    assert "expected a date like" in capsys.readouterr().err
