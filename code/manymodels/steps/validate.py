"""Step ``validate``: judge the standard table and write a report; exit 1 when data is bad.

The report (``<workdir>/reports/validation.md`` and ``.json``) lists every finding with the
column, the declared source it comes from and example rows, so one run shows everything to fix.
The rules (``earliest_week``, ``max_units``, freshness relative to ``--as-of``, covariate ranges)
are settings in ``pipelines/data.yaml``.
"""

from __future__ import annotations

import logging

from manymodels.data.validate import has_errors, render_markdown, source_of, validate
from manymodels.io import write_json, write_text
from manymodels.steps import (
    add_data_option,
    as_of_date,
    base_parser,
    guarded,
    parse_date,
    settings_from,
    setup_logging,
)
from manymodels.steps.condition import TABLE, read_conditioned

__all__ = ["main"]

log = logging.getLogger(__name__)


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = base_parser("validate", __doc__)
    add_data_option(parser)
    parser.add_argument(
        "--as-of",
        type=parse_date,
        default=None,
        help="judge freshness on this date (default: today)",
    )
    args = parser.parse_args(argv)
    setup_logging()
    settings = settings_from(args)
    folder = args.data or settings.path("conditioned")
    table, manifest = read_conditioned(folder)
    as_of = as_of_date(args.as_of, settings)
    d = settings.data
    findings = validate(
        table,
        as_of,
        earliest_week=d.earliest_week,
        max_units=d.max_units,
        max_age_days=d.max_age_days,
        max_missing_week_share=d.max_missing_week_share,
        covariates=manifest.get("covariates"),
        ranges={
            c.name: (c.min, c.max)
            for src in settings.sources
            for c in src.covariates
            if c.min is not None or c.max is not None
        },
        week_starts=d.week_starts,
        sources=source_of(settings.sources),
    )
    summary = {
        "file": str(folder / TABLE),
        "data_version": manifest["data_version"],
        "rows": len(table),
        "weeks": f"{manifest['first_week']} .. {manifest['last_actual_week']}",
        "as_of": str(as_of),
        "data_uri": manifest.get("data_uri", ""),
        "mock data": manifest.get("mock", False),
        "covariates": ", ".join(f"{k} ({v})" for k, v in manifest.get("covariates", {}).items()),
        "new series": manifest.get("conditioning", {}).get("new_series", {}).get("count", 0),
        "discontinued series (not forecast)": manifest.get("conditioning", {})
        .get("discontinued_series", {})
        .get("count", 0),
    }
    reports = settings.path("reports")
    write_json(
        {"summary": summary, "findings": [f.as_dict() for f in findings]},
        reports / "validation.json",
    )
    write_text(render_markdown(findings, summary), reports / "validation.md")
    if has_errors(findings):
        for f in findings:
            example = f"; e.g. {f.rows[:2]}" if f.rows else ""  # whole-table findings: none
            log.error(
                "validate: %s: %s in column %r: %s%s",
                folder / TABLE,
                f.check,
                f.column,
                f.message,
                example,
            )
        log.error(
            "validate: FAILED with %d finding(s); report: %s",
            len(findings),
            reports / "validation.md",
        )
        return 1
    log.info(
        "validate: passed (%d rows, data version %s); report: %s",
        len(table),
        manifest["data_version"],
        reports / "validation.md",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
