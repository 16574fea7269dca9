"""Step ``mock``: writes the raw files; bad sizes exit 2 and leave an earlier output alone."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import yaml

from manymodels.data.mock import RAW_FILES, generate
from manymodels.io import read_json
from manymodels.steps import mock

pytestmark = pytest.mark.usefixtures("in_tmp")

TINY = ["--regions", "1", "--stores-per-region", "2", "--products", "2", "--weeks", "3"]


def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_main_writes_every_raw_file_to_out(tmp_path, common_args, caplog):
    out = tmp_path / "raw"
    assert mock.main([*TINY, "--seed", "5", "--out", str(out), *common_args]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*RAW_FILES, mock.MARKER])
    expected = generate(regions=1, stores_per_region=2, products=2, weeks=3, seed=5)
    shipments = pd.read_csv(out / "shipments.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(shipments, expected.shipments.astype(str))
    pd.testing.assert_frame_equal(pd.read_csv(out / "stores.csv", dtype=str), expected.stores)
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "demographics.parquet"), expected.demographics
    )
    events = yaml.safe_load((out / "events.yaml").read_text())["events"]
    assert events == [dict(e, date=e["date"].isoformat()) for e in expected.events]
    assert read_json(out / mock.MARKER)["params"]["seed"] == 5  # condition knows it is mock data
    assert "mock: wrote 2 stores x 2 products, 3 weeks" in caplog.text


def test_main_defaults_to_the_workdir_and_the_mock_settings(workdir, common_args):
    args = [*common_args, "--set", "mock.products=3", "--set", "mock.weeks=2"]
    assert mock.main([*args, "--regions", "1", "--stores-per-region", "2"]) == 0
    raw = workdir / "raw"
    products = pd.read_csv(raw / "products.csv")
    assert list(products["product_id"]) == ["P001", "P002", "P003"]  # from --set
    assert len(pd.read_csv(raw / "stores.csv")) == 2  # the flag wins over the settings' 4
    shipments = pd.read_csv(raw / "shipments.csv", dtype=str)
    assert pd.to_datetime(shipments["Week Start"], format="mixed").nunique() == 2


def test_weeks_until_counts_complete_weeks_before_today():
    start = dt.date(2017, 1, 2)
    assert mock.weeks_until(start, dt.date(2017, 1, 16)) == 2  # two weeks ended on Sunday the 15th
    assert mock.weeks_until(start, dt.date(2017, 1, 15)) == 1  # the second week is not over
    assert mock.weeks_until(start, start) == 1  # never fewer than one week


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["--regions", "0"], "regions must be between 1 and 14"),
        (["--products", "1"], "products >= 2"),
        (["--start", "2017-01-03"], "start must be a Monday"),
    ],
)
def test_bad_parameters_exit_2_and_keep_the_output(tmp_path, common_args, caplog, bad, message):
    out = tmp_path / "raw"
    assert mock.main([*TINY, "--out", str(out), *common_args]) == 0
    before = snapshot(out)
    assert mock.main([*TINY, *bad, "--out", str(out), *common_args]) == 2
    assert message in caplog.text
    assert snapshot(out) == before


def test_an_unparsable_start_date_is_a_usage_error(tmp_path, common_args, capsys):
    with pytest.raises(SystemExit) as exc:
        mock.main(["--start", "02/01/2017", "--out", str(tmp_path / "raw"), *common_args])
    assert exc.value.code == 2
    assert "expected a date like" in capsys.readouterr().err
    assert not (tmp_path / "raw").exists()
