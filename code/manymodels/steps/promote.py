"""Step ``promote``: move ``champion`` to the new versions, in dev or from dev into prod.

``manymodels promote`` (dev): each ``challenger`` of the last ``register`` becomes ``champion``;
the version it replaces keeps the alias ``previous`` (``manymodels rollback`` swaps them back).

``manymodels promote --to prod``: each dev ``champion`` is copied into the prod registry (its
artifacts, tags and lineage: source registry, version, run, git sha, data version) and becomes
``champion`` there. Versions already copied are not copied again. Nothing is trained in prod.

Per partition, ``previous`` is set before ``champion`` moves, so a crash half-way leaves every
partition with a valid champion: the old one, or the new one.
"""

from __future__ import annotations

import logging

from mlflow.entities.model_registry import ModelVersion

from manymodels import registry
from manymodels.config import load_settings
from manymodels.io import read_json, write_json
from manymodels.registry import CHALLENGER, CHAMPION, PREVIOUS, Store
from manymodels.steps import base_parser, guarded, settings_from, setup_logging

__all__ = ["main", "move_champion"]

log = logging.getLogger(__name__)


def move_champion(store: Store, name: str, version: str, current: ModelVersion | None) -> bool:
    """Make ``version`` the champion of ``name``, the ``current`` one (None: none) ``previous``.

    Returns:
        False when ``version`` already was the champion (nothing moved), else True.
    """
    if current is not None and str(current.version) == str(version):
        return False
    if current is not None:
        registry.set_alias(store, name, PREVIOUS, current.version)
    registry.set_alias(store, name, CHAMPION, version)
    registry.delete_alias(store, name, CHALLENGER)
    return True


def promote_dev(store: Store, registration: dict) -> dict:
    moved = {}
    for pid, reg in registration["registered"].items():
        current = registry.get_alias(store, reg["name"], CHAMPION)
        changed = move_champion(store, reg["name"], reg["version"], current)
        replaced = str(current.version) if changed and current is not None else None
        moved[pid] = {
            "name": reg["name"],
            "version": reg["version"],
            "replaced": replaced,
            "changed": changed,
        }
    return moved


def promote_prod(source: Store, target: Store, prefix: str, experiment: str) -> dict:
    moved = {}
    serving = registry.champions(target, prefix)
    for name, version in registry.champions(source, prefix).items():
        current = serving.get(name)
        if (
            current is not None
            and current.tags.get("source_version") == str(version.version)
            and current.tags.get("training_run_id") == version.tags.get("training_run_id")
        ):
            validated = {  # a re-validation in dev (issue 10's stale trap) reaches the copy
                k: v for k, v in version.tags.items()
                if k.startswith("last_validated") and current.tags.get(k) != v
            }  # fmt: skip
            if validated:
                registry.set_version_tags(target, name, current.version, validated)
            moved[name] = {
                "version": str(current.version),
                "source_version": str(version.version),
                "copied": False,
                "changed": False,
            }
            continue
        copy = registry.copy_version(source, target, name, str(version.version), experiment)
        move_champion(target, name, str(copy.version), current)
        moved[name] = {
            "version": str(copy.version),
            "source_version": str(version.version),
            "copied": True,
            "replaced": str(current.version) if current is not None else None,
            "changed": True,
        }
    return moved


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = base_parser("promote", __doc__)
    parser.add_argument(
        "--to",
        choices=("dev", "prod"),
        default="dev",
        help="dev: challengers -> champion; prod: copy dev champions into the prod registry",
    )
    args = parser.parse_args(argv)
    setup_logging()
    settings = settings_from(args)
    if args.to == "dev":
        registration = read_json(settings.path("runs", "registration.json"), step="register")
        store = registry.resolve_store(settings, "dev", local=args.local or registration["local"])
        moved = promote_dev(store, registration)
        where = store.tracking_uri
    else:
        dev = (
            load_settings(args.config_dir, "dev", args.overrides)
            if settings.env != "dev"
            else settings
        )
        source = registry.resolve_store(dev, "dev", local=args.local)
        target = registry.resolve_store(settings, "prod", local=args.local)
        if not registry.champions(source, settings.mlflow.model_prefix):
            log.error(
                "promote: no champion in the dev registry %s: run the training pipeline first",
                source.tracking_uri,
            )
            return 2
        moved = promote_prod(
            source, target, settings.mlflow.model_prefix, settings.mlflow.experiment
        )
        where = f"{source.tracking_uri} -> {target.tracking_uri}"
    write_json(
        {"to": args.to, "promoted": moved}, settings.path("runs", f"promotion-{args.to}.json")
    )
    changed = sum(m["changed"] for m in moved.values())
    log.info(
        "promote (%s): %d partition(s) have a champion, %d changed; %s",
        args.to,
        len(moved),
        changed,
        where,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
