"""Step ``e2e``: the PR check's chain in one process (what ``make e2e`` runs).

``manymodels e2e --local --set project.workdir=W ...`` runs the training pipeline in dev, copies
the dev champions into prod (``promote --to prod``) and runs the scoring pipeline in prod, the
same stages, in the same order and with the same options, as the three commands ``make e2e``
ran before (and as ``manymodels demo`` starts with), stopping at the first that fails. One
process imports torch, MLflow and scikit-learn once instead of three times (~6 CPU-s per run).
Every ``--set`` (and ``--profile``) goes to each stage (the promotion ignores the training and
mock keys).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from manymodels.cli import run_pipeline, run_step
from manymodels.profiles import profile_overrides
from manymodels.steps import setup_logging

__all__ = ["main"]

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="manymodels e2e", description=__doc__)
    parser.add_argument("--config-dir", default="pipelines")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    parser.add_argument("--profile", action="append", default=[], dest="profiles", metavar="FILE")
    parser.add_argument("--local", action="store_true", help="embedded MLflow stores only")
    args = parser.parse_args(argv)
    setup_logging()
    args.overrides = [*profile_overrides(*args.profiles), *args.overrides]
    common = ["--config-dir", args.config_dir, *(["--local"] if args.local else [])]
    for item in args.overrides:
        common += ["--set", item]
    overrides = tuple(args.overrides)

    def pipeline(name: str, env: str) -> Callable[[], int]:
        return lambda: run_pipeline(name, [*common, "--env", env], args.config_dir, env, overrides)

    to_prod = ["--to", "prod", *common, "--env", "prod"]
    stages = [
        ("training in dev", pipeline("training", "dev")),
        ("promote to prod", lambda: run_step("promote", to_prod)),
        ("scoring in prod", pipeline("scoring", "prod")),
    ]
    for name, stage in stages:
        log.info("== e2e: %s", name)
        code = stage()
        if code:
            log.error("e2e stopped: %s exited with %d", name, code)
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
