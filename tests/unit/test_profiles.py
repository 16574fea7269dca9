"""Settings profiles (``--profile FILE``): a YAML file of overrides applied before ``--set``."""

from __future__ import annotations

import pytest

from manymodels.config import ConfigError, load_settings
from manymodels.profiles import profile_overrides
from manymodels.steps import base_parser, settings_from

LEAN = "pipelines/profiles/lean.yaml"


def test_lean_profile_sets_every_key_it_names(config_dir):
    lean = load_settings(config_dir, "dev", profile_overrides(config_dir / "profiles/lean.yaml"))
    t = lean.training
    assert t.backtest.origins == 1 and t.refit is False and t.plots is False
    assert t.nn.epochs == 10 and t.block_size == 64
    assert t.ensemble.members_for({"speed": "fast"}) == ("level", "nn")
    defaults = load_settings(config_dir, "dev").training
    assert defaults.refit is True and defaults.backtest.origins == 2  # the defaults are intact


@pytest.mark.parametrize("store_format", ["large", "small"])
def test_lean_slow_movers_keep_the_defaults_members_and_weighting(config_dir, store_format):
    lean = load_settings(config_dir, "dev", profile_overrides(config_dir / "profiles/lean.yaml"))
    defaults = load_settings(config_dir, "dev")
    keys = {"speed": "slow", "store_format": store_format}
    for settings in (lean, defaults):  # slow movers are never weighed by MAPE
        assert "mape" not in settings.training.ensemble.weighting_for(keys)
    assert lean.training.ensemble.members_for(keys) == defaults.training.ensemble.members_for(keys)
    assert lean.training.ensemble.weighting_for(keys) == (
        defaults.training.ensemble.weighting_for(keys)
    )


def test_nested_keys_flatten_to_set_items(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("training:\n  nn: {epochs: 4}\n  ensemble:\n    members: [lasso, nn]\n")
    assert profile_overrides(path) == [
        "training.nn.epochs=4",
        'training.ensemble.members=["lasso", "nn"]',
    ]


def test_step_options_apply_the_profile_then_set(config_dir):
    args = base_parser("train", None).parse_args(
        ["--config-dir", str(config_dir), "--profile", str(config_dir / "profiles/lean.yaml"),
         "--set", "training.nn.epochs=7"]
    )  # fmt: skip
    settings = settings_from(args)
    assert settings.training.refit is False  # from the profile
    assert settings.training.nn.epochs == 7  # --set wins


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "does not exist"),
        ("- a list", "mapping"),
        ("a: [", "not valid YAML"),
        ("", "mapping"),
    ],
)
def test_a_bad_profile_is_an_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=rf"bad\.yaml.*{message}|{message}.*bad\.yaml"):
        profile_overrides(path)


def test_cli_run_reports_a_missing_profile(tmp_path, caplog):
    from manymodels.cli import main

    assert main(["run", "training", "--profile", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml does not exist" in caplog.text
