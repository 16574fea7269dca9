"""Reading declared sources: formats, locations (paths and fsspec URLs) and declaration errors."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
import yaml

from manymodels.config import CovariateSettings, SourceSettings
from manymodels.data.sources import (
    SourceError,
    covariate_modes,
    display_uri,
    read_sources,
    resolve_uri,
)

SALES = SourceSettings(
    name="sales",
    kind="sales",
    path="sales.csv",
    columns={"store_id": "s", "product_id": "p", "date": "d", "quantity": "q"},
)
ROWS = [
    {"s": "A", "p": "x", "d": "2024-01-01", "q": 3},
    {"s": "A", "p": "y", "d": "2024-01-01", "q": 4},
]  # noqa: E501


def write(folder, name: str, fmt: str) -> None:
    frame = pd.DataFrame(ROWS)
    path = folder / name
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "json":
        path.write_text(json.dumps({"rows": ROWS}))
    else:
        path.write_text(yaml.safe_dump({"rows": ROWS}))


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "json", "yaml"])
def test_every_format_reads_to_the_standard_names(tmp_path, fmt):
    write(tmp_path, f"sales.{fmt}", fmt)
    src = dataclasses.replace(SALES, path=f"sales.{fmt}", records="rows")
    loaded = read_sources((src,), str(tmp_path))["sales"]
    assert list(loaded.frame.columns) == ["store_id", "product_id", "date", "quantity"]
    assert loaded.frame["product_id"].tolist() == ["x", "y"]
    assert len(loaded.sha256) == 16


def test_a_file_url_and_an_absolute_path_work_whatever_the_root(tmp_path):
    write(tmp_path, "sales.csv", "csv")
    by_url = dataclasses.replace(SALES, path=(tmp_path / "sales.csv").as_uri())
    assert len(read_sources((by_url,), "s3://ignored")["sales"].frame) == 2
    absolute = dataclasses.replace(SALES, path=str(tmp_path / "sales.csv"))
    assert len(read_sources((absolute,), "")["sales"].frame) == 2
    assert resolve_uri("a/b.csv", "s3://bucket/raw/") == "s3://bucket/raw/a/b.csv"


def test_uris_are_shown_without_credentials():
    assert display_uri("abfs://user:secret@box/x.csv?sig=abc") == "abfs://box/x.csv"


def test_a_mapping_naming_a_missing_column(tmp_path):
    write(tmp_path, "sales.csv", "csv")
    src = dataclasses.replace(SALES, columns=SALES.columns | {"quantity": "Units"})
    with pytest.raises(
        SourceError, match=r"column\(s\) \['Units'\] \(mapped to \['quantity'\]\)"
    ) as err:  # noqa: E501
        read_sources((src,), str(tmp_path))
    assert str(err.value).startswith(f"source 'sales' ({tmp_path}/sales.csv)")
    assert "['s', 'p', 'd', 'q']" in str(err.value)


def test_a_covariate_naming_a_missing_column(tmp_path):
    write(tmp_path, "sales.csv", "csv")
    cov = SourceSettings(
        name="macro",
        path="sales.csv",
        columns={"store_id": "s"},
        covariates=(CovariateSettings(name="cpi", column="CPI"),),
    )
    with pytest.raises(SourceError, match=r"source 'macro'.*\['CPI'\] \(mapped to \['cpi'\]\)"):
        read_sources(
            (SALES.__class__(**{**SALES.__dict__, "path": "sales.csv"}), cov), str(tmp_path)
        )  # noqa: E501


def test_an_unreachable_uri_is_an_error_not_no_data(tmp_path):
    with pytest.raises(SourceError, match=r"source 'sales': .*nowhere/sales.csv does not exist"):
        read_sources((SALES,), str(tmp_path / "nowhere"))
    unknown = dataclasses.replace(SALES, path="nosuchproto://bucket/sales.csv")
    with pytest.raises(SourceError, match="source 'sales'"):
        read_sources((unknown,), "")


def test_a_cloud_url_without_its_extra_names_the_extra(tmp_path):
    src = dataclasses.replace(SALES, path="s3://bucket/sales.csv")
    try:
        import s3fs  # noqa: F401
    except ImportError:
        with pytest.raises(SourceError, match=r"pip install 'manymodels\[s3\]'"):
            read_sources((src,), "")
    else:  # pragma: no cover - only where the extra is installed
        pytest.skip("s3fs is installed here")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"kind": "returns"}, "exactly one source of kind 'sales'"),
        ({"kind": "weird"}, "unknown kind 'weird'"),
        ({"format": "xml"}, "unknown format 'xml'"),
        ({"path": "sales.xml"}, "cannot tell the format"),
        ({"columns": {"store_id": "s"}}, r"map the standard column\(s\) \['product_id'"),
        ({"columns": SALES.columns | {"colour": "c"}}, "not standard names"),
        ({"frequency": "monthly"}, "frequency must be weekly or daily"),
        ({"week_date": "middle"}, "week_date must be start or end"),
        ({"covariates": (CovariateSettings(name="t", unknown_as="guess"),)}, "unknown_as"),
        ({"covariates": (CovariateSettings(name="t", agg="median"),)}, "agg must be"),
        ({"covariates": (CovariateSettings(),)}, "needs a name"),
    ],
)
def test_a_misdeclared_source_is_named(tmp_path, change, problem):
    write(tmp_path, "sales.csv", "csv")
    with pytest.raises(SourceError, match=problem):
        read_sources((dataclasses.replace(SALES, **change),), str(tmp_path))


def test_no_sources_or_twice_the_same_name():
    with pytest.raises(SourceError, match="no sources declared"):
        read_sources((), "")
    with pytest.raises(SourceError, match="declared twice"):
        read_sources((SALES, SALES), "")


def test_covariate_modes_follow_the_declarations(settings):
    assert covariate_modes(settings.sources) == {
        "events": "known",
        "tmax_f": "climatology",
        "tmin_f": "climatology",
        "precip_in": "climatology",
        "median_income": "known",
        "household_size": "known",
        "share_age_65_plus": "known",
    }


def test_the_walmart_example_yaml_is_a_valid_contract(tmp_path, config_dir):
    import shutil

    from manymodels.config import load_settings

    config = shutil.copytree(config_dir, tmp_path / "pipelines")
    shutil.copy(config_dir.parent / "examples" / "walmart" / "data.yaml", config / "data.yaml")
    settings = load_settings(config, "dev")
    assert settings.data.week_starts == "saturday"
    assert [s.kind for s in settings.sources] == ["sales", "stores", "covariates"]
    assert covariate_modes(settings.sources)["temperature_f"] == "climatology"
    with pytest.raises(SourceError, match="walmart_sales_weekly.csv does not exist"):
        read_sources(settings.sources, str(tmp_path / "empty"))  # declarations pass first


@pytest.mark.parametrize(
    ("content", "records", "problem"),
    [
        ('{"rows": {"a": 1}}', "rows", "expected a list of rows under 'rows'"),
        ("[1, 2]", "", "expected a list of rows at the top level"),
        ("{not json", "", "not valid json"),
    ],
)
def test_a_json_source_that_is_not_a_list_of_rows(tmp_path, content, records, problem):
    (tmp_path / "sales.json").write_text(content)
    src = dataclasses.replace(SALES, path="sales.json", records=records)
    with pytest.raises(SourceError, match=problem):
        read_sources((src,), str(tmp_path))


def test_a_records_key_that_is_absent_means_no_rows(tmp_path):
    (tmp_path / "events.yaml").write_text("other: []\n")
    events = SourceSettings(name="events", kind="events", path="events.yaml", records="events",
                            columns={"date": "date"})  # fmt: skip
    write(tmp_path, "sales.csv", "csv")
    loaded = read_sources((SALES, events), str(tmp_path))
    assert loaded["events"].frame.empty
    assert list(loaded["events"].frame.columns) == ["date"]


def test_excel_needs_its_extra_or_reads(tmp_path):
    frame = pd.DataFrame(ROWS)
    src = dataclasses.replace(SALES, path="sales.xlsx")
    try:
        frame.to_excel(tmp_path / "sales.xlsx", index=False)
    except ImportError:
        import zipfile

        with zipfile.ZipFile(tmp_path / "sales.xlsx", "w") as book:  # looks like an xlsx
            book.writestr("xl/workbook.xml", "<workbook/>")
        with pytest.raises(SourceError, match="excel needs a package"):
            read_sources((src,), str(tmp_path))
        (tmp_path / "sales.xlsx").write_bytes(b"not a zip")
        with pytest.raises(SourceError, match="not valid excel"):
            read_sources((src,), str(tmp_path))
    else:  # pragma: no cover - where the [excel] extra is installed
        assert len(read_sources((src,), str(tmp_path))["sales"].frame) == 2
