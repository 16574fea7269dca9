"""The git_sha lineage tag names the commit CD was told to deploy (MANYMODELS_GIT_SHA): after CI,
cd-model-validation checks out workflow_run.head_sha while GITHUB_SHA is main's newest commit."""

from __future__ import annotations

from manymodels import registry


def test_the_deployed_commit_wins_over_github_sha(monkeypatch):
    monkeypatch.setenv("GITHUB_SHA", "b" * 40)
    monkeypatch.setenv("MANYMODELS_GIT_SHA", "a" * 40)
    assert registry.git_tags()["git_sha"] == "a" * 40


def test_without_it_github_sha_is_used(monkeypatch):
    monkeypatch.delenv("MANYMODELS_GIT_SHA", raising=False)
    monkeypatch.setenv("GITHUB_SHA", "b" * 40)
    assert registry.git_tags()["git_sha"] == "b" * 40
