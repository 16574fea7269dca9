"""Step ``rollback``: one command to give a partition back its ``previous`` champion.

``manymodels rollback --partition north-texas.large.fast [--env prod]`` swaps the ``champion``
and ``previous`` aliases, so running it twice undoes itself. The version it takes the champion
alias from is tagged ``rolled_back=true`` (and ``rolled_back_at``): ``promote`` does not make
it champion again, in dev, nor does the prod copy re-copy it (rolling back again, or deleting the
tag, lifts that). A ``challenger`` alias on it is removed.
"""

from __future__ import annotations

import datetime as dt
import logging

from manymodels import registry
from manymodels.registry import CHALLENGER, CHAMPION, PREVIOUS, ROLLED_BACK
from manymodels.steps import base_parser, guarded, settings_from, setup_logging

__all__ = ["main", "rollback"]

log = logging.getLogger(__name__)


def rollback(store: registry.Store, name: str) -> tuple[str, str]:
    """Swap ``champion`` and ``previous`` of ``name``; returns (new champion, new previous).

    Raises:
        LookupError: the model has no champion or no previous version.
    """
    champion = registry.get_alias(store, name, CHAMPION)
    previous = registry.get_alias(store, name, PREVIOUS)
    if champion is None or previous is None:
        lacking = "champion" if champion is None else "previous"
        raise LookupError(f"{name} has no {lacking} version to roll back to")
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    # tag first: a crash after it leaves the bad version marked, not the marker lost
    registry.tag_version(
        store, name, champion.version, {ROLLED_BACK: "true", "rolled_back_at": now}
    )
    registry.tag_version(store, name, previous.version, {ROLLED_BACK: None, "rolled_back_at": None})
    registry.set_alias(store, name, CHAMPION, previous.version)
    registry.set_alias(store, name, PREVIOUS, champion.version)
    challenger = registry.get_alias(store, name, CHALLENGER)
    if challenger is not None and str(challenger.version) == str(champion.version):
        registry.delete_alias(store, name, CHALLENGER)
    return str(previous.version), str(champion.version)


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = base_parser("rollback", __doc__)
    parser.add_argument(
        "--partition", required=True, help="partition id, e.g. north-texas.large.fast"
    )
    args = parser.parse_args(argv)
    setup_logging()
    settings = settings_from(args)
    store = registry.resolve_store(settings, local=args.local)
    name = registry.model_name(settings, args.partition)
    try:
        now, before = rollback(store, name)
    except LookupError as exc:
        log.error("rollback: %s (store %s)", exc, registry.redact_uri(store.tracking_uri))
        return 1
    log.info(
        "rollback: %s champion is now v%s (v%s kept as %r, tagged %s=true: not re-promoted)",
        name,
        now,
        before,
        PREVIOUS,
        ROLLED_BACK,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
