"""Step ``mock``: write seeded raw sources (see :mod:`manymodels.data.mock`) to a folder.

The files are those the default ``pipelines/data.yaml`` describes, so the mock is one data source
among others; a marker file (``MOCK_DATA.json``) says the folder holds mock data, which
``condition`` refuses to use with a real MLflow store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path

import yaml

from manymodels.config import Settings
from manymodels.data.mock import RawSources, generate
from manymodels.io import atomic_dir, write_json
from manymodels.steps import base_parser, guarded, parse_date, settings_from, setup_logging

__all__ = ["MARKER", "generate_into", "main", "weeks_until", "write_raw"]

log = logging.getLogger(__name__)
MARKER = "MOCK_DATA.json"  # = manymodels.steps.condition.MOCK_MARKER


def weeks_until(start: dt.date, today: dt.date) -> int:
    """Whole weeks from ``start`` to the last complete week (ending Sunday) before ``today``."""
    return max(1, (today - start).days // 7)


def write_raw(raw: RawSources, out: Path, params: dict | None = None) -> Path:
    """Write ``raw`` as the files a retailer would drop, replacing ``out`` atomically, with the
    mock marker (holding the generator's ``params``)."""
    with atomic_dir(out) as tmp:
        write_json({"generator": "manymodels mock", "params": params or {}}, tmp / MARKER)
        raw.shipments.to_csv(tmp / "shipments.csv", index=False)
        raw.weather.to_csv(tmp / "weather.csv", index=False)
        raw.demographics.to_parquet(tmp / "demographics.parquet", index=False)
        raw.returns.to_json(tmp / "returns.jsonl", orient="records", lines=True)
        events = [dict(e, date=e["date"].isoformat()) for e in raw.events]
        (tmp / "events.yaml").write_text(yaml.safe_dump({"events": events}, sort_keys=False))
        raw.stores.to_csv(tmp / "stores.csv", index=False)
        raw.products.to_csv(tmp / "products.csv", index=False)
    return out


def generate_into(settings: Settings, out: Path, **given) -> dict:
    """Generate mock data with ``settings.mock`` (``given`` overrides) into ``out``.

    Returns:
        The generator's parameters (``weeks`` resolved).
    """
    params = {
        f.name: given.get(f.name, getattr(settings.mock, f.name))
        for f in dataclasses.fields(settings.mock)
    }
    if params["weeks"] == 0:
        params["weeks"] = weeks_until(params["start"], dt.date.today())
    write_raw(generate(**params), out, params)
    return params


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = base_parser("mock", __doc__)
    parser.add_argument("--out", type=Path, help="folder to write (default: <workdir>/raw)")
    parser.add_argument("--regions", type=int)
    parser.add_argument("--stores-per-region", type=int)
    parser.add_argument("--products", type=int)
    parser.add_argument("--start", type=parse_date, help="first week's Monday")
    parser.add_argument("--weeks", type=int, help="0: up to the last complete week before today")
    parser.add_argument("--forecast-weeks", type=int)
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    setup_logging()
    settings = settings_from(args)
    fields = {f.name for f in dataclasses.fields(settings.mock)}
    given = {k: v for k, v in vars(args).items() if v is not None and k in fields}
    out = args.out or settings.path("raw")
    try:
        params = generate_into(settings, out, **given)
    except ValueError as exc:
        log.error("mock failed: %s", exc)
        return 2
    log.info(
        "mock: wrote %d stores x %d products, %d weeks from %s to %s/",
        params["regions"] * params["stores_per_region"],
        params["products"],
        params["weeks"],
        params["start"],
        out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
