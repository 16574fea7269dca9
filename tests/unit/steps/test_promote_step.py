"""promote / rollback against real embedded MLflow stores, with tiny stand-in model folders.

No model is trained: a version is a run artifact folder registered like the real ones, which is
all the alias moves and the dev -> prod copy look at.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from manymodels import provenance, registry
from manymodels.config import load_settings
from manymodels.registry import CHALLENGER, CHAMPION, PREVIOUS
from manymodels.steps import promote, rollback

NAME = "demand.north.large.fast"
VARS = registry.STORE_VARIABLES


def _head() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for var in VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("GITHUB_SHA", _head())  # the release commit the provenance check uses


@pytest.fixture
def dev(settings):
    return registry.resolve_store(settings, "dev")


@pytest.fixture
def prod(settings):
    return registry.resolve_store(settings, "prod")


def add_version(store, tmp_path, name=NAME, **tags):
    """A registered version of ``name`` (a run with a one-file model folder)."""
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    with registry.pipeline_run(store, "manymodels", "stand-in", {}) as run:
        registry.log_artifact(store, run.info.run_id, folder / "MLmodel", "model")
    tags = {"git_sha": _head(), "partition": name.split(".", 1)[1]} | tags
    return registry.register(store, f"runs:/{run.info.run_id}/model", name, tags)


def version_of(store, alias, name=NAME):
    found = registry.get_alias(store, name, alias)
    return None if found is None else str(found.version)


def run(step, args, *extra):
    return step.main([*extra, *args])


def test_promote_moves_the_registrys_challenger_without_a_handoff_file(dev, tmp_path, common_args):
    v1 = add_version(dev, tmp_path)
    registry.set_alias(dev, NAME, CHALLENGER, v1.version)
    assert run(promote, common_args) == 0  # no runs/registration.json exists
    assert version_of(dev, CHAMPION) == "1" and version_of(dev, CHALLENGER) is None
    v2 = add_version(dev, tmp_path)
    registry.set_alias(dev, NAME, CHALLENGER, v2.version)
    assert run(promote, common_args) == 0
    assert (version_of(dev, CHAMPION), version_of(dev, PREVIOUS)) == ("2", "1")


def test_a_rolled_back_version_is_not_promoted_again(dev, tmp_path, common_args):
    for _ in range(2):
        version = add_version(dev, tmp_path)
        registry.set_alias(dev, NAME, CHALLENGER, version.version)
        assert run(promote, common_args) == 0
    assert run(rollback, common_args, "--partition", "north.large.fast") == 0
    assert version_of(dev, CHAMPION) == "1"
    bad = dev.client().get_model_version(NAME, "2")
    assert bad.tags[registry.ROLLED_BACK] == "true" and "rolled_back_at" in bad.tags
    registry.set_alias(dev, NAME, CHALLENGER, "2")  # e.g. left from before, or re-proposed
    assert run(promote, common_args) == 0
    assert version_of(dev, CHAMPION) == "1" and version_of(dev, CHALLENGER) is None
    report = json.loads((tmp_path / "work/runs/promotion-dev.json").read_text())
    assert report["promoted"]["north.large.fast"]["status"] == "refused: rolled back"
    # rolling back again restores v2 on purpose and lifts the mark
    assert run(rollback, common_args, "--partition", "north.large.fast") == 0
    assert version_of(dev, CHAMPION) == "2"
    assert registry.ROLLED_BACK not in dev.client().get_model_version(NAME, "2").tags


def test_dry_run_moves_no_alias(dev, tmp_path, common_args):
    add_version(dev, tmp_path)
    registry.set_alias(dev, NAME, CHALLENGER, "1")
    assert run(promote, common_args, "--set", "training.gate.run_mode=dry_run") == 0
    assert version_of(dev, CHAMPION) is None and version_of(dev, CHALLENGER) == "1"
    report = json.loads((tmp_path / "work/runs/promotion-dev.json").read_text())
    assert report["dry_run"] is True
    assert report["promoted"]["north.large.fast"]["status"] == "dry run: would promote"


def _champion_in_dev(dev, tmp_path, common_args, **tags):
    version = add_version(dev, tmp_path, **tags)
    registry.set_alias(dev, NAME, CHALLENGER, version.version)
    assert run(promote, common_args) == 0
    return version


def _prod_report(tmp_path):
    return json.loads((tmp_path / "work/runs/promotion-prod.json").read_text())["promoted"]


def test_prod_copy_happens_once_and_survives_a_prod_rollback(dev, prod, tmp_path, common_args):
    to_prod = ["--to", "prod", "--env", "prod"]
    _champion_in_dev(dev, tmp_path, common_args)
    assert run(promote, common_args, *to_prod) == 0
    assert version_of(prod, CHAMPION) == "1"
    assert run(promote, common_args, *to_prod) == 0  # nothing new: nothing copied
    assert _prod_report(tmp_path)[NAME]["status"] == "unchanged"
    _champion_in_dev(dev, tmp_path, common_args)  # dev v2
    assert run(promote, common_args, *to_prod) == 0
    assert version_of(prod, CHAMPION) == "2"
    assert run(rollback, common_args, "--env", "prod", "--partition", "north.large.fast") == 0
    assert version_of(prod, CHAMPION) == "1"
    # the weekly copy does not undo the rollback: dev's champion is still v2
    assert run(promote, common_args, *to_prod) == 0
    assert version_of(prod, CHAMPION) == "1"
    assert _prod_report(tmp_path)[NAME]["status"] == "refused: rolled back in prod"
    assert len(registry.find_versions(prod, partition="north.large.fast")) == 2


def test_a_copy_left_without_its_alias_is_reused_not_copied_again(dev, prod, tmp_path, settings):
    v1 = add_version(dev, tmp_path)
    registry.set_alias(dev, NAME, CHAMPION, v1.version)
    registry.copy_version(dev, prod, NAME, "1", "manymodels")  # a crash before the alias moved
    moved = promote.promote_prod(dev, prod, "demand", "manymodels")
    assert moved[NAME]["copied"] is False and moved[NAME]["status"] == "promoted"
    assert version_of(prod, CHAMPION) == "1"
    assert len(registry.find_versions(prod, partition="north.large.fast")) == 1


def test_prod_dry_run_copies_nothing(dev, prod, tmp_path, common_args):
    _champion_in_dev(dev, tmp_path, common_args)
    assert run(promote, common_args, "--to", "prod", "--env", "prod", "--dry-run") == 0
    assert version_of(prod, CHAMPION) is None
    assert _prod_report(tmp_path)[NAME]["status"] == "dry run: would copy"


def test_prod_refuses_the_same_store_as_source_and_target(
    tmp_path, common_args, monkeypatch, caplog
):
    shared = f"sqlite:///{tmp_path / 'one.db'}"
    monkeypatch.setenv("MANYMODELS_DEV_TRACKING_URI", shared)
    monkeypatch.setenv("MANYMODELS_PROD_TRACKING_URI", shared)
    assert run(promote, common_args, "--to", "prod", "--env", "prod") == 2
    assert "the dev and prod stores are the same" in caplog.text
    assert "MANYMODELS_DEV_TRACKING_URI" in caplog.text


def test_prod_server_without_a_dev_store_is_refused_not_copied_onto_itself(
    dev, tmp_path, common_args, monkeypatch, caplog
):
    _champion_in_dev(dev, tmp_path, common_args)
    prod_db = f"sqlite:///{tmp_path / 'prod-server.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", prod_db)  # the prod job's generic variable
    assert run(promote, common_args, "--to", "prod", "--env", "prod") == 2
    assert "set MANYMODELS_DEV_TRACKING_URI" in caplog.text
    monkeypatch.setenv("MANYMODELS_DEV_TRACKING_URI", dev.tracking_uri)
    assert run(promote, common_args, "--to", "prod", "--env", "prod") == 0
    target = registry.Store("prod", prod_db, prod_db)
    assert version_of(target, CHAMPION) == "1"
    assert target.client().get_model_version(NAME, "1").tags["source_env"] == "dev"


@pytest.mark.parametrize("case", [("unknown", "unknown commit"), ("f" * 40, "not in this clone")])
def test_prod_refuses_champions_of_code_the_release_lacks(
    settings, tmp_path, common_args, caplog, case
):
    sha, why = case
    dev, prod = (registry.resolve_store(settings, env) for env in ("dev", "prod"))
    _champion_in_dev(dev, tmp_path, common_args, git_sha=sha)
    assert run(promote, common_args, "--to", "prod", "--env", "prod") == 1
    assert why in caplog.text and "--allow-foreign-code" in caplog.text
    assert version_of(prod, CHAMPION) is None
    assert run(promote, common_args, "--to", "prod", "--env", "prod", "--allow-foreign-code") == 0
    assert version_of(prod, CHAMPION) == "1"


def test_ancestry_tells_a_release_ancestor_from_a_sibling_branch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def git(*args):
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    git("init", "-q", "-b", "main")
    git("commit", "-q", "--allow-empty", "-m", "base")
    base = git("rev-parse", "HEAD")
    git("checkout", "-q", "-b", "feature")
    git("commit", "-q", "--allow-empty", "-m", "feature only")
    feature = git("rev-parse", "HEAD")
    git("checkout", "-q", "main")
    git("commit", "-q", "--allow-empty", "-m", "release")
    release = git("rev-parse", "HEAD")
    assert provenance.ancestry(base, release) is None
    assert provenance.ancestry(release, release) is None
    assert "not in this release" in provenance.ancestry(feature, release)
    assert "not a commit sha" in provenance.ancestry("--output=x", release)


def test_settings_from_the_dev_overlay_still_name_the_dev_store(tmp_path, monkeypatch):
    settings = load_settings(
        "pipelines",
        "prod",
        [f"project.workdir={tmp_path}", "mlflow.dev.tracking_uri=http://dev:5000"],
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://prod:5000")

    class Args:
        config_dir, overrides, local = (
            "pipelines",
            [f"project.workdir={tmp_path}", "mlflow.dev.tracking_uri=http://dev:5000"],
            False,
        )

    source, target = promote.stores(settings, Args)
    assert (source.tracking_uri, target.tracking_uri) == ("http://dev:5000", "http://prod:5000")
