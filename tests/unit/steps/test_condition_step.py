"""Step ``condition``: the table and its manifest; bad raw data exits 2 and keeps the old output."""

from __future__ import annotations

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
    assert tuple(table.columns) == STANDARD_COLUMNS
    manifest = read_json(out / "manifest.json")
    series = table.groupby(["store_id", "product_id"]).ngroups
    assert manifest["data_version"] == data_version(table)
    assert manifest["rows"] == len(table)
    assert manifest["history_rows"] == int(table["units"].notna().sum())
    assert manifest["future_rows"] == 4 * series
    assert (manifest["stores"], manifest["products"]) == (4, 6)
    assert manifest["first_week"] == "2017-01-02"
    assert manifest["last_actual_week"] == "2018-02-19"
    assert manifest["last_week"] == "2018-03-19"
    assert set(manifest["conditioning"]) == {
        "raw_shipment_rows",
        "duplicates_dropped",
        "zero_weeks_filled",
    }
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


def test_a_missing_raw_folder_exits_2(tmp_path, common_args, caplog):
    assert run(tmp_path / "nowhere", tmp_path / "out", common_args) == 2
    assert "lacks shipments.csv" in caplog.text
    assert not (tmp_path / "out").exists()


def test_bad_raw_data_exits_2_and_keeps_the_old_output(raw_dir, tmp_path, common_args, caplog):
    out = tmp_path / "conditioned"
    assert run(raw_dir, out, common_args) == 0
    before = snapshot(out)
    ship = pd.read_csv(raw_dir / "shipments.csv", dtype=str)
    ship.loc[3, "Units Shipped"] = "lots"
    ship.to_csv(raw_dir / "shipments.csv", index=False)
    assert run(raw_dir, out, common_args) == 2
    assert "shipments.csv: column 'Units Shipped' has non-numeric quantities" in caplog.text
    assert "row 5: 'lots'" in caplog.text
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conditioned", "raw"]  # no temp left
