"""Step ``doctor``: what a fork still has to set up before its workflows leave the local stores.

The checklist comes from the workflow files themselves: each job's GitHub environment, the
``vars.*`` and ``secrets.*`` it reads, and, for jobs that log in to Azure with OIDC, the
federated credential subject ``repo:<owner>/<repo>:environment:<env>`` the Azure app must trust.
What is set is read from ``gh`` (repository and environment variables, secrets, environments)
and ``az`` (the app's federated credentials) when they are installed and logged in, or from the
process environment with ``--from-env`` (inside a workflow job, where variables are exported).
Anything it cannot see is "unknown", never "missing". Every item comes with the command that
creates it. Exit 0, or 1 with ``--strict`` when something is missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from manymodels.report import markdown_table
from manymodels.steps import guarded, setup_logging

__all__ = ["Item", "check", "main", "required"]

log = logging.getLogger(__name__)
REF = re.compile(r"\b(vars|secrets)\.([A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class Item:
    kind: str  # environment | variable | secret | federated credential
    name: str
    scope: str  # "repo" or a GitHub environment
    used_by: str
    status: str = "unknown"

    def fix(self, repo: str) -> str:
        env = "" if self.scope == "repo" else f" --env {self.scope}"
        if self.kind == "environment":
            return f"gh api -X PUT repos/{repo}/environments/{self.name}"
        if self.kind == "variable":
            return f"gh variable set {self.name}{env} --body <value>"
        if self.kind == "secret":
            return f"gh secret set {self.name}{env}"
        return (
            "az ad app federated-credential create --id $AZURE_CLIENT_ID --parameters "
            f'\'{{"name":"github-{self.scope}","issuer":'
            f'"https://token.actions.githubusercontent.com","subject":"{self.name}",'
            f'"audiences":["api://AzureADTokenExchange"]}}\''
        )


def required(workflows: Path, repo: str) -> list[Item]:
    """The environments, variables, secrets and OIDC subjects the workflow files rely on."""
    items: dict[tuple[str, str, str], Item] = {}

    def need(kind: str, name: str, scope: str, used_by: str) -> None:
        key = (kind, name, scope)
        if key in items:
            if used_by not in items[key].used_by.split(", "):
                items[key].used_by += f", {used_by}"
        else:
            items[key] = Item(kind, name, scope, used_by)

    for path in sorted(workflows.glob("*.y*ml")):
        spec = yaml.safe_load(path.read_text()) or {}
        for job_id, job in (spec.get("jobs") or {}).items():
            where = f"{path.name}:{job_id}"
            env = job.get("environment")
            env = env.get("name") if isinstance(env, dict) else env
            scope = env or "repo"
            if env:
                need("environment", env, "repo", where)
            for kind, name in REF.findall(yaml.safe_dump(job)):
                if name != "GITHUB_TOKEN":
                    need("variable" if kind == "vars" else "secret", name, scope, where)
            logs_in = any("azure/login" in str(s.get("uses", "")) for s in job.get("steps", []))
            if logs_in and env:
                subject = f"repo:{repo}:environment:{env}"
                need("federated credential", subject, env, where)
    return list(items.values())


def _run(*command: str) -> str | None:
    """stdout of a CLI call, or None when the tool is absent, not logged in or fails."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _gh_names(*args: str) -> set[str] | None:
    out = _run("gh", *args, "--json", "name")
    return None if out is None else {d["name"] for d in json.loads(out or "[]")}


def check(items: list[Item], repo: str, *, from_env: bool = False) -> list[Item]:
    """Fill in each item's status from ``gh``/``az`` (or the environment with ``from_env``)."""
    environments = None
    out = _run("gh", "api", f"repos/{repo}/environments", "--jq", "[.environments[].name]")
    if out is not None:
        environments = set(json.loads(out or "[]"))
    cache: dict[tuple[str, str], set[str] | None] = {}
    subjects = None
    client_id = os.environ.get("AZURE_CLIENT_ID", "")
    if client_id:
        out = _run("az", "ad", "app", "federated-credential", "list", "--id", client_id)
        subjects = None if out is None else {c.get("subject") for c in json.loads(out or "[]")}
    for item in items:
        found: set[str] | None
        if item.kind == "environment":
            found = environments
        elif item.kind == "federated credential":
            found = subjects
        elif from_env:
            found = set(os.environ)
        else:
            noun = "variable" if item.kind == "variable" else "secret"
            scopes = ["repo"] + ([] if item.scope == "repo" else [item.scope])
            found = set()
            for scope in scopes:
                key = (noun, scope)
                if key not in cache:
                    extra = () if scope == "repo" else ("--env", scope)
                    cache[key] = _gh_names(noun, "list", "--repo", repo, *extra)
                found = None if cache[key] is None or found is None else found | cache[key]
        if found is not None:
            item.status = "ok" if item.name in found else "missing"
    return items


def _repo(given: str) -> str:
    if given:
        return given
    if os.environ.get("GITHUB_REPOSITORY"):
        return os.environ["GITHUB_REPOSITORY"]
    url = _run("git", "remote", "get-url", "origin") or ""
    match = re.search(r"[:/]([^/:]+/[^/]+?)(?:\.git)?\s*$", url)
    return match.group(1) if match else "<owner>/<repo>"


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="manymodels doctor", description=__doc__)
    parser.add_argument("--repo", default="", help="owner/name (default: the origin remote)")
    parser.add_argument("--workflows", type=Path, default=Path(".github/workflows"))
    parser.add_argument("--from-env", action="store_true", help="variables from the environment")
    parser.add_argument("--strict", action="store_true", help="exit 1 when something is missing")
    args = parser.parse_args(argv)
    setup_logging()
    if not args.workflows.is_dir():
        log.error("doctor: no workflow folder %s: run it from the repository root", args.workflows)
        return 2
    repo = _repo(args.repo)
    items = check(required(args.workflows, repo), repo, from_env=args.from_env)
    rows = [
        {**vars(i), "fix": "" if i.status == "ok" else f"`{i.fix(repo)}`"}
        for i in sorted(items, key=lambda i: (i.kind, i.scope, i.name))
    ]
    columns = ["kind", "name", "scope", "status", "used_by", "fix"]
    log.info("## What %s needs for the cloud path\n\n%s", repo, markdown_table(rows, columns))
    counts = {s: sum(i.status == s for i in items) for s in ("ok", "missing", "unknown")}
    log.info(
        "doctor: %d ok, %d missing, %d unknown%s; without them the workflows use the local "
        "MLflow stores (docs/forking.md)",
        counts["ok"],
        counts["missing"],
        counts["unknown"],
        " (install and log in to gh / az, or pass --from-env, to check the unknown)"
        if counts["unknown"]
        else "",
    )
    return 1 if args.strict and counts["missing"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
