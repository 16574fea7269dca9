"""Settings: YAML sections, the environment overlay, --set overrides, types and immutability."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import yaml

from manymodels.config import ConfigError, Settings, load_settings


def write_config(folder: Path, files: dict[str, dict], env: dict[str, dict] | None = None) -> Path:
    """A config folder with ``files`` (name -> sections) and ``env/<name>.yaml`` overlays."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, sections in files.items():
        (folder / name).write_text(yaml.safe_dump(sections))
    for name, sections in (env or {}).items():
        (folder / "env").mkdir(exist_ok=True)
        (folder / "env" / f"{name}.yaml").write_text(yaml.safe_dump(sections))
    return folder


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    """A minimal config folder: one file with two sections, and a prod overlay."""
    return write_config(
        tmp_path / "pipelines",
        {"project.yaml": {"mock": {"regions": 3, "seed": 1}, "data": {"max_units": 500}}},
        env={"prod": {"env": "prod", "mock": {"seed": 99}}},
    )


def test_repository_defaults_load_with_their_types(config_dir):
    settings = load_settings(config_dir)
    assert settings.env == "dev"
    assert isinstance(settings.mock.start, dt.date)
    assert settings.mock.start.weekday() == 0
    assert isinstance(settings.data.earliest_week, dt.date)
    assert isinstance(settings.data.max_units, float)
    assert isinstance(settings.partition.keys, tuple)
    assert settings.partition.keys == ("region", "store_format", "speed")
    assert isinstance(settings.training.steps, tuple)
    assert settings.training.steps[:3] == ("condition", "validate", "partition")
    assert isinstance(settings.training.features.lags, tuple)
    assert load_settings(config_dir, "prod").env == "prod"


def test_sections_missing_from_the_files_take_the_dataclass_defaults(conf):
    settings = load_settings(conf)
    assert settings.mock.regions == 3
    assert settings.mock.products == Settings().mock.products
    assert settings.training == Settings().training


def test_a_section_defined_in_two_files_names_both(tmp_path):
    conf = write_config(
        tmp_path / "c", {"a.yaml": {"mock": {"seed": 1}}, "b.yaml": {"mock": {"seed": 2}}}
    )
    with pytest.raises(ConfigError, match="'mock'") as err:
        load_settings(conf)
    assert str(conf / "a.yaml") in str(err.value)
    assert str(conf / "b.yaml") in str(err.value)


def test_an_unknown_key_is_named(tmp_path):
    conf = write_config(tmp_path / "c", {"p.yaml": {"mock": {"regionz": 3}}})
    with pytest.raises(ConfigError, match=r"mock: unknown key\(s\) \['regionz'\]"):
        load_settings(conf)


def test_an_unknown_section_is_named(tmp_path):
    conf = write_config(tmp_path / "c", {"p.yaml": {"mocks": {"regions": 3}}})
    with pytest.raises(ConfigError, match="mocks"):
        load_settings(conf)


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        ({"mock": {"regions": "three"}}, "'three'", "expected a number"),
        ({"mock": {"regions": 2.5}}, "2.5", "expected a whole number"),
        ({"mock": {"regions": True}}, "True", "expected a number"),
        ({"data": {"max_units": "lots"}}, "'lots'", "expected a number"),
        ({"training": {"fail_on_partition_error": "yes"}}, "'yes'", "expected true or false"),
        ({"training": {"fail_on_partition_error": 1}}, "1", "expected true or false"),
        ({"mock": {"start": "2017-13-01"}}, "'2017-13-01'", "expected a date"),
        ({"mock": {"start": "next monday"}}, "next monday", "expected a date"),
        ({"partition": {"keys": "region"}}, "'region'", "expected a list"),
        ({"training": {"features": {"lags": [1, "two"]}}}, "'two'", "expected a number"),
        ({"project": {"workdir": {"a": 1}}}, "{'a': 1}", "expected text"),
        ({"mock": 3}, "3", "expected a mapping for MockSettings"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused(tmp_path, section, value, message):
    conf = write_config(tmp_path / "c", {"p.yaml": section})
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(conf)
    assert value in str(err.value)
    assert str(conf) in str(err.value)


def test_numbers_are_coerced_to_the_declared_type(tmp_path):
    conf = write_config(
        tmp_path / "c",
        {"p.yaml": {"mock": {"regions": 3.0}, "data": {"max_units": 5}, "project": {"name": 7}}},
    )
    settings = load_settings(conf)
    assert settings.mock.regions == 3
    assert type(settings.mock.regions) is int
    assert type(settings.data.max_units) is float
    assert settings.project.name == "7"


def test_the_env_overlay_overrides_the_base_files(conf):
    assert load_settings(conf, "dev").mock.seed == 1  # no dev overlay in this folder
    prod = load_settings(conf, "prod")
    assert prod.env == "prod"
    assert prod.mock.seed == 99
    assert prod.mock.regions == 3  # a deep merge: untouched keys stay


def test_overrides_parse_yaml_scalars_into_nested_keys(conf):
    settings = load_settings(
        conf,
        "prod",
        [
            "mock.seed=7",  # wins over the prod overlay
            "training.nn.epochs=3",
            "training.nn.learning_rate=0.5",
            "training.fail_on_partition_error=false",
            "mock.start=2018-01-01",
            "partition.keys=[region, speed]",
            "project.workdir=/tmp/somewhere else",
            "scoring.sql_url=",
            "data.max_units = 7",
        ],
    )
    assert settings.mock.seed == 7
    assert settings.training.nn.epochs == 3
    assert settings.training.nn.learning_rate == 0.5
    assert settings.training.fail_on_partition_error is False
    assert settings.mock.start == dt.date(2018, 1, 1)
    assert settings.partition.keys == ("region", "speed")
    assert settings.workdir == Path("/tmp/somewhere else")
    assert settings.scoring.sql_url == ""
    assert settings.data.max_units == 7.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("mock.seed", "must look like section.key=value"),
        ("mock.seedz=3", r"unknown key\(s\) \['seedz'\]"),
        ("mock.seed.x=3", "'seed' is not a section"),
        ("mock.seed=abc", "expected a number"),
        ("mock.seed=[1, 2", "not valid YAML"),
    ],
)
def test_a_bad_override_is_refused(conf, override, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(conf, overrides=[override])


def test_an_unknown_environment_is_refused(conf):
    with pytest.raises(ConfigError, match="unknown environment 'staging'"):
        load_settings(conf, "staging")


def test_an_empty_config_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no \\*.yaml settings"):
        load_settings(tmp_path / "empty")


@pytest.mark.parametrize(
    ("text", "message"), [("mock: [1, 2", "not valid YAML"), ("- a\n- b\n", "must be a mapping")]
)
def test_a_malformed_file_is_named(tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(tmp_path)
    assert str(tmp_path / "bad.yaml") in str(err.value)


def test_replace_returns_a_changed_copy(settings):
    changed = settings.replace({"training.nn.epochs": 2, "mock.start": "2018-01-01"})
    assert changed.training.nn.epochs == 2
    assert changed.mock.start == dt.date(2018, 1, 1)
    assert settings.training.nn.epochs != 2  # the original is unchanged
    assert changed.replace({}) == changed
    with pytest.raises(ConfigError, match="expected a number"):
        settings.replace({"mock.regions": "many"})
    with pytest.raises(ConfigError, match="nope"):
        settings.replace({"mock.nope": 1})


def test_settings_are_frozen(settings):
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.env = "prod"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.mock.regions = 1


def test_paths_are_below_the_workdir(settings, workdir):
    assert settings.workdir == workdir
    assert settings.path("reports", "validation.md") == workdir / "reports" / "validation.md"
