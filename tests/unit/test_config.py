"""Settings: YAML sections, the environment overlay, --set overrides, types and immutability."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Annotated

import pytest
import yaml
from pydantic import Field

from manymodels import config
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


def test_an_unknown_key_is_named_with_its_path_and_file(tmp_path):
    conf = write_config(tmp_path / "c", {"p.yaml": {"mock": {"regionz": 3}}})
    with pytest.raises(ConfigError, match=r"mock\.regionz: unknown key") as err:
        load_settings(conf)
    assert str(conf / "p.yaml") in str(err.value)
    assert "stores_per_region" in str(err.value)  # the known keys are listed


def test_an_unknown_nested_key_and_section_are_named(tmp_path):
    conf = write_config(tmp_path / "c", {"p.yaml": {"training": {"gate": {"max_mapee": 1}}}})
    with pytest.raises(ConfigError, match=r"training\.gate\.max_mapee: unknown key"):
        load_settings(conf)
    conf = write_config(tmp_path / "d", {"p.yaml": {"mocks": {"regions": 3}}})
    with pytest.raises(ConfigError, match="mocks: unknown key"):
        load_settings(conf)
    gate = {"training": {"gate": {"overrides": [{"key": "speed", "value": "slow", "kee": 1}]}}}
    conf = write_config(tmp_path / "e", {"p.yaml": gate})
    with pytest.raises(ConfigError) as err:
        load_settings(conf)
    assert (
        "training.gate.overrides[0].kee: unknown key; known: key, max_mape, "
        "max_rmse_zero_vs_baseline, max_wape, metric, min_improvement_vs_baseline, value"
    ) in str(err.value)


@pytest.mark.parametrize(
    ("section", "path", "value", "message"),
    [
        ({"mock": {"regions": "three"}}, "mock.regions", "'three'", "valid integer"),
        ({"mock": {"regions": 2.5}}, "mock.regions", "2.5", "valid integer"),
        ({"data": {"max_units": "lots"}}, "data.max_units", "'lots'", "valid number"),
        (
            {"training": {"fail_on_partition_error": "maybe"}},
            "training.fail_on_partition_error",
            "'maybe'",
            "valid boolean",
        ),
        ({"mock": {"start": "2017-13-01"}}, "mock.start", "'2017-13-01'", "valid date"),
        ({"mock": {"start": "next monday"}}, "mock.start", "next monday", "valid date"),
        ({"partition": {"keys": "region"}}, "partition.keys", "'region'", "valid tuple"),
        (
            {"training": {"features": {"lags": [1, "two"]}}},
            "training.features.lags[1]",
            "'two'",
            "valid integer",
        ),
        ({"project": {"workdir": {"a": 1}}}, "project.workdir", "{'a': 1}", "valid string"),
        ({"mock": 3}, "mock", "3", "dictionary or an instance of MockSettings"),
        ({"training": {"nn": {"epochs": -3}}}, "training.nn.epochs", "-3", "greater than or"),
        ({"training": {"split": {"test_weeks": 0}}}, "training.split.test_weeks", "0", "greater"),
        ({"training": {"gate": {"max_mape": "abc"}}}, "training.gate.max_mape", "abc", "number"),
        (
            {"training": {"gate": {"run_mode": "enabld"}}},
            "training.gate.run_mode",
            "'enabld'",
            "'enabled', 'dry_run' or 'disabled'",
        ),
        ({"training": {"nn": {"device": "gpu"}}}, "training.nn.device", "'gpu'", "pattern"),
        (
            {"training": {"ensemble": {"weighting": "best"}}},
            "training.ensemble.weighting",
            "'best'",
            "'nnls'",
        ),
        (
            {"training": {"gate": {"overrides": [{"key": "speed", "max_mape": "x"}]}}},
            "training.gate.overrides[0].max_mape",
            "'x'",
            "valid number",
        ),
        ({"scoring": {"workers": -1}}, "scoring.workers", "-1", "greater than or equal to 0"),
        ({"data": {"max_missing_week_share": 2}}, "data.max_missing_week_share", "2", "less"),
    ],
)
def test_a_wrong_or_out_of_range_value_names_its_path_and_file(
    tmp_path, section, path, value, message
):
    conf = write_config(tmp_path / "c", {"p.yaml": section})
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(conf)
    text = str(err.value)
    assert f"{conf / 'p.yaml'}: {path}: " in text
    assert value in text


def test_every_error_is_reported_at_once(tmp_path):
    conf = write_config(
        tmp_path / "c", {"p.yaml": {"mock": {"regions": 0, "seed": "x"}, "data": {"as_off": 1}}}
    )
    with pytest.raises(ConfigError) as err:
        load_settings(conf)
    text = str(err.value)
    assert "3 errors" in text
    for path in ("mock.regions", "mock.seed", "data.as_off"):
        assert f"{path}: " in text


def test_an_error_names_the_overlay_or_override_that_set_the_value(conf):
    overlay = "env: prod\nmock: {seed: -1}\ntraining: {nn: {epochs: 0}}\n"
    (conf / "env" / "prod.yaml").write_text(overlay)
    with pytest.raises(ConfigError) as err:
        load_settings(conf, "prod", ["training.nn.epochs=0"])
    text = str(err.value)
    assert f"{conf / 'env' / 'prod.yaml'}: mock.seed: " in text
    assert "--set training.nn.epochs=0: training.nn.epochs: " in text


@pytest.mark.parametrize(
    ("section", "got"),
    [
        ({"mock": {"regions": True}}, "got True"),
        ({"mock": {"regions": 3.0}}, "got 3.0"),
        ({"training": {"fail_on_partition_error": "yes"}}, "got 'yes'"),
        ({"training": {"fail_on_partition_error": 1}}, "got 1"),
    ],
)
def test_counts_and_flags_are_strict(tmp_path, section, got):
    conf = write_config(tmp_path / "c", {"p.yaml": section})
    with pytest.raises(ConfigError, match=got):
        load_settings(conf)


def test_values_are_converted_to_the_declared_type(tmp_path):
    conf = write_config(
        tmp_path / "c",
        {
            "p.yaml": {
                "mock": {"start": "2018-01-01"},
                "data": {"max_units": 5},
                "project": {"name": 7},
                "training": {"features": {"lags": [1, 2]}},
            }
        },
    )
    settings = load_settings(conf)
    assert settings.mock.start == dt.date(2018, 1, 1)
    assert type(settings.data.max_units) is float
    assert settings.project.name == "7"
    assert settings.training.features.lags == (1, 2)
    assert type(settings.training.gate) is type(Settings().training.gate)  # the dataclasses


def test_settings_stay_plain_dataclasses(settings):
    data = dataclasses.asdict(settings)
    assert data["training"]["gate"]["run_mode"] == "enabled"
    assert settings.training.gate.rules({"speed": "slow"}).metric == "wape"
    assert dataclasses.is_dataclass(settings.training.gate.overrides[0])


@dataclasses.dataclass(frozen=True)
class Extra:
    level: Annotated[int, Field(ge=1)] = 1


@dataclasses.dataclass(frozen=True)
class WithExtra(config.Settings):
    extra: Extra = dataclasses.field(default_factory=Extra)


def test_a_new_section_added_by_another_module_is_validated_too(monkeypatch, tmp_path):
    """Sections are plain frozen dataclasses: a new one needs no change to the engine."""
    monkeypatch.setattr(config, "Settings", WithExtra)
    conf = write_config(tmp_path / "c", {"p.yaml": {"extra": {"level": 2}}})
    assert load_settings(conf).extra.level == 2
    for bad, message in (({"level": 0}, "extra.level: "), ({"lvl": 2}, "extra.lvl: unknown")):
        conf = write_config(tmp_path / "c", {"p.yaml": {"extra": bad}})
        with pytest.raises(ConfigError, match=message):
            load_settings(conf)


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
        ("mock.seedz=3", r"--set mock.seedz=3: mock.seedz: unknown key"),
        ("mock.seed.x=3", "'seed' is not a section"),
        ("mock.seed=abc", r"--set mock.seed=abc: mock.seed: .*valid integer"),
        ("training.gate.run_mode=enabld", r"training\.gate\.run_mode: .*'dry_run'"),
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
    with pytest.raises(ConfigError, match=r"mock\.regions: .*'many'"):
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


def test_a_secret_in_a_bad_setting_is_not_repeated_in_the_error(conf):
    url = "postgresql://scorer:hunter2@db/wh"
    with pytest.raises(ConfigError) as err:
        load_settings(conf, overrides=[f"scoring.sql_urll={url}", "scoring.sql_table=[1]"])
    assert "hunter2" not in str(err.value)
    assert "scoring.sql_urll: unknown key" in str(err.value)


def test_an_unquoted_date_is_text_where_text_is_wanted_and_a_date_where_a_date_is(config_dir):
    settings = load_settings(config_dir, "dev", ["data.as_of=2026-10-05", "mock.start=2017-01-02"])
    assert settings.data.as_of == "2026-10-05"
    assert settings.mock.start == dt.date(2017, 1, 2)


def test_an_ensemble_override_may_name_its_own_weighting(conf):
    rule = "{key: speed, value: slow, members: [intermittent], weighting: wape}"
    ensemble = load_settings(
        conf, overrides=[f"training.ensemble.overrides=[{rule}, {{key: region, value: x}}]"]
    ).training.ensemble
    assert ensemble.weighting_for({"speed": "slow"}) == "wape"
    assert ensemble.weighting_for({"region": "x"}) == ensemble.weighting  # none named
    assert ensemble.weighting_for({"speed": "fast"}) == ensemble.weighting
    with pytest.raises(ConfigError, match="weighting"):
        load_settings(
            conf, overrides=["training.ensemble.overrides=[{key: speed, weighting: best}]"]
        )


def test_an_ensemble_override_may_match_several_keys_and_keep_the_default_members(conf):
    rules = (
        "[{key: speed, value: slow, where: {store_format: small}, members: [intermittent]},"
        " {key: speed, value: fast, where: {store_format: small}, weighting: wape},"
        " {key: speed, value: slow, members: [fourier, intermittent]}]"
    )
    ensemble = load_settings(
        conf, overrides=[f"training.ensemble.overrides={rules}"]
    ).training.ensemble
    small_slow = {"speed": "slow", "store_format": "small", "region": "x"}
    assert ensemble.members_for(small_slow) == ("intermittent",)
    assert ensemble.members_for({"speed": "slow", "store_format": "large"}) == (
        "fourier",
        "intermittent",
    )
    assert ensemble.members_for({"speed": "slow"}) == ("fourier", "intermittent")  # no format
    small_fast = {"speed": "fast", "store_format": "small"}
    assert ensemble.members_for(small_fast) == ensemble.members  # none named: the defaults
    assert ensemble.weighting_for(small_fast) == "wape"
    assert ensemble.weighting_for({"speed": "fast", "store_format": "large"}) == (
        ensemble.weighting
    )


def test_a_gate_override_may_match_several_keys(conf):
    rule = "{key: speed, value: slow, where: {store_format: small}, metric: wape, max_wape: 2.0}"
    gate = load_settings(conf, overrides=[f"training.gate.overrides=[{rule}]"]).training.gate
    assert gate.rules({"speed": "slow", "store_format": "small"}).max_error == 2.0
    assert gate.rules({"speed": "slow", "store_format": "large"}).max_error == gate.max_mape
    assert gate.bars({"speed": "slow", "store_format": "large"}) == (
        gate.max_mape,
        gate.min_improvement_vs_baseline,
    )
