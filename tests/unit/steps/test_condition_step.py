"""Step ``condition``: the table and its manifest; bad raw data exits 1 and keeps the old output;
where the data is (``--raw``, ``MANYMODELS_DATA_URI``, ``--mock``) and mock data refused with a
real MLflow store."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

from manymodels.data.condition import STANDARD_COLUMNS, data_version
from manymodels.data.mock import RAW_FILES
from manymodels.io import read_json
from manymodels.steps import condition
from manymodels.steps.condition import TABLE

pytestmark = pytest.mark.usefixtures("in_tmp")


def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def run(raw_dir, out, common_args, *extra: str) -> int:
    return condition.main(["--raw", str(raw_dir), "--out", str(out), *common_args, *extra])


def test_main_writes_the_table_and_its_manifest(raw_dir, tmp_path, common_args, caplog):
    out = tmp_path / "conditioned"
    assert run(raw_dir, out, common_args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["demand.parquet", "manifest.json"]
    table = pd.read_parquet(out / TABLE)
    assert tuple(table.columns[: len(STANDARD_COLUMNS)]) == STANDARD_COLUMNS
    manifest = read_json(out / "manifest.json")
    series = table.groupby(["store_id", "product_id"]).ngroups
    assert manifest["data_version"] == data_version(table)
    assert manifest["rows"] == len(table)
    assert manifest["history_rows"] == int(table["units"].notna().sum())
    assert manifest["future_rows"] == 4 * (
        series - manifest["conditioning"]["discontinued_series"]["count"]
    )
    assert (manifest["stores"], manifest["products"]) == (4, 6)
    assert manifest["first_week"] == "2017-01-02"
    assert manifest["last_actual_week"] == "2018-02-19"
    assert manifest["last_week"] == "2018-03-19"
    assert {"raw_shipment_rows", "duplicates_dropped", "zero_weeks_filled"} <= set(
        manifest["conditioning"]
    )
    assert manifest["mock"] is True  # the sample is mock data (its folder has the marker)
    assert manifest["covariates"]["tmax_f"] == "climatology"
    assert sorted(manifest["sources"]) == [
        "demographics", "events", "products", "returns", "sales", "stores", "weather",
    ]  # fmt: skip
    assert manifest["sources"]["sales"]["uri"] == str(raw_dir / "shipments.csv")
    assert sorted(manifest["raw_files"]) == sorted(RAW_FILES)
    assert all(re.fullmatch(r"[0-9a-f]{16}", h) for h in manifest["raw_files"].values())
    assert manifest["data_version"] in caplog.text


def test_the_data_version_depends_on_the_data_only(raw_dir, tmp_path, common_args):
    assert run(raw_dir, tmp_path / "a", common_args) == 0
    moved = shutil.copytree(raw_dir, tmp_path / "elsewhere")
    assert run(moved, tmp_path / "b", common_args) == 0
    assert run(raw_dir, tmp_path / "c", common_args, "--set", "data.horizon_weeks=2") == 0
    version = {name: read_json(tmp_path / name / "manifest.json")["data_version"] for name in "abc"}
    assert version["a"] == version["b"]
    assert version["a"] != version["c"]
    assert read_json(tmp_path / "c" / "manifest.json")["future_rows"] == 2 * 24


def test_main_defaults_to_the_workdir(raw_dir, workdir, common_args):
    shutil.copytree(raw_dir, workdir / "raw")
    assert condition.main(common_args) == 0
    assert (workdir / "conditioned" / TABLE).exists()
    assert (workdir / "conditioned" / "manifest.json").exists()


def test_a_missing_raw_folder_exits_1(tmp_path, common_args, caplog):
    assert run(tmp_path / "nowhere", tmp_path / "out", common_args) == 1
    assert "source 'sales': " in caplog.text
    assert "nowhere/shipments.csv does not exist" in caplog.text
    assert not (tmp_path / "out").exists()


def test_the_data_uri_variable_says_where_the_data_is(raw_dir, workdir, common_args, monkeypatch):
    monkeypatch.setenv(condition.DATA_URI_VAR, raw_dir.as_uri())
    assert condition.main(common_args) == 0
    manifest = read_json(workdir / "conditioned" / "manifest.json")
    assert manifest["data_uri"] == raw_dir.as_uri()
    assert manifest["sources"]["sales"]["uri"] == f"{raw_dir.as_uri()}/shipments.csv"


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_mock_data_on_request(workdir, common_args, monkeypatch, how):
    args = [*common_args, "--set", "mock.regions=1", "--set", "mock.weeks=30"]
    if how == "variable":
        monkeypatch.setenv(condition.DATA_URI_VAR, "mock")
    assert condition.main([*args, *(["--mock"] if how == "flag" else [])]) == 0
    assert (workdir / "raw" / condition.MOCK_MARKER).exists()
    assert read_json(workdir / "conditioned" / "manifest.json")["mock"] is True


@pytest.mark.parametrize("variable", ["MLFLOW_TRACKING_URI", "MANYMODELS_DEV_REGISTRY_URI"])
def test_mock_data_is_refused_with_a_real_registry(  # noqa: PLR0917
    raw_dir, workdir, common_args, monkeypatch, caplog, variable
):
    monkeypatch.setenv(variable, "http://mlflow.example.com")
    assert run(raw_dir, workdir / "conditioned", common_args) == 1
    assert "refusing to use mock data with the real MLflow store of env 'dev'" in caplog.text
    assert "set MANYMODELS_DATA_URI" in caplog.text
    assert not (workdir / "conditioned").exists()
    assert run(raw_dir, workdir / "conditioned", common_args, "--local") == 0  # embedded: fine
    consent = ["--set", "data.allow_mock=true"]
    assert run(raw_dir, workdir / "conditioned", [*common_args, *consent]) == 0  # said so: fine
    monkeypatch.setenv(condition.ALLOW_MOCK_VAR, "true")
    assert run(raw_dir, workdir / "conditioned", common_args) == 0
    monkeypatch.delenv(condition.ALLOW_MOCK_VAR)
    monkeypatch.setenv(variable, f"sqlite:///{workdir}/other.db")  # a local file: a sandbox
    assert run(raw_dir, workdir / "conditioned", common_args) == 0
    monkeypatch.setenv(variable, "http://127.0.0.1:5000")  # a throwaway server on loopback
    assert run(raw_dir, workdir / "conditioned", common_args) == 0
    monkeypatch.setenv(variable, "databricks")
    assert run(raw_dir, workdir / "conditioned", common_args) == 1
    (raw_dir / condition.MOCK_MARKER).unlink()  # real data: fine with the real store
    assert run(raw_dir, workdir / "conditioned", common_args) == 0


def test_bad_raw_data_exits_1_and_keeps_the_old_output(raw_dir, tmp_path, common_args, caplog):
    out = tmp_path / "conditioned"
    assert run(raw_dir, out, common_args) == 0
    before = snapshot(out)
    ship = pd.read_csv(raw_dir / "shipments.csv", dtype=str)
    ship.loc[3, "Units Shipped"] = "lots"
    ship.to_csv(raw_dir / "shipments.csv", index=False)
    assert run(raw_dir, out, common_args) == 1
    assert "shipments.csv): column 'Units Shipped' has values that are not numbers" in caplog.text
    assert "row 5: 'lots'" in caplog.text
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conditioned", "raw"]  # no temp left


@pytest.mark.parametrize("target", ["model-validation", "release-scoring"])
def test_the_cd_targets_never_make_mock_data_silently(config_dir, target):
    makefile = (config_dir.parent / "Makefile").read_text()
    recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1)
    assert "mock" not in recipe  # the data comes from MANYMODELS_DATA_URI
    assert "MANYMODELS_DATA_URI" in makefile


def _edit_shipments(raw_dir, change) -> None:
    path = raw_dir / "shipments.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(frame).to_csv(path, index=False)


BAD_INPUTS = {
    "a mapping naming a missing column": (
        lambda raw: _edit_shipments(raw, lambda f: f.drop(columns="SKU")),
        "column(s) ['SKU'] (mapped to ['product_id']) are not in the file",
    ),
    "unparseable dates": (
        lambda raw: _edit_shipments(raw, lambda f: f.assign(**{"Week Start": "soon"})),
        "column 'Week Start' has dates that match none of the date_formats",
    ),
    "a week anchor that does not match": (
        lambda raw: _edit_shipments(raw, lambda f: f.assign(**{"Week Start": "2017-01-04"})),
        "weekly dates must be the start of a week starting monday",
    ),
    "negative quantities": (
        lambda raw: _edit_shipments(raw, lambda f: f.assign(**{"Units Shipped": "-1"})),
        "column 'Units Shipped' has negative quantities",
    ),
    "the same key twice with different values": (
        lambda raw: _edit_shipments(
            raw, lambda f: pd.concat([f, f.iloc[[0]].assign(**{"Units Shipped": "77"})])
        ),
        "rows give the same store_id x product_id x date different values",
    ),
    "an unreachable uri": (
        lambda raw: (raw / "shipments.csv").unlink(),
        "shipments.csv does not exist",
    ),
}


@pytest.mark.parametrize("problem", sorted(BAD_INPUTS))
def test_bad_input_exits_1_names_the_source_and_writes_nothing(
    raw_dir, tmp_path, common_args, caplog, problem
):
    corrupt, message = BAD_INPUTS[problem]
    corrupt(raw_dir)
    out = tmp_path / "conditioned"
    assert run(raw_dir, out, common_args) == 1
    assert "source 'sales'" in caplog.text
    assert message in caplog.text
    assert "nothing written" in caplog.text
    assert not out.exists()


def test_products_are_compared_with_the_trained_membership(raw_dir, workdir, common_args, caplog):
    out = workdir / "conditioned"
    assert run(raw_dir, out, common_args) == 0
    assert read_json(out / "manifest.json")["against_training"] == {"compared": False}
    index = workdir / "partitions" / "index.json"
    index.parent.mkdir(parents=True)
    index.write_text(json.dumps({"membership": {"P001": "fast", "P002": "slow"}}))
    table = pd.read_parquet(out / TABLE)
    speed = table.groupby("product_id")["speed"].first()
    assert run(raw_dir, out, common_args) == 0
    report = read_json(out / "manifest.json")["against_training"]
    assert report["unseen_products"] == ["P003", "P004", "P005", "P006"]
    expected = {p: [old, speed[p]] for p, old in (("P001", "fast"), ("P002", "slow"))}
    assert report["class_changes"] == {p: v for p, v in expected.items() if v[0] != v[1]}
    assert "4 product(s) the trained models never saw" in caplog.text
