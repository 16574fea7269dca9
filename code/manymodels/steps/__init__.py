"""Pipeline steps. Each module has a pure core and a thin ``main(argv=None)`` that loads, calls,
saves and logs; each is runnable as ``python -m manymodels.steps.<step>`` and ``manymodels <step>``.

This module holds what every ``main`` shares: the common arguments and logging set-up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

from manymodels.config import Settings, load_settings

__all__ = ["base_parser", "settings_from", "setup_logging"]


def base_parser(step: str, description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every step takes."""
    parser = argparse.ArgumentParser(prog=f"manymodels {step}", description=description)
    parser.add_argument("--config-dir", default="pipelines", help="folder of pipeline YAML files")
    parser.add_argument("--env", default="dev", choices=("dev", "prod"), help="environment overlay")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
        help="override a setting, e.g. --set training.nn.epochs=3 (repeatable)",
    )  # fmt: skip
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(args.config_dir, args.env, args.overrides)


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date like 2024-05-27, got {text!r}") from exc


def setup_logging(level: int = logging.INFO) -> None:
    """Log plain messages to stdout (what a user and a CI log read), once per process."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("mlflow", "alembic", "urllib3", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
