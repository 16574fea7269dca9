"""Step ``init``: turn this template into a new project, in place (run it once in a fresh fork).

Sets the project name (``project.name``, the MLflow experiment), the registered model prefix
(and, for Unity Catalog, its catalog and schema), every cloud resource name in
``.cloud/env/{dev,prod}.env`` and the Azure ML YAML that repeats them, and the README title.
``--data FILE`` installs your data contract as ``pipelines/data.yaml``; with ``--drop-mock`` the
CD targets stop falling back to mock data when no raw data is there. Every edit is logged;
``--dry-run`` only lists them. Running it again with other names re-applies them.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from manymodels.steps import guarded, setup_logging

__all__ = ["Names", "cloud_values", "main", "plan"]

log = logging.getLogger(__name__)
ENVS = ("dev", "prod")
# Azure: endpoint names are at most 32 characters (<name>-online-prod), workspaces 33
NAME = re.compile(r"[a-z][a-z0-9-]{1,18}[a-z0-9]")
PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")
MOCK_FALLBACK = re.compile(r"^\ttest -d \$\(WORKDIR\)/raw \|\| \$\(MM\) mock[^\n]*\n", re.M)


@dataclass(frozen=True)
class Names:
    project: str
    model_prefix: str
    title: str
    location: str = ""
    catalog: str = ""
    schema: str = ""

    def check(self) -> None:
        """Raises ValueError naming the value and the rule it breaks."""
        if not NAME.fullmatch(self.project):
            raise ValueError(
                f"--name {self.project!r}: use 3-20 lower-case letters, digits and '-', starting "
                "with a letter (it becomes Azure resource names such as <name>-online-prod)"
            )
        if not PREFIX.fullmatch(self.model_prefix):
            raise ValueError(
                f"--model-prefix {self.model_prefix!r}: letters, digits, '_' and '-' only, "
                "starting with a letter (no '.': names are <prefix>.<partition>)"
            )
        for flag, value in (("--catalog", self.catalog), ("--schema", self.schema)):
            if value and not IDENTIFIER.fullmatch(value):
                raise ValueError(f"{flag} {value!r}: a Unity Catalog identifier ([a-z0-9_])")


def cloud_values(names: Names, env: str, old: dict[str, str]) -> dict[str, str]:
    """The ``.cloud/env/<env>.env`` values for ``names`` (keys not named here are kept)."""
    p = names.project
    values = {
        "RESOURCE_GROUP": f"rg-{p}-{env}",
        "WORKSPACE": f"mlw-{p}-{env}",
        "ENVIRONMENT": p,
        "RAW_DATA": f"{p}-raw",
        "BATCH_ENDPOINT": f"{p}-batch-{env}",
        "ONLINE_ENDPOINT": f"{p}-online-{env}",
        "EXPERIMENT": p,
    }
    if names.location:
        values["LOCATION"] = names.location
    return {**old, **values}


def plan(root: Path, names: Names) -> dict[Path, str]:
    """``{file: new text}`` for every file ``init`` changes under ``root``; nothing is written."""
    names.check()
    edits: dict[Path, str] = {}
    project = root / "pipelines" / "project.yaml"
    text = project.read_text()
    text = _set_key(text, "project", "name", names.project)
    text = _set_key(text, "mlflow", "experiment", names.project)
    text = _set_key(text, "mlflow", "model_prefix", names.model_prefix)
    if names.catalog or names.schema:
        text = _set_key(text, "mlflow", "catalog", names.catalog, add=True)
        text = _set_key(text, "mlflow", "schema", names.schema, add=True)
    edits[project] = text
    env_files = {e: root / ".cloud" / "env" / f"{e}.env" for e in ENVS}
    if all(p.exists() for p in env_files.values()):
        old = {e: _read_env(p) for e, p in env_files.items()}
        new = {e: cloud_values(names, e, old[e]) for e in ENVS}
        for e, path in env_files.items():
            edits[path] = _write_env(path.read_text(), new[e])
        cloud = root / ".cloud" / "azureml"
        for path in sorted([*cloud.rglob("*.yml"), *cloud.rglob("*.yaml")]):
            changed = _rename_cloud(path.read_text(), old["dev"], new["dev"])
            if changed != path.read_text():
                edits[path] = changed
    readme = root / "README.md"
    if readme.exists():
        edits[readme] = re.sub(r"\A# [^\n]*", f"# {names.title}", readme.read_text(), count=1)
    return {p: t for p, t in edits.items() if t != p.read_text()}


def _set_key(text: str, section: str, key: str, value: str, *, add: bool = False) -> str:
    """Set ``section.key`` in a YAML file's text, keeping its comments and layout."""
    block = re.search(rf"(?ms)^{section}:[^\n]*\n(.*?)(?=^\S|\Z)", text)
    if block is None:
        raise ValueError(f"no top-level section {section!r} to set {key!r} in")
    body = block.group(1)
    value = value or '""'  # a bare `key:` would read as null, not as empty text
    line = re.compile(rf"(?m)^(  {key}:[ \t]*)([^\s#][^#\n]*?|\"\")([ \t]*(?:#[^\n]*)?)$")
    if line.search(body):
        body = line.sub(lambda m: f"{m.group(1)}{value}{m.group(3)}", body, count=1)
    elif add:
        body = f"  {key}: {value}\n{body}"
    else:
        raise ValueError(f"no key {section}.{key} to set")
    return text[: block.start(1)] + body + text[block.end(1) :]


def _read_env(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


def _write_env(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = re.sub(rf"(?m)^{key}=.*$", f"{key}={value}", text)
    return text


# the key that names a resource in each kind of file, and the .env value it takes
KEYED = {
    "workspace": ("name", "WORKSPACE"),
    "batchEndpoint": ("name", "BATCH_ENDPOINT"),
    "pipelineComponentBatchDeployment": ("endpoint_name", "BATCH_ENDPOINT"),
    "managedOnlineEndpoint": ("name", "ONLINE_ENDPOINT"),
    "managedOnlineDeployment": ("endpoint_name", "ONLINE_ENDPOINT"),
}


def _rename_cloud(text: str, old: dict[str, str], new: dict[str, str]) -> str:
    """Replace the old dev names in an Azure ML YAML file with the new ones."""
    schema = re.search(r"/([A-Za-z]+)\.schema\.json", text)
    if schema and schema.group(1) in KEYED:
        key, value = KEYED[schema.group(1)]
        text = re.sub(rf"(?m)^({key}:[ \t]*)[^\s#]+", rf"\g<1>{new[value]}", text, count=1)
    for key in ("WORKSPACE", "RAW_DATA", "BATCH_ENDPOINT", "ONLINE_ENDPOINT"):
        if key in old and key in new:
            text = re.sub(rf"(?<![\w.-]){re.escape(old[key])}(?![\w-])", new[key], text)
    env, exp = old.get("ENVIRONMENT"), old.get("EXPERIMENT")
    if env:  # a plain word like "manymodels": only where it names the environment
        text = re.sub(rf"(azureml:){re.escape(env)}(@)", rf"\g<1>{new['ENVIRONMENT']}\2", text)
        if "environment.schema.json" in text:
            text = re.sub(rf"(?m)^(name: ){re.escape(env)}\b", rf"\g<1>{new['ENVIRONMENT']}", text)
    if exp:
        text = re.sub(
            rf"(?m)^(experiment_name: ){re.escape(exp)}\b", rf"\g<1>{new['EXPERIMENT']}", text
        )
    return text


def _install_data(root: Path, data: Path, drop_mock: bool) -> dict[Path, str]:
    contract = yaml.safe_load(data.read_text())
    if not isinstance(contract, dict) or not contract.get("sources"):
        raise ValueError(f"--data {data}: not a data contract (a mapping with `sources:`)")
    edits = {root / "pipelines" / "data.yaml": data.read_text()}
    makefile = root / "Makefile"
    if drop_mock and makefile.exists():
        text = makefile.read_text()
        if not MOCK_FALLBACK.search(text):
            log.warning("init: no mock fallback found in the Makefile's CD targets; left as is")
        edits[makefile] = MOCK_FALLBACK.sub("", text)
    return edits


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="manymodels init", description=__doc__)
    parser.add_argument("--name", required=True, help="project name, e.g. acme-demand")
    parser.add_argument("--model-prefix", help="registered model prefix (default: the name)")
    parser.add_argument("--title", help="README title (default: the name)")
    parser.add_argument("--location", default="", help="Azure region, e.g. westeurope")
    parser.add_argument("--catalog", default="", help="Unity Catalog catalog for model names")
    parser.add_argument("--schema", default="", help="Unity Catalog schema for model names")
    parser.add_argument(
        "--data", type=Path, help="your data contract, installed as pipelines/data.yaml"
    )
    parser.add_argument("--drop-mock", action="store_true", help="CD never falls back to mock data")
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository to change")
    parser.add_argument("--dry-run", action="store_true", help="list the changes, write nothing")
    args = parser.parse_args(argv)
    setup_logging()
    if args.drop_mock and args.data is None:
        log.error("init: --drop-mock needs --data FILE: declare your real data first")
        return 2
    names = Names(
        project=args.name,
        model_prefix=args.model_prefix or args.name.replace("-", "_"),
        title=args.title or args.name,
        location=args.location,
        catalog=args.catalog,
        schema=args.schema,
    )
    root = args.root.resolve()
    if not (root / "pipelines" / "project.yaml").exists():
        log.error("init: %s has no pipelines/project.yaml: run it from the repository root", root)
        return 2
    try:
        edits = plan(root, names)
        if args.data is not None:
            edits |= _install_data(root, args.data, args.drop_mock)
    except ValueError as exc:
        log.error("init: %s", exc)
        return 2
    for path in sorted(edits):
        log.info(
            "init: %s %s", "would change" if args.dry_run else "changed", path.relative_to(root)
        )
    if not args.dry_run:
        for path, text in edits.items():
            tmp = path.with_name(f".{path.name}.init")
            tmp.write_text(text)
            if path.exists():
                shutil.copymode(path, tmp)
            tmp.replace(path)
    log.info(
        "init: %s -> model names %s.<partition>; next: declare your data, then `manymodels doctor`",
        names.project,
        names.model_prefix,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
