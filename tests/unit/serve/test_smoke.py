"""``make serve-smoke``: the smoke test starts the real server process, checks it and stops it."""

from __future__ import annotations

import logging

import pytest

from manymodels.serve import smoke


@pytest.mark.slow  # starts server processes (~5 s each)
def test_smoke_passes_against_the_registered_models(reg, caplog, config_dir):
    caplog.set_level(logging.INFO, "manymodels.serve.smoke")
    argv = ["--config-dir", str(config_dir), "--local", "--series", "2",
            "--set", f"project.workdir={reg.root / 'work'}",
            "--set", f"serving.snapshot={reg.snapshot}"]  # fmt: skip
    assert smoke.main(argv) == 0, caplog.text
    assert "answered every check" in caplog.text
    assert caplog.text.count(" -> demand.") == 2


@pytest.mark.slow
def test_smoke_fails_and_shows_the_server_log_when_the_registry_has_no_models(
    tmp_path, reg, caplog, config_dir
):
    caplog.set_level(logging.INFO, "manymodels.serve.smoke")
    argv = ["--config-dir", str(config_dir), "--local", "--ready-timeout", "60",
            "--set", f"project.workdir={tmp_path}",
            "--set", f"serving.snapshot={reg.snapshot}"]  # fmt: skip
    assert smoke.main(argv) == 1
    assert "FAILED: POST /v1/forecast: 404" in caplog.text
    assert "the server's log" in caplog.text


def test_smoke_without_a_snapshot_is_a_settings_error(tmp_path, caplog, config_dir):
    argv = ["--config-dir", str(config_dir), "--set", f"project.workdir={tmp_path}"]
    assert smoke.main(argv) == 2
    assert "run batch scoring" in caplog.text
