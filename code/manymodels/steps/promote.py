"""Step ``promote``: move ``champion`` to the new versions, in dev or from dev into prod.

``manymodels promote`` (dev): every version the dev registry aliases ``challenger`` becomes
``champion``; the version it replaces keeps the alias ``previous`` (``manymodels rollback``
swaps them back). Where the register step's hand-off (``runs/registration.json``) is there, only
the models it registered are looked at (their aliases searched by name: the cost follows the
partitions retrained, not the size of the registry); without it, or with ``--all``, every model
of the registry is listed (a page per 1,000 models). A challenger that was rolled back (tag
``rolled_back=true``) is not promoted again. With ``training.gate.run_mode: dry_run`` (or
``--dry-run``) it reports and moves nothing.

``manymodels promote --to prod``: each dev ``champion`` is copied into the prod registry (its
artifacts, tags and lineage: source registry, version, run, git sha, data version) and becomes
``champion`` there. A version already copied is not copied again; one rolled back in prod is not
re-copied. It refuses when the dev and prod stores are the same, when prod is a server but no
dev store is configured (``MANYMODELS_DEV_TRACKING_URI``), and when a champion was trained by
code this checkout does not contain (``--allow-foreign-code`` overrides). Nothing trains in prod.

Per partition, ``previous`` is set before ``champion`` moves, so a crash half-way leaves every
partition with a valid champion: the old one, or the new one.
"""

from __future__ import annotations

import logging

from mlflow.entities.model_registry import ModelVersion

from manymodels import registry
from manymodels.config import ConfigError, Settings, load_settings
from manymodels.io import read_json, write_json
from manymodels.provenance import foreign_code
from manymodels.registry import CHALLENGER, CHAMPION, PREVIOUS, ROLLED_BACK, Store
from manymodels.steps import base_parser, guarded, settings_from, setup_logging

__all__ = [
    "known_names",
    "main",
    "move_champion",
    "promote_dev",
    "promote_prod",
    "registered_names",
    "stores",
]

log = logging.getLogger(__name__)


def move_champion(
    store: Store, name: str, version: str, current: ModelVersion | str | None
) -> bool:
    """Make ``version`` the champion of ``name``, the ``current`` one (a version or its number;
    None: none) ``previous``.

    Returns:
        False when ``version`` already was the champion (nothing moved), else True.
    """
    current = getattr(current, "version", current)
    if current is not None and str(current) == str(version):
        registry.delete_alias(store, name, CHALLENGER)  # a crash may have left it behind
        return False
    if current is not None:
        registry.set_alias(store, name, PREVIOUS, current)
    registry.set_alias(store, name, CHAMPION, version)
    registry.delete_alias(store, name, CHALLENGER)
    return True


def _rolled_back(version: ModelVersion) -> bool:
    return version.tags.get(ROLLED_BACK) == "true"


def _aliases(store: Store, prefix: str, listed) -> tuple[dict, dict, set]:
    """``{name: challenger number}``, ``{name: champion number}`` and the ``(name, version)``
    pairs rolled back: on plain MLflow two searches (the aliases, the rolled-back versions),
    whatever the size of the registry; by name where the backend has no such search."""
    if registry.by_name_only(store):
        found = registry.aliased(store, prefix, CHALLENGER, listed)
        refused = {(n, str(v.version)) for n, v in found.items() if _rolled_back(v)}
        current = registry.alias_numbers(store, prefix, CHAMPION, listed) if found else {}
        return {n: str(v.version) for n, v in found.items()}, current, refused
    held = registry.all_aliases(store, prefix, (CHALLENGER, CHAMPION), listed)
    challengers = {n: a[CHALLENGER] for n, a in held.items() if CHALLENGER in a}
    current = {n: a[CHAMPION] for n, a in held.items() if CHAMPION in a}
    refused = set()
    if challengers:
        rolled = registry.find_versions(store, **{ROLLED_BACK: "true"})
        refused = {(v.name, str(v.version)) for v in rolled}
    return challengers, current, refused


def promote_dev(
    store: Store, prefix: str, *, dry_run: bool = False, names: dict[str, str] | None = None
) -> dict:
    """Each ``challenger`` of the registry -> ``champion``; ``{partition: what happened}``.

    ``names``: ``{partition: model name}`` for registries that are searched by name only."""
    moved, listed = {}, None if names is None else list(names.values())
    partition_of = {name: pid for pid, name in (names or {}).items()}
    challengers, current, refused = _aliases(store, prefix, listed)
    for name, version in challengers.items():
        champion = current.get(name)
        entry = {"name": name, "version": version, "changed": False, "replaced": champion}
        if (name, version) in refused:
            entry["status"] = "refused: rolled back"
            if not dry_run:
                registry.delete_alias(store, name, CHALLENGER)
        elif dry_run:
            entry["status"] = "unchanged" if champion == version else "dry run: would promote"
        else:
            entry["changed"] = move_champion(store, name, version, champion)
            entry["status"] = "promoted" if entry["changed"] else "unchanged"
        moved[partition_of.get(name, name.removeprefix(f"{prefix}."))] = entry
    return moved


def _is_copy_of(copy: ModelVersion | None, version: ModelVersion, env: str) -> bool:
    tags = copy.tags if copy is not None else {}
    return (tags.get("source_env"), tags.get("source_version"), tags.get("source_run_id")) == (
        env,
        str(version.version),
        version.run_id or "",
    )


def _copies(source: Store, target: Store, champions: dict, serving: dict) -> dict:
    """``{name: [prod copies of the dev champion, newest first]}``. A prod champion that is
    the copy answers without a search; the others are searched by name and source version
    (one search per source version and chunk of names), never every copy ever made."""
    copies, pending = {}, {}
    for name, version in champions.items():
        if _is_copy_of(serving.get(name), version, source.env):
            copies[name] = [serving[name]]
        else:
            pending.setdefault(str(version.version), []).append(name)
    for number, names in pending.items():
        found = registry.versions_of(target, names, source_env=source.env, source_version=number)
        for v in found:
            if _is_copy_of(v, champions[v.name], source.env):
                copies.setdefault(v.name, []).append(v)
    return copies


def promote_prod(
    source: Store,
    target: Store,
    prefix: str,
    experiment: str,
    *,
    dry_run: bool = False,
    names: dict[str, str] | None = None,
) -> dict:
    """Copy each dev champion into prod (once) and make it prod's champion; what happened.

    ``names``: ``{partition: model name}`` for registries that are searched by name only."""
    listed = None if names is None else list(names.values())
    plan, serving = {}, registry.champions(target, prefix, listed)
    champions = registry.champions(source, prefix, listed)
    copies = _copies(source, target, champions, serving)
    for name, version in champions.items():
        current = serving.get(name)
        made = copies.get(name, [])
        copy = next((c for c in made if current is not None and c.version == current.version), None)
        copy = copy or (made[0] if made else None)
        if copy is not None and len(made) > 1 and not dry_run:  # a copy a lost answer made twice
            registry.drop_duplicates(target, copy, made)
        entry = {
            "source_version": str(version.version),
            "git_sha": version.tags.get("git_sha", "unknown"),
            "version": str(copy.version) if copy is not None else None,
            "replaced": str(current.version) if current is not None else None,
            "copied": False,
            "changed": False,
        }
        if copy is not None and current is not None and copy.version == current.version:
            entry |= {"status": "unchanged", "replaced": None}
            validated = {  # a re-validation in dev (the stale trap) reaches prod
                k: v for k, v in version.tags.items()
                if k.startswith("last_validated") and current.tags.get(k) != v
            }  # fmt: skip
            if validated and not dry_run:
                registry.set_version_tags(target, name, current.version, validated)
        elif copy is not None and _rolled_back(copy):
            entry["status"] = "refused: rolled back in prod"
        else:
            entry["status"] = "dry run: would copy" if dry_run else "copy"
        plan[name] = (version, current, copy, entry)
    todo = [item for item in plan.values() if item[-1]["status"] == "copy"]
    if todo:  # looked up once for every copy, not once per partition
        experiment_id, lineage = target.experiment_id(experiment), registry.git_tags()
    for version, current, made, entry in todo:
        copy = made  # a copy whose alias a crash never set is reused, not made again
        if copy is None:
            copy = registry.copy_version(
                source,
                target,
                version.name,
                str(version.version),
                experiment,
                experiment_id=experiment_id,
                src=version,
                lineage_tags=lineage,
            )
            entry["copied"] = True
        entry["version"] = str(copy.version)
        entry["changed"] = move_champion(target, version.name, str(copy.version), current)
        entry["status"] = "promoted"
    return {name: item[-1] for name, item in plan.items()}


def stores(settings: Settings, args) -> tuple[Store, Store]:
    """The dev source and prod target of ``promote --to prod``.

    Raises:
        ConfigError: they are the same store, or prod is a server and no dev store is set.
    """
    dev = (
        load_settings(args.config_dir, "dev", args.overrides) if settings.env != "dev" else settings
    )
    # MLFLOW_TRACKING_URI configures the environment a command runs in: never dev's source here
    source = registry.resolve_store(dev, "dev", local=args.local, generic=False)
    target = registry.resolve_store(settings, "prod", local=args.local)
    if target.artifact_root is None and source.artifact_root is not None:
        raise ConfigError(
            f"the prod store is {registry.redact_uri(target.registry_uri)} but no dev store is "
            "configured (MLFLOW_TRACKING_URI applies only to the environment a command runs "
            "in): set MANYMODELS_DEV_TRACKING_URI (or mlflow.dev.tracking_uri) to the dev "
            "registry to copy from"
        )
    if _same(source.registry_uri, target.registry_uri):
        raise ConfigError(
            f"the dev and prod stores are the same ({registry.redact_uri(target.registry_uri)}): "
            "prod would be copied onto itself; set MANYMODELS_DEV_TRACKING_URI to the dev "
            "registry and MANYMODELS_PROD_TRACKING_URI (or MLFLOW_TRACKING_URI) to prod's"
        )
    return source, target


def _same(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()


def _summary(moved: dict) -> str:
    counts: dict[str, int] = {}
    for entry in moved.values():
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing to do"


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = base_parser("promote", __doc__)
    parser.add_argument(
        "--to",
        choices=("dev", "prod"),
        default="dev",
        help="dev: challengers -> champion; prod: copy dev champions into the prod registry",
    )
    parser.add_argument("--dry-run", action="store_true", help="report; move and copy nothing")
    parser.add_argument(
        "--all",
        action="store_true",
        help="dev: every challenger of the registry, not only those runs/registration.json names",
    )
    parser.add_argument(
        "--allow-foreign-code",
        action="store_true",
        help="prod: copy champions trained by commits this checkout does not contain",
    )
    args = parser.parse_args(argv)
    setup_logging()
    settings = settings_from(args)
    prefix = settings.mlflow.model_prefix
    if args.to == "dev":
        dry_run = args.dry_run or settings.training.gate.run_mode == "dry_run"
        store = registry.resolve_store(settings, "dev", local=args.local)
        names = known_names(settings, store)
        if names is None and not args.all:
            names = registered_names(settings)
        moved = promote_dev(store, prefix, dry_run=dry_run, names=names)
        where = registry.redact_uri(store.tracking_uri)
    else:
        dry_run = args.dry_run
        source, target = stores(settings, args)
        where = " -> ".join(registry.redact_uri(s.tracking_uri) for s in (source, target))
        names = known_names(settings, source, target)
        listed = None if names is None else list(names.values())
        if not registry.alias_numbers(source, prefix, CHAMPION, listed):
            log.error(
                "promote: no champion in the dev registry %s: run the training pipeline first",
                where,
            )
            return 2
        moved = promote_prod(
            source, target, prefix, settings.mlflow.experiment, dry_run=True, names=names
        )
        foreign = foreign_code(moved, registry.git_tags()["git_sha"])
        if foreign and not args.allow_foreign_code:
            for name, why in sorted(foreign.items()):
                log.error("promote: %s v%s: %s", name, moved[name]["source_version"], why)
            log.error(
                "promote: refused: %d champion(s) were not trained by code this release "
                "contains; nothing was copied. Release the code they were trained with, retrain, "
                "or pass --allow-foreign-code",
                len(foreign),
            )
            return 1
        if not dry_run:
            moved = promote_prod(source, target, prefix, settings.mlflow.experiment, names=names)
    write_json(
        {"to": args.to, "dry_run": dry_run, "promoted": moved},
        settings.path("runs", f"promotion-{args.to}.json"),
    )
    log.info(
        "promote (%s)%s: %s; %s",
        args.to,
        " DRY RUN, no alias moved" if dry_run else "",
        _summary(moved),
        where,
    )
    return 0


def known_names(settings: Settings, *stores: Store) -> dict[str, str] | None:
    """``{partition: model name}`` from the partition index (else the training hand-off) when a
    store is searched by name only (Unity Catalog, Azure ML); None on plain MLflow (or when
    neither file is there: the registry then says what is missing)."""
    if not any(registry.by_name_only(s) for s in stores):
        return None
    for path in (settings.path("partitions", "index.json"), settings.path("runs", "training.json")):
        if path.exists():
            pids = read_json(path).get("partitions", {})
            return {pid: registry.model_name(settings, pid) for pid in pids}
    return None


def registered_names(settings: Settings) -> dict[str, str] | None:
    """``{partition: model name}`` the register step's hand-off (``runs/registration.json``)
    registered or reused; None when there is none, it was a dry run, it registered nothing or
    it is older than the training hand-off (every challenger of the registry is then looked at).
    """
    path = settings.path("runs", "registration.json")
    if not path.exists():
        return None
    handoff = read_json(path)
    registered = handoff.get("registered") or {}
    if handoff.get("dry_run") or not registered:
        return None
    training = settings.path("runs", "training.json")
    if training.exists() and read_json(training).get("parent_run_id") != handoff.get(
        "parent_run_id"
    ):
        return None  # a newer training run whose registration did not finish
    return {pid: entry["name"] for pid, entry in registered.items()}


if __name__ == "__main__":
    raise SystemExit(main())
