"""Step ``register``: a model version per partition the gate let through, aliased ``challenger``.

``promote`` decisions register the candidate ensemble; ``fallback_baseline`` registers the
partition's baseline model (so every partition has something to serve); ``keep_champion`` and
``training_failed`` register nothing, except that a kept champion is re-validated: see
:func:`revalidate`. Versions are tagged with the partition keys, the metrics,
the baseline's metrics, the data version, git sha and the training run. Re-running the step for
the same training run reuses the versions it made instead of adding duplicates.
"""

from __future__ import annotations

import datetime as dt
import logging
import math

from manymodels import registry
from manymodels.io import read_json, write_json
from manymodels.steps import base_parser, guarded, settings_from, setup_logging

__all__ = ["main", "revalidate", "version_tags"]

log = logging.getLogger(__name__)
KIND_OF = {"promote": "ensemble", "fallback_baseline": "baseline"}


def version_tags(
    part: dict, verdict: dict, kind: str, training: dict, lineage: dict[str, str]
) -> dict[str, str]:
    """A version's tags: partition keys, metrics, data version, runs, verdict and ``lineage``
    (the git tags, looked up once per step rather than once per partition)."""
    metrics = {
        k: f"{v:.6g}"
        for k, v in part["metrics"].items()
        if k.startswith(("ensemble_", "baseline_"))
    }
    return {
        **part["keys"],
        **metrics,
        "partition": part["partition"],
        "model_kind": kind,
        "data_version": training["data_version"],
        "training_run_id": part["run_id"],
        "parent_run_id": training["parent_run_id"],
        "gate_decision": verdict["decision"],
        "trained_at": part.get("trained_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
        **lineage,
    }


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = base_parser("register", __doc__)
    args = parser.parse_args(argv)
    setup_logging()
    settings = settings_from(args)
    training = read_json(settings.path("runs", "training.json"), step="train")
    gate = read_json(settings.path("reports", "gate.json"), step="evaluate")
    if gate["parent_run_id"] != training["parent_run_id"]:
        log.error(
            "register: reports/gate.json is from another training run: run `manymodels evaluate`"
        )
        return 2
    store = registry.resolve_store(settings, local=training["local"])
    lineage = registry.git_tags()
    # versions a previous run of this step made for this training run: reused, not duplicated
    made = {}
    for v in registry.find_versions(store, parent_run_id=training["parent_run_id"]):
        made.setdefault((v.name, v.tags.get("model_kind")), v)  # newest first
    registered = {}
    for pid, verdict in gate["partitions"].items():
        kind = KIND_OF.get(verdict["decision"])
        if verdict["decision"] == "keep_champion":  # the stale trap (issue 10): see revalidate
            kind = revalidate(store, registry.model_name(settings, pid), verdict, training)
        if kind is None:
            continue
        part = training["partitions"][pid] | {"partition": pid}
        name = registry.model_name(settings, pid)
        version = made.get((name, kind)) or registry.register(
            store, part[f"{kind}_uri"], name, version_tags(part, verdict, kind, training, lineage)
        )
        registry.set_alias(store, name, registry.CHALLENGER, version.version)
        registered[pid] = {"name": name, "version": str(version.version), "kind": kind}
    write_json(
        {
            "parent_run_id": training["parent_run_id"],
            "store": store.tracking_uri,
            "local": training["local"],
            "registered": registered,
        },
        settings.path("runs", "registration.json"),
    )
    kinds = [r["kind"] for r in registered.values()]
    log.info(
        "register: %d versions aliased %r (%d ensembles, %d baseline fallbacks) in %s",
        len(registered),
        registry.CHALLENGER,
        kinds.count("ensemble"),
        kinds.count("baseline"),
        store.tracking_uri,
    )
    return 0


def revalidate(store: registry.Store, name: str, verdict: dict, training: dict) -> str | None:
    """A champion the gate kept: a baseline is refit, an ensemble is recorded as re-validated.

    A baseline champion is replaced by this run's baseline, fit on the latest data (returns
    ``"baseline"``: register it). An ensemble champion that was scored on this run's held-out
    weeks gets ``last_validated_at`` (and the run, data version and its MAPE there), which
    scoring's age rule counts from (returns None: register nothing).
    """
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
        "last_validated_run_id": training["parent_run_id"],
        "last_validated_data_version": training["data_version"],
        "last_validated_mape": f"{mape:.6g}",
    })  # fmt: skip
    log.info("register: %s v%s kept and re-validated (MAPE %.3f)", name, champion.version, mape)
    return None


if __name__ == "__main__":
    raise SystemExit(main())
