"""Step ``register``: a model version per partition the gate let through, aliased ``challenger``.

``promote`` decisions register the candidate ensemble; ``fallback_baseline`` registers the
partition's baseline model (so every partition has something to serve); ``keep_champion`` and
``training_failed`` register nothing, except that a kept champion is re-validated: see
:func:`revalidate`. Versions are tagged with the partition keys, the metrics, the baseline's
metrics, the data version, git sha, settings hash and the training run.

Nothing is registered twice: re-running the step for the same training run reuses the versions
it made, and an identical re-run (same ``git_sha`` and ``code_version``, ``config_hash`` and
``data_version``: same code, settings and data) reuses the version an earlier run registered.
Such a partition is ``unchanged`` when that version is already champion (no alias moves), and a
version that was rolled back is not proposed again. With the gate's ``run_mode: dry_run`` nothing
is registered.
"""

from __future__ import annotations

import datetime as dt
import logging
import math

from mlflow.entities.model_registry import ModelVersion

from manymodels import registry
from manymodels.io import read_json, write_json
from manymodels.monitoring.staleness import TRAINED_AS_OF, VALIDATED_AS_OF
from manymodels.steps import as_of_date, base_parser, guarded, settings_from, setup_logging

__all__ = ["IDENTITY", "main", "revalidate", "version_tags"]

log = logging.getLogger(__name__)
KIND_OF = {"promote": "ensemble", "fallback_baseline": "baseline"}
IDENTITY = ("git_sha", "code_version", "config_hash", "data_version")  # code, settings, data


def version_tags(
    part: dict, verdict: dict, kind: str, training: dict, lineage: dict[str, str]
) -> dict[str, str]:
    """A version's tags: partition keys, metrics, data version, runs, verdict and ``lineage``
    (the git tags, looked up once per step rather than once per partition)."""
    metrics = {
        k: "nan" if v is None else f"{v:.6g}"  # training.json: an undefined metric is null
        for k, v in part["metrics"].items()
        if k.startswith(("ensemble_", "baseline_"))
    }
    return {
        **part["keys"],
        **metrics,
        "partition": part["partition"],
        "model_kind": kind,
        "data_version": training["data_version"],
        **training.get("data", {}),  # data URI and source hashes (steps/train.py)
        "training_run_id": part["run_id"],
        "parent_run_id": training["parent_run_id"],
        "gate_decision": verdict["decision"],
        "trained_at": part.get("trained_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
        **({TRAINED_AS_OF: training["as_of"]} if training.get("as_of") else {}),
        **lineage,
    }


def _training(settings) -> dict:
    """``runs/training.json`` with the data clock model ages count on (``as_of``; one written
    before it recorded it gets the same rule's date: data.as_of, else today)."""
    training = read_json(settings.path("runs", "training.json"), step="train")
    training["as_of"] = training.get("as_of") or as_of_date(None, settings).isoformat()
    return training


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = base_parser("register", __doc__)
    args = parser.parse_args(argv)
    setup_logging()
    settings = settings_from(args)
    training = _training(settings)
    gate = read_json(settings.path("reports", "gate.json"), step="evaluate")
    if gate["parent_run_id"] != training["parent_run_id"]:
        log.error(
            "register: reports/gate.json is from another training run: run `manymodels evaluate`"
        )
        return 2
    store = registry.resolve_store(settings, local=training["local"])
    wanted = {
        p: KIND_OF[v["decision"]] for p, v in gate["partitions"].items() if v["decision"] in KIND_OF
    }
    handoff = {
        "parent_run_id": training["parent_run_id"],
        "store": registry.redact_uri(store.tracking_uri),
        "local": training["local"],
        "dry_run": gate.get("run_mode") == "dry_run",
    }
    if handoff["dry_run"]:
        handoff |= {"registered": {}, "would_register": wanted}
        write_json(handoff, settings.path("runs", "registration.json"))
        log.info(
            "register: DRY RUN (training.gate.run_mode=dry_run): would register %d version(s); "
            "registered nothing, moved no alias",
            len(wanted),
        )
        return 0
    lineage = registry.git_tags() | {"code_version": registry.code_version()}
    lineage["config_hash"] = registry.run_tags(store, training["parent_run_id"]).get(
        "config_hash", "unknown"
    )
    prefix = settings.mlflow.model_prefix
    names = None  # plain MLflow: searched by pattern; else by the hand-off's partitions
    if registry.by_name_only(store):
        names = [registry.model_name(settings, pid) for pid in training["partitions"]]
    known = _known_versions(store, training, lineage, names)
    registered = {}
    kept = {
        pid: registry.model_name(settings, pid)
        for pid, verdict in gate["partitions"].items()
        if verdict["decision"] == "keep_champion"  # the stale trap (issue 10): see revalidate
    }
    serving = _kept_champions(store, prefix, list(kept.values()))
    for pid, name in kept.items():
        if revalidate(store, name, gate["partitions"][pid], training, serving.get(name)):
            wanted[pid] = "baseline"  # a baseline champion is refit on the latest data
    # after the stale trap added its refits: their champions must be known too
    wanted_names = [registry.model_name(settings, pid) for pid in wanted]
    # version numbers only (one search, not a look-up per partition): all this step compares
    champions = registry.alias_numbers(store, prefix, registry.CHAMPION, names or wanted_names)
    for pid, kind in wanted.items():
        part = training["partitions"][pid] | {"partition": pid}
        name = registry.model_name(settings, pid)
        version = known.get((name, kind))
        status = "reused"
        if version is None:
            tags = version_tags(part, gate["partitions"][pid], kind, training, lineage)
            version = registry.register(
                store,
                part[f"{kind}_uri"],
                name,
                tags,
                artifact_uri=part.get("artifact_uri"),
                exists=name in champions,
            )
            status = "new"
        if champions.get(name) == str(version.version):
            status = "unchanged"  # already serving: no alias moves
        elif version.tags.get(registry.ROLLED_BACK) == "true":
            status = "rolled back: not proposed again"
        else:
            registry.set_alias(store, name, registry.CHALLENGER, version.version)
        registered[pid] = {"name": name, "version": str(version.version), "kind": kind}
        registered[pid]["status"] = status
    removed = _drop_duplicates(store, training, registered, names)
    handoff["duplicates_removed"] = removed
    write_json(handoff | {"registered": registered}, settings.path("runs", "registration.json"))
    statuses = [r["status"] for r in registered.values()]
    log.info(
        "register: %d new version(s), %d reused, %d unchanged (already champion), %d rolled "
        "back, %d duplicate(s) removed; %d aliased %r in %s",
        statuses.count("new"),
        statuses.count("reused"),
        statuses.count("unchanged"),
        sum(s.startswith("rolled back") for s in statuses),
        sum(len(v) for v in removed.values()),
        statuses.count("new") + statuses.count("reused"),
        registry.CHALLENGER,
        handoff["store"],
    )
    return 0


def _kept_champions(store, prefix: str, names: list[str]) -> dict:
    """``{name: champion version}`` of the models whose champion the gate kept: on plain MLflow
    their alias numbers (by name up to 200 names, else one listing) and the versions by number,
    a search per chunk of names, not a look-up per partition; by name where the backend needs
    it (:func:`manymodels.registry.aliased`)."""
    if not names:
        return {}
    if registry.by_name_only(store):
        return registry.aliased(store, prefix, registry.CHAMPION, names)
    numbers = registry.alias_numbers(store, prefix, registry.CHAMPION, names)
    return registry.versions_at(store, numbers)


def _known_versions(store, training: dict, lineage: dict[str, str], names=None) -> dict:
    """``{(name, kind): version}`` already registered for this training run, or by an identical
    run (same code, settings and data; not when the commit is unknown)."""
    known = {}
    for v in registry.find_versions(store, names=names, parent_run_id=training["parent_run_id"]):
        known.setdefault((v.name, v.tags.get("model_kind")), v)  # newest first
    identity = {k: lineage[k] for k in IDENTITY if k != "data_version"}
    identity["data_version"] = training["data_version"]
    if "unknown" not in identity.values():
        for v in registry.find_versions(store, names=names, **identity):
            known.setdefault((v.name, v.tags.get("model_kind")), v)
    return known


def _drop_duplicates(store, training: dict, registered: dict, names=None) -> dict:
    """Delete the versions this training run made twice for one partition and kind (a request
    whose answer was lost and was re-run or retried by the client): one search per step.

    Returns:
        ``{model name: [deleted version numbers]}``.
    """
    keep = {(r["name"], r["kind"]): r["version"] for r in registered.values()}
    groups: dict[tuple, list] = {}
    for v in registry.find_versions(store, names=names, parent_run_id=training["parent_run_id"]):
        groups.setdefault((v.name, v.tags.get("model_kind")), []).append(v)
    removed = {}
    for key, versions in groups.items():
        kept = next((v for v in versions if str(v.version) == keep.get(key)), None)
        if kept is not None and len(versions) > 1:
            if deleted := registry.drop_duplicates(store, kept, versions):
                log.warning("register: %s: removed duplicate version(s) %s", key[0], deleted)
                removed[key[0]] = deleted
    return removed


_LOOK_UP = object()


def revalidate(
    store: registry.Store,
    name: str,
    verdict: dict,
    training: dict,
    champion: ModelVersion | None | object = _LOOK_UP,
) -> str | None:
    """A champion the gate kept: a baseline is refit, an ensemble is recorded as re-validated.

    A baseline champion is replaced by this run's baseline, fit on the latest data (returns
    ``"baseline"``: register it). An ensemble champion that was scored on this run's held-out
    weeks gets ``last_validated_at`` (and the run, data version and its MAPE there), which
    scoring's age rule counts from (returns None: register nothing). ``champion``: the version
    holding the alias where the caller has searched for it (None: there is none); else it is
    looked up.
    """
    if champion is _LOOK_UP:
        champion = registry.get_alias(store, name, registry.CHAMPION)
    if champion is None:
        return None
    if champion.tags.get("model_kind") == "baseline":
        return "baseline"
    mape = verdict.get("champion_mape")
    if mape is None or math.isnan(mape):  # not scored on the fresh weeks: not validated
        return None
    registry.set_version_tags(store, name, champion.version, {
        "last_validated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **({VALIDATED_AS_OF: training["as_of"]} if training.get("as_of") else {}),
        "last_validated_run_id": training["parent_run_id"],
        "last_validated_data_version": training["data_version"],
        "last_validated_mape": f"{mape:.6g}",
    })  # fmt: skip
    log.info("register: %s v%s kept and re-validated (MAPE %.3f)", name, champion.version, mape)
    return None


if __name__ == "__main__":
    raise SystemExit(main())
