"""Provenance: was a model trained by code this checkout (the release) contains?

``promote --to prod`` asks it of every dev champion it is about to copy: the champion's
``git_sha`` tag must be the release commit or one of its ancestors (``git merge-base
--is-ancestor``). See docs/runbook.md for what an operator sees.
"""

from __future__ import annotations

import contextlib
import re
import subprocess

__all__ = ["ancestry", "foreign_code"]

_SHA = re.compile(r"[0-9a-f]{7,64}")


def foreign_code(promoted: dict, release: str) -> dict[str, str]:
    """``{model: why}`` for each champion about to change whose ``git_sha`` is not ``release``
    or one of its ancestors (also when it cannot be told: unknown sha, commit not in the clone)."""
    verdicts: dict[str, str | None] = {}
    problems = {}
    for name, entry in promoted.items():
        sha = entry["git_sha"]
        if not entry["status"].endswith("copy"):
            continue
        if sha not in verdicts:
            verdicts[sha] = ancestry(sha, release)
        if verdicts[sha]:
            problems[name] = f"git_sha {sha[:12]}: {verdicts[sha]}"
    return problems


def ancestry(sha: str, release: str) -> str | None:
    """None when commit ``sha`` is ``release`` or an ancestor of it, else why not."""
    if "unknown" in (sha, release):
        return "unknown commit (trained outside a git checkout?): cannot be verified"
    if sha == release:
        return None
    if not all(_SHA.fullmatch(s) for s in (sha, release)):  # a tag is no place for git options
        return "not a commit sha: cannot be verified"
    done = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "merge-base", "--is-ancestor", sha, release],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    if done is not None and done.returncode == 0:
        return None
    if done is not None and done.returncode == 1:
        return f"not in this release ({release[:12]}): trained by code the release lacks"
    return "commit not in this clone (shallow checkout? fetch-depth: 0): cannot be verified"
