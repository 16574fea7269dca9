"""Step ``serve``: the online forecast API (FastAPI + uvicorn) on ``serving.host:serving.port``.

Models are resolved by ``serving.alias`` in the registry of ``--env`` on first use and kept in a
bounded LRU; features come from the snapshot batch scoring writes (docs/serving.md). Every
``serving.*`` key may also be set by an environment variable ``MANYMODELS_SERVING_<KEY>`` (what
a container or an Azure ML online deployment does), after ``--set``-less YAML and before
``--set``. Stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from manymodels import registry
from manymodels.config import Settings, load_settings
from manymodels.redact import redact
from manymodels.steps import base_parser, guarded, setup_logging

__all__ = ["build_service", "env_overrides", "main"]

log = logging.getLogger(__name__)


def env_overrides(environ: dict[str, str] | None = None) -> list[str]:
    """``serving.<key>=<value>`` for every ``MANYMODELS_SERVING_<KEY>`` variable set."""
    from manymodels.config import ServingSettings  # noqa: PLC0415

    environ = os.environ if environ is None else environ
    found = []
    for f in dataclasses.fields(ServingSettings):
        value = environ.get(f"MANYMODELS_SERVING_{f.name.upper()}")
        if value is not None:
            found.append(f"serving.{f.name}={value}")
    return found


def build_service(settings: Settings, store: registry.Store):
    """The :class:`~manymodels.serve.service.Service` for these settings and registry."""
    from manymodels.serve.service import Service  # noqa: PLC0415
    from manymodels.serve.snapshot import snapshot_path  # noqa: PLC0415

    _preload()
    timeout = max(1, round(settings.serving.registry_timeout_s))
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(timeout)
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # the cache answers while it is down
    return Service(
        snapshot_path(settings),
        resolve=lambda name, alias: registry.alias_version(store, name, alias),
        load=lambda name, version: registry.load_version(store, name, version),
        model_name=lambda pid: registry.model_name(settings, pid),
        settings=settings.serving,
        ping=lambda: registry.ping(store),
    )


def _preload() -> None:
    """Import what loading and running any model needs before the first request, so the
    first load does not pay seconds of imports and the ready process's memory is its baseline."""
    import manymodels.models  # noqa: F401, PLC0415  (scikit-learn)

    try:
        import torch  # noqa: F401, PLC0415  (the ensemble's network)
    except ImportError:  # pragma: no cover - torch is a core dependency
        log.warning("serve: torch is not installed: ensemble models will not load")


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = base_parser("serve", __doc__)
    parser.add_argument("--host", help="address to listen on (default: serving.host)")
    parser.add_argument("--port", type=int, help="port (default: serving.port; 0: any free)")
    args = parser.parse_args(argv)
    setup_logging()
    settings = load_settings(args.config_dir, args.env, [*env_overrides(), *args.overrides])
    store = registry.resolve_store(settings, local=args.local)
    service = build_service(settings, store)
    import uvicorn  # noqa: PLC0415

    from manymodels.serve.app import create_app  # noqa: PLC0415

    host = args.host or settings.serving.host
    port = settings.serving.port if args.port is None else args.port
    log.info("serve: %s@%s from %s (%s) on http://%s:%d; snapshot %s", settings.mlflow.model_prefix,
             settings.serving.alias, redact(store.registry_uri), settings.env, host, port,
             service.snapshot_path)  # fmt: skip
    uvicorn.run(create_app(service), host=host, port=port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
