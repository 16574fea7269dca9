"""Step ``condition``: the declared raw sources -> the standard table (parquet) and its manifest.

Where the data is: ``--raw``, else ``MANYMODELS_DATA_URI``, else ``data.uri``, else
``<workdir>/raw``; source paths in ``pipelines/data.yaml`` are relative to it. ``--mock`` (or
``MANYMODELS_DATA_URI=mock``) first writes fresh mock data to ``<workdir>/raw``. Mock data is
refused when the environment's MLflow store is a real (not embedded) one: models trained or
scored on mock data must never reach a real registry.

The manifest records row counts, the date range, what conditioning fixed, each source's location
and hash, the lifecycle report (new and discontinued series) and the data version (a content
hash of the table) that every later step and MLflow run carries. Bad data exits 1 and writes
nothing.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from pathlib import Path

import pandas as pd

from manymodels.config import Settings, store_uri
from manymodels.data.condition import condition, data_version
from manymodels.data.sources import SourceError, display_uri, read_sources
from manymodels.io import atomic_dir, read_json, write_json
from manymodels.steps import base_parser, guarded, settings_from, setup_logging

__all__ = ["DATA_URI_VAR", "MOCK_MARKER", "TABLE", "main", "manifest_for", "read_conditioned"]

log = logging.getLogger(__name__)
TABLE = "demand.parquet"
ALLOW_MOCK_VAR = "MANYMODELS_ALLOW_MOCK"  # explicit consent to mock data with a real store
TRUE = ("1", "true", "yes")
DATA_URI_VAR = "MANYMODELS_DATA_URI"
MOCK_MARKER = "MOCK_DATA.json"  # `manymodels mock` writes it beside the files it generates


def manifest_for(table: pd.DataFrame, stats: dict, sources: dict, root: str, mock: bool) -> dict:
    known = table[table["units"].notna()]
    last_actual = known["week"].max()
    return {
        "data_version": data_version(table),
        "data_uri": display_uri(root),
        "mock": mock,
        "rows": len(table),
        "history_rows": len(known),
        "future_rows": int((table["week"] > last_actual).sum()),
        "stores": int(table["store_id"].nunique()),
        "products": int(table["product_id"].nunique()),
        "first_week": str(table["week"].min().date()),
        "last_actual_week": str(last_actual.date()) if len(known) else None,
        "last_week": str(table["week"].max().date()),
        "conditioning": stats,
        "covariates": stats.get("covariates", {}),
        "sources": {
            name: {
                "kind": s.settings.kind,
                "uri": display_uri(s.uri),
                "sha256": s.sha256,
                "rows": len(s.frame),
            }
            for name, s in sources.items()
        },
        "raw_files": {Path(display_uri(s.uri)).name: s.sha256 for s in sources.values()},
    }


def read_conditioned(folder: Path) -> tuple[pd.DataFrame, dict]:
    """The standard table and its manifest from ``folder``.

    Raises:
        FileNotFoundError: either is missing (the message says to run ``condition``).
    """
    if not (folder / TABLE).exists():
        missing = folder / TABLE
        raise FileNotFoundError(f"{missing} does not exist: run `manymodels condition` first")
    manifest = read_json(folder / "manifest.json", step="condition")
    return pd.read_parquet(folder / TABLE), manifest


def data_root(settings: Settings, raw: Path | None, mock: bool) -> tuple[str, bool]:
    """``(where the sources are, whether to generate mock data there first)``."""
    if raw is not None:
        return str(raw), mock
    uri = os.environ.get(DATA_URI_VAR, "") or settings.data.uri
    if mock or uri == "mock":
        return str(settings.path("raw")), True
    return uri or str(settings.path("raw")), False


def is_mock(root: str) -> bool:
    """Whether ``root`` is a local folder that ``manymodels mock`` wrote."""
    return "://" not in root and (Path(root) / MOCK_MARKER).exists()


def mock_refusal(settings: Settings, local: bool) -> str | None:
    """Why mock data must not be used here (a real MLflow store is configured), or None.

    Real: a tracking or registry URI that is not on this machine (a remote MLflow server,
    Databricks, Azure ML); a sqlite file, a local folder or a server on loopback is not.

    The store is found as :func:`manymodels.registry.resolve_store` finds it (environment
    variables, then the settings), without creating the embedded one or importing MLflow.
    """
    if local or settings.data.allow_mock or os.environ.get(ALLOW_MOCK_VAR, "").lower() in TRUE:
        return None
    env = settings.env
    real = [store_uri(settings, env, kind) for kind in ("TRACKING", "REGISTRY")]
    # a store on this machine (a sqlite file, a local folder, a server on loopback such as a
    # runner's throwaway one) is a sandbox; a remote server, Databricks or Azure ML is real
    real = [uri for uri in real if uri and not _on_this_machine(uri)]
    if not real:
        return None
    return (
        f"refusing to use mock data with the real MLflow store of env {env!r}: set "
        f"{DATA_URI_VAR} to your data's location (a folder or an s3://, abfs://, gs:// URL), "
        f"or run with --local for the embedded store (a test that means it: {ALLOW_MOCK_VAR}=true "
        "or --set data.allow_mock=true)"
    )


def _on_this_machine(uri: str) -> bool:
    if uri.startswith(("sqlite:", "file:", "/", ".")):
        return True
    host = urllib.parse.urlsplit(uri).hostname or ""
    return uri.startswith(("http://", "https://")) and host in ("localhost", "127.0.0.1", "::1")


def against_training(table: pd.DataFrame, index_path: Path) -> dict:
    """How the products compare with the membership the models were trained on (the partition
    index beside this workdir, when there is one): products the models never saw, and products
    whose speed class changed (their series now go to another partition's model)."""
    if not index_path.exists():
        return {"compared": False}
    trained = read_json(index_path).get("membership", {})
    now = table.groupby("product_id")["speed"].first().astype(str).to_dict()
    unseen = sorted(set(now) - set(trained))
    moved = {p: [trained[p], c] for p, c in sorted(now.items()) if p in trained and trained[p] != c}
    if unseen:
        log.warning(
            "condition: %d product(s) the trained models never saw: %s", len(unseen), unseen[:10]
        )  # noqa: E501
    for product, (old, new) in moved.items():
        log.warning("condition: product %s is now %s (trained as %s)", product, new, old)
    return {"compared": True, "unseen_products": unseen, "class_changes": moved}


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = base_parser("condition", __doc__)
    parser.add_argument("--raw", type=Path, help="raw sources folder (default: see above)")
    parser.add_argument("--out", type=Path, help="output folder (default: <workdir>/conditioned)")
    parser.add_argument("--mock", action="store_true", help="generate mock raw data first")
    args = parser.parse_args(argv)
    setup_logging()
    settings = settings_from(args)
    root, generate = data_root(settings, args.raw, args.mock)
    out = args.out or settings.path("conditioned")
    mock = generate or is_mock(root)
    if mock and (refusal := mock_refusal(settings, args.local)):
        log.error("condition: %s", refusal)
        return 1
    if generate:
        from manymodels.steps import mock as mock_step  # noqa: PLC0415

        mock_step.generate_into(settings, Path(root))
    try:
        sources = read_sources(settings.sources, root)
        table, stats = condition(
            sources,
            settings.data,
            settings.partition.slow_zero_share,
            settings.training.split.test_weeks,
        )
    except SourceError as exc:
        log.error("condition failed (nothing written): %s", exc)
        return 1
    manifest = manifest_for(table, stats, sources, root, mock)
    manifest["against_training"] = against_training(
        table, settings.path("partitions", "index.json")
    )
    with atomic_dir(out) as tmp:
        table.to_parquet(tmp / TABLE, index=False)
        write_json(manifest, tmp / "manifest.json")
    life = stats
    log.info(
        "condition: %d rows (%d stores x %d products, %s .. %s, forecast to %s), data %s -> %s",
        manifest["rows"],
        manifest["stores"],
        manifest["products"],
        manifest["first_week"],
        manifest["last_actual_week"],
        manifest["last_week"],
        manifest["data_version"],
        out / TABLE,
    )
    if life.get("negative_weeks_zeroed"):
        log.warning(
            "condition: %d week(s) of a series returned more than they sold (negative_quantities: "
            "net), counted as zero demand (%s%s)",
            life["negative_weeks_zeroed"],
            ", ".join(life["negative_weeks_first"]),
            ", ..." if life["negative_weeks_zeroed"] > 10 else "",
        )
    for what in ("new_series", "discontinued_series"):
        if life[what]["count"]:
            log.warning(
                "condition: %d %s (%s%s)",
                life[what]["count"],
                what.replace("_", " "),
                ", ".join(life[what]["first"][:10]),
                ", ..." if life[what]["count"] > 10 else "",
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
