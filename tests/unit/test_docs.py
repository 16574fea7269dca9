"""The docs stay true: every path the README's tree names exists, and each top-level folder has a
README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()


def tree_paths() -> list[str]:
    """Paths named in the README's annotated layout block, folders resolved from indentation."""
    block = README.split("## Repository layout", 1)[1].split("```", 2)[1]
    paths, parent = [], ""
    for line in block.splitlines():
        if not line.strip() or line.startswith(" " * 10):  # blank, or a wrapped description
            continue
        indent = len(line) - len(line.lstrip())
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        for name in (n.strip() for n in names.split(",")):
            path = name if indent == 0 else f"{parent}{name}"
            paths.append(path)
        if indent == 0 and names.endswith("/"):
            parent = names
    return paths


@pytest.mark.parametrize("path", tree_paths())
def test_every_path_in_the_readme_tree_exists(path):
    assert (ROOT / path).exists(), f"README.md names {path}, which does not exist"


def test_the_tree_is_not_trivially_empty():
    assert len(tree_paths()) > 25


@pytest.mark.parametrize(
    "folder", [".github", ".cloud", "code", "pipelines", "tests", "notebooks", "docs", "benchmarks"]
)
def test_each_top_level_folder_has_a_readme(folder):
    assert (ROOT / folder / "README.md").exists()


def test_readme_gives_the_two_setup_commands_and_ci_runs_the_test_one():
    assert "make demo" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_links_in_docs_point_at_existing_files():
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
