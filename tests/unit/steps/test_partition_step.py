"""Step ``partition``: one file per partition plus an index; the whole foundation chain."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from manymodels.data.partition import partition_id
from manymodels.steps import condition, mock, partition, validate
from manymodels.steps.condition import TABLE

pytestmark = pytest.mark.usefixtures("in_tmp")


@pytest.fixture
def conditioned(raw_dir, workdir, common_args):
    out = workdir / "conditioned"
    assert condition.main(["--raw", str(raw_dir), "--out", str(out), *common_args]) == 0
    return out


def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_main_writes_one_file_per_partition_and_an_index(conditioned, workdir, common_args):
    assert partition.main(common_args) == 0
    folder = workdir / "partitions"
    index = json.loads((folder / "index.json").read_text())
    manifest = json.loads((conditioned / "manifest.json").read_text())
    assert index["data_version"] == manifest["data_version"]
    assert index["keys"] == ["region", "store_format", "speed"]
    assert len(index["partitions"]) == 8
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted([*(f"{pid}.parquet" for pid in index["partitions"]), "index.json"])
    table = pd.read_parquet(conditioned / TABLE)
    total = 0
    for pid, entry in index["partitions"].items():
        frame = pd.read_parquet(folder / f"{pid}.parquet")
        keys = frame[index["keys"]].drop_duplicates()
        assert len(keys) == 1, pid  # one key combination per file
        assert entry["keys"] == keys.iloc[0].to_dict()
        assert pid == partition_id([entry["keys"][k] for k in index["keys"]])
        assert entry["rows"] == len(frame)
        assert entry["series"] == frame.groupby(["store_id", "product_id"]).ngroups
        assert entry["first_week"] == str(frame["week"].min().date())
        assert entry["last_week"] == manifest["last_week"]
        total += len(frame)
    assert total == len(table)


def test_the_keys_come_from_the_settings(conditioned, workdir, common_args):
    assert partition.main([*common_args, "--set", "partition.keys=[speed]"]) == 0
    index = json.loads((workdir / "partitions" / "index.json").read_text())
    assert sorted(index["partitions"]) == ["fast", "slow"]
    assert index["partitions"]["slow"]["keys"] == {"speed": "slow"}


def test_a_bad_key_exits_2_and_keeps_the_old_output(conditioned, workdir, common_args, caplog):
    assert partition.main(common_args) == 0
    before = snapshot(workdir / "partitions")
    assert partition.main([*common_args, "--set", "partition.keys=[region, size]"]) == 2
    assert "partition keys ['size'] are not columns of the table" in caplog.text
    assert snapshot(workdir / "partitions") == before


def test_empty_key_values_exit_2(conditioned, workdir, common_args, caplog):
    table = pd.read_parquet(conditioned / TABLE)
    table.loc[:4, "region"] = None
    table.to_parquet(conditioned / TABLE, index=False)
    assert partition.main(common_args) == 2
    assert "'region' is empty in 5 rows: run validate first" in caplog.text
    assert not (workdir / "partitions").exists()


def test_missing_input_exits_2(tmp_path, workdir, common_args, caplog):
    assert partition.main(["--data", str(tmp_path / "nowhere"), *common_args]) == 2
    assert "run `manymodels condition` first" in caplog.text
    assert not (workdir / "partitions").exists()


def test_a_missing_manifest_exits_2(conditioned, workdir, common_args, caplog):
    (conditioned / "manifest.json").unlink()
    assert partition.main(common_args) == 2
    assert "manifest.json does not exist: run `manymodels condition` first" in caplog.text
    assert not (workdir / "partitions").exists()


def test_summarise_describes_each_partition(table):
    parts = {"all": table}
    (entry,) = partition.summarise(parts, ("region",)).values()
    assert entry == {
        "keys": {"region": table["region"].iloc[0]},
        "rows": len(table),
        "series": 24,
        "first_week": "2017-01-02",
        "last_week": "2018-03-19",
    }


def test_mock_condition_validate_partition_chain_through_the_workdir(workdir, common_args):
    """The foundation end to end on defaults: each step reads what the previous one wrote."""
    small = ["--regions", "1", "--stores-per-region", "2", "--products", "4", "--weeks", "20"]
    assert mock.main([*small, "--seed", "11", *common_args]) == 0
    assert condition.main(common_args) == 0
    # the 20 weeks from 2017-01-02 end on Sunday 2017-05-21
    assert validate.main([*common_args, "--as-of", "2017-05-22"]) == 0
    assert partition.main(common_args) == 0
    index = json.loads((workdir / "partitions" / "index.json").read_text())
    manifest = json.loads((workdir / "conditioned" / "manifest.json").read_text())
    assert index["data_version"] == manifest["data_version"]
    assert manifest["last_actual_week"] == "2017-05-15"
    assert sorted(index["partitions"]) == [
        "north-texas.large.fast",
        "north-texas.large.slow",
        "north-texas.small.fast",
        "north-texas.small.slow",
    ]
    assert sorted(p.name for p in workdir.iterdir()) == [
        "conditioned",
        "partitions",
        "raw",
        "reports",
    ]


def test_the_index_stores_membership_and_reports_a_product_changing_class(
    conditioned, workdir, common_args, caplog
):
    assert partition.main(common_args) == 0
    index = json.loads((workdir / "partitions" / "index.json").read_text())
    table = pd.read_parquet(conditioned / TABLE)
    assert index["membership"] == table.groupby("product_id")["speed"].first().to_dict()
    assert index["membership_changes"] == {}
    assert index["sources"]["sales"]["sha256"]  # what train logs as MLflow dataset inputs
    # a new export in which P001 sells often enough to be fast
    flipped = table.assign(speed=table["speed"].mask(table["product_id"] == "P001", "other"))
    flipped.to_parquet(conditioned / TABLE, index=False)
    assert partition.main(common_args) == 0
    index = json.loads((workdir / "partitions" / "index.json").read_text())
    assert index["membership_changes"] == {
        "P001": [table.query("product_id == 'P001'")["speed"].iloc[0], "other"]
    }  # noqa: E501
    assert "product P001 changed class" in caplog.text


def test_membership_changes_compares_products_in_both():
    assert partition.membership_changes({"a": "slow", "b": "fast"}, {"a": "fast", "c": "slow"}) == {
        "a": ["slow", "fast"]
    }
