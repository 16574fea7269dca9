"""Stale champions: how old each serving model is, and when it was last validated on fresh data.

Scoring refuses a champion whose **last validation** is more than ``scoring.max_model_age_days``
before the scoring date. A champion is validated when it is trained, and again each time a
retrained challenger loses to it on the newest held-out weeks (``register`` then tags it
``last_validated_at``): a champion that keeps winning keeps serving.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["LAST_VALIDATED", "TRAINED_AS_OF", "VALIDATED_AS_OF", "age_basis", "staleness"]

LAST_VALIDATED = "last_validated_at"
# the date the data was as of when the model was trained / last validated (data.as_of, else that
# day): the clock the scoring date runs on, so a historical export's ages count from its as-of
TRAINED_AS_OF = "trained_as_of"
VALIDATED_AS_OF = "last_validated_as_of"


def age_basis(tags: dict[str, str], created: str) -> tuple[str, str]:
    """``(timestamp, basis)``: the last validation if recorded, else training, else creation.

    Validation and training count on the data's clock where the version records it
    (:data:`VALIDATED_AS_OF`, :data:`TRAINED_AS_OF`), as the scoring date does
    (``--as-of``, else ``data.as_of``, else today); versions registered before those tags
    existed count from the wall-clock time (``last_validated_at``, ``trained_at``). A
    wall-clock validation of a version trained on the data clock counts from its training.
    """
    if tags.get(LAST_VALIDATED) and (tags.get(VALIDATED_AS_OF) or not tags.get(TRAINED_AS_OF)):
        return tags.get(VALIDATED_AS_OF) or tags[LAST_VALIDATED], "validated"
    # validated by a register that wrote no as-of date, trained on the data clock: its training
    # (never one clock's date against the other's)
    if tags.get(TRAINED_AS_OF) or tags.get("trained_at"):
        return tags.get(TRAINED_AS_OF) or tags["trained_at"], "trained"
    return created, "registered"


def _days(stamp: str, as_of: dt.date) -> int:
    return (as_of - dt.datetime.fromisoformat(stamp).date()).days


def staleness(
    champions: list[dict], as_of: dt.date, max_age_days: int, warn_days: int
) -> list[dict]:
    """One row per champion: ages and status (fresh, about to go stale, stale).

    Args:
        champions: dicts with ``partition``, ``model``, ``version``, ``tags``, ``created``.
        as_of: the date ages are counted to.
        max_age_days: scoring's limit.
        warn_days: "about to go stale" within this many days of the limit.
    """
    rows = []
    for c in champions:
        stamp, basis = age_basis(c["tags"], c["created"])
        age = _days(stamp, as_of)
        trained = c["tags"].get(TRAINED_AS_OF) or c["tags"].get("trained_at") or c["created"]
        status = (
            "stale"
            if age > max_age_days
            else "about to go stale"
            if age > max_age_days - warn_days
            else "fresh"
        )
        rows.append(
            {
                "partition": c["partition"],
                "model": c["model"],
                "version": c["version"],
                "kind": c["tags"].get("model_kind", "?"),
                "trained_at": trained[:10],
                "trained_days": _days(trained, as_of),
                "last_validated_at": stamp[:10],
                "age_basis": basis,
                "age_days": age,
                "days_left": max_age_days - age,
                "status": status,
            }
        )
    return sorted(rows, key=lambda r: -r["age_days"])
