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
from manymodels.profiles import profile_overrides
from manymodels.steps import setup_logging

__all__ = ["STEPS", "main", "run_pipeline"]

log = logging.getLogger(__name__)

STEPS = {
    "mock": "write seeded mock raw sources",
    "condition": "raw sources -> standard table + manifest",
    "validate": "check the standard table; report; exit 1 on bad data",
    "partition": "split the table into one file per partition",
    "train": "fit baseline + ensemble per partition in parallel; log to MLflow",
    "evaluate": "gate each candidate against the MAPE target, the baseline and the champion",
    "register": "register passing models as versions aliased 'challenger'",
    "promote": "challenger -> champion in dev, or (--to prod) copy dev champions to prod",
    "rollback": "give a partition its previous champion back",
    "score": "batch forecasts with each partition's champion",
    "init": "turn the template into a new project: names, registry, cloud resources",
    "doctor": "what a fork still has to set up: GitHub variables, environments, OIDC",
    "serve": "online forecast API: models loaded by alias on demand (docs/serving.md)",
    "monitor": "forecasts vs actuals, drift, stale models, data quality; alerts and dashboard",
    "e2e": "training in dev, promote to prod, scoring in prod, in one process (make e2e)",
}


def run_step(step: str, argv: list[str]) -> int:
    if step not in STEPS:
        raise ConfigError(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
    module = importlib.import_module(f"manymodels.steps.{step}")
    return int(module.main(argv) or 0)


def run_pipeline(
    pipeline: str,
    common: list[str],
    config_dir: str = "pipelines",
    env: str = "dev",
    overrides: tuple[str, ...] = (),
) -> int:
    """Run the steps ``pipelines/<pipeline>.yaml`` lists, stopping at the first that fails."""
    settings = load_settings(config_dir, env, overrides)
    section = getattr(settings, pipeline, None)
    if section is None or not hasattr(section, "steps"):
        raise ConfigError(f"no pipeline {pipeline!r} in {config_dir}/ (known: training, scoring)")
    for entry in section.steps:
        step, *extra = entry.split()  # an entry may carry options: "promote --to prod"
        log.info("== %s: %s", pipeline, entry)
        code = run_step(step, [*extra, *common])
        if code:
            log.error("%s pipeline stopped: step %r exited with %d", pipeline, step, code)
            return code
    return 0


def demo(common: list[str], config_dir: str, overrides: tuple[str, ...]) -> int:
    """Mock data up to 8 weeks ago; train, gate, register and promote in dev; copy to prod; score
    in prod; then the weeks that followed arrive (one region drifted: see
    :mod:`manymodels.monitoring.demo`), scoring runs again, and monitoring compares what was
    served with what sold."""
    import datetime as dt  # noqa: PLC0415

    from manymodels.monitoring import demo as monitoring_demo  # noqa: PLC0415
    from manymodels.steps.mock import weeks_until  # noqa: PLC0415

    settings = load_settings(config_dir, "dev", overrides)
    total = settings.mock.weeks or weeks_until(settings.mock.start, dt.date.today())
    rounds = monitoring_demo.rounds(total, settings.mock.start)

    def at(args: list[str], day: dt.date) -> list[str]:
        return [*args, "--set", f"data.as_of={day}"]

    def pipeline(name: str, env: str, day: dt.date) -> int:
        more = (*overrides, f"data.as_of={day}")
        return run_pipeline(name, at([*common, "--env", env], day), config_dir, env, more)

    def arrive(weeks: int) -> int:  # the weeks that followed, with one region drifted
        code = run_step("mock", [*common, "--env", "prod", "--weeks", str(weeks)])
        if not code:
            # the drift starts after the last scoring date: its forecasts meet the changed weeks
            since = rounds[-2][1]
            region = monitoring_demo.drift_raw(settings.path("raw"), since)
            log.info("demo: %d weeks of data; %s drifted since %s", weeks, region, since)
        return code

    (start_weeks, first), *later = rounds
    stages = [
        lambda: run_step("mock", [*common, "--env", "dev", "--weeks", str(start_weeks)]),
        lambda: pipeline("training", "dev", first),
        lambda: run_step("promote", ["--to", "prod", *common, "--env", "prod"]),
        lambda: pipeline("scoring", "prod", first),
    ]
    for i, (weeks, day) in enumerate(later):
        last = i == len(later) - 1
        stages += [
            lambda weeks=weeks: arrive(weeks),
            lambda day=day, last=last: pipeline("monitoring" if last else "scoring", "prod", day),
        ]
    for stage in stages:
        code = stage()
        if code:
            return code
    log.info(
        "demo: the monitoring dashboard is %s (open it in a browser)",
        settings.path("monitoring", "dashboard.html").resolve(),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="manymodels", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for step, text in STEPS.items():
        sub.add_parser(step, help=text, add_help=False)
    for name, text in (
        ("run", "run a pipeline: training | scoring | monitoring"),
        ("demo", "mock data + all pipelines"),
    ):
        p = sub.add_parser(name, help=text)
        if name == "run":
            p.add_argument("pipeline")
        p.add_argument("--config-dir", default="pipelines")
        p.add_argument("--env", default="dev", choices=("dev", "prod"))
        p.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
        p.add_argument("--profile", action="append", default=[], dest="profiles", metavar="FILE")
        p.add_argument("--local", action="store_true", help="embedded MLflow stores only")
    if argv and argv[0] in STEPS:
        setup_logging()
        try:
            return run_step(argv[0], argv[1:])
        except ConfigError as exc:
            log.error("%s", exc)
            return 2
    args = parser.parse_args(argv)
    setup_logging()
    try:  # a profile's keys as --set items, before the command line's own
        profiled = profile_overrides(*args.profiles)
        args.overrides = [*profiled, *args.overrides]
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    common = ["--config-dir", args.config_dir, *(["--local"] if args.local else [])]
    for item in args.overrides:
        common += ["--set", item]
    try:
        if args.command == "run":
            env_args = [*common, "--env", args.env]
            return run_pipeline(
                args.pipeline, env_args, args.config_dir, args.env, tuple(args.overrides)
            )
        return demo(common, args.config_dir, tuple(args.overrides))
    except ConfigError as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
