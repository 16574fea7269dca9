"""The ``manymodels`` command: ``manymodels <step> [options]`` runs one step,
``manymodels run <pipeline>`` runs a pipeline's steps in the order its YAML lists them, and
``manymodels demo`` runs everything on fresh mock data with the embedded defaults.

Step modules are imported only when called, so ``manymodels --help`` does not pay for torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from manymodels.config import ConfigError, load_settings
from manymodels.steps import setup_logging

__all__ = ["STEPS", "main", "run_pipeline"]

log = logging.getLogger(__name__)

STEPS = {
    "mock": "write seeded mock raw sources",
    "condition": "raw sources -> standard table + manifest",
    "validate": "check the standard table; report; exit 1 on bad data",
    "partition": "split the table into one file per partition",
}


def run_step(step: str, argv: list[str]) -> int:
    if step not in STEPS:
        raise ConfigError(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
    module = importlib.import_module(f"manymodels.steps.{step}")
    return int(module.main(argv) or 0)


def run_pipeline(pipeline: str, common: list[str], config_dir: str = "pipelines", env: str = "dev",
                 overrides: tuple[str, ...] = ()) -> int:  # fmt: skip
    """Run the steps ``pipelines/<pipeline>.yaml`` lists, stopping at the first that fails."""
    settings = load_settings(config_dir, env, overrides)
    section = getattr(settings, pipeline, None)
    if section is None or not hasattr(section, "steps"):
        raise ConfigError(f"no pipeline {pipeline!r} in {config_dir}/ (known: training, scoring)")
    for step in section.steps:
        log.info("== %s: %s", pipeline, step)
        code = run_step(step, common)
        if code:
            log.error("%s pipeline stopped: step %r exited with %d", pipeline, step, code)
            return code
    return 0


def demo(common: list[str], config_dir: str, env: str, overrides: tuple[str, ...]) -> int:
    """Mock data, then the training pipeline."""
    code = run_step("mock", common)
    return code or run_pipeline("training", common, config_dir, env, overrides)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="manymodels", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for step, text in STEPS.items():
        sub.add_parser(step, help=text, add_help=False)
    for name, text in (
        ("run", "run a pipeline: training | scoring"),
        ("demo", "mock data + all pipelines"),
    ):
        p = sub.add_parser(name, help=text)
        if name == "run":
            p.add_argument("pipeline")
        p.add_argument("--config-dir", default="pipelines")
        p.add_argument("--env", default="dev", choices=("dev", "prod"))
        p.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    if argv and argv[0] in STEPS:
        setup_logging()
        try:
            return run_step(argv[0], argv[1:])
        except ConfigError as exc:
            log.error("%s", exc)
            return 2
    args = parser.parse_args(argv)
    setup_logging()
    common = ["--config-dir", args.config_dir, "--env", args.env]
    for item in args.overrides:
        common += ["--set", item]
    try:
        if args.command == "run":
            return run_pipeline(
                args.pipeline, common, args.config_dir, args.env, tuple(args.overrides)
            )
        return demo(common, args.config_dir, args.env, tuple(args.overrides))
    except ConfigError as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
