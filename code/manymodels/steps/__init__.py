"""Pipeline steps. Each module has a pure core and a thin ``main(argv=None)`` that loads, calls,
saves and logs; each is runnable as ``python -m manymodels.steps.<step>`` and ``manymodels <step>``.

This module holds what every ``main`` shares: the common arguments and logging set-up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from manymodels.config import ConfigError, Settings, load_settings
from manymodels.errors import RegistryError
from manymodels.profiles import profile_overrides
from manymodels.redact import redact

__all__ = [
    "add_data_option",
    "as_of_date",
    "base_parser",
    "guarded",
    "parse_date",
    "settings_from",
    "setup_logging",
]


def guarded(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Turn the errors a user can fix (bad settings, a missing input) into a message and exit 2,
    and a registry that cannot be reached (:class:`RegistryError`) into one and exit 3.

    Wraps every step's ``main``, so ``python -m manymodels.steps.<step>`` and ``manymodels
    <step>`` report them the same way, without a traceback.
    """

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except (ConfigError, FileNotFoundError) as exc:
            setup_logging()
            logging.getLogger(main.__module__).error(
                "%s: %s", main.__module__.rsplit(".", 1)[-1], redact(exc)
            )
            return 2
        except RegistryError as exc:  # the store could not answer: never "nothing there"
            setup_logging()
            logging.getLogger(main.__module__).error(
                "%s: %s", main.__module__.rsplit(".", 1)[-1], exc
            )
            return 3

    return wrapper


def base_parser(step: str, description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every step takes."""
    parser = argparse.ArgumentParser(prog=f"manymodels {step}", description=description)
    parser.add_argument("--config-dir", default="pipelines", help="folder of pipeline YAML files")
    parser.add_argument("--env", default="dev", choices=("dev", "prod"), help="environment overlay")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override a setting, e.g. --set training.nn.epochs=3 (repeatable)",
    )
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="FILE",
        dest="profiles",
        help="a settings profile applied before --set, e.g. pipelines/profiles/lean.yaml",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="keep everything on this machine: the embedded MLflow stores, whatever is configured",
    )
    return parser


def add_data_option(parser: argparse.ArgumentParser) -> None:
    """``--data``: the conditioned folder a step reads (default: ``<workdir>/conditioned``)."""
    default = "conditioned folder (default: <workdir>/conditioned)"
    parser.add_argument("--data", type=Path, help=default)


def settings_from(args: argparse.Namespace) -> Settings:
    profiled = profile_overrides(*getattr(args, "profiles", ()))
    return load_settings(args.config_dir, args.env, [*profiled, *args.overrides])


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date like 2024-05-27, got {text!r}") from exc


def as_of_date(given: dt.date | None, settings: Settings) -> dt.date:
    """The date a step works for: ``--as-of``, else ``data.as_of``, else today."""
    if given is not None:
        return given
    if settings.data.as_of:
        try:
            return dt.date.fromisoformat(settings.data.as_of)
        except ValueError as exc:
            raise ConfigError(
                f"data.as_of must be a date like 2024-05-27, got {settings.data.as_of!r}"
            ) from exc
    return dt.date.today()


def setup_logging(level: int = logging.INFO) -> None:
    """Log plain messages to stdout (what a user and a CI log read), once per process."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # MLflow resets its logger on import
    # MLflow draws a tqdm bar per artifact download from a server: noise in a step's log
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for noisy in ("mlflow", "alembic", "urllib3", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
