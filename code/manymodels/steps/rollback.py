"""Step ``rollback``: one command to give a partition back its ``previous`` champion.

``manymodels rollback --partition north-texas.large.fast [--env prod]`` swaps the ``champion``
and ``previous`` aliases, so running it twice undoes itself.
"""

from __future__ import annotations

import logging

from manymodels import registry
from manymodels.redact import redact
from manymodels.registry import CHAMPION, PREVIOUS
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
    registry.set_alias(store, name, CHAMPION, previous.version)
    registry.set_alias(store, name, PREVIOUS, champion.version)
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
        log.error("rollback: %s (store %s)", redact(exc), redact(store.tracking_uri))
        return 1
    log.info("rollback: %s champion is now v%s (v%s kept as %r)", name, now, before, PREVIOUS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
