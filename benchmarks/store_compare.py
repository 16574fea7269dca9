"""Two working folders' training compared (issue 12: cost work must not change what is logged):
the backtest metrics of ``runs/training.json`` bit for bit, and in the embedded MLflow stores
(read-only) every partition run's status, params, metrics (value and NaN flag), tags (ids, git
and user aside), dataset inputs and artifact files, every version's status, source path under
its run and tags (run ids and times aside), and the aliases::

    python benchmarks/store_compare.py /tmp/log5w/main200 /tmp/log5w/br200
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

IGNORED = {"mlflow.parentRunId", "git_sha", "git_branch", "mlflow.source.git.commit",
           "mlflow.source.name", "mlflow.user", "trained_at", "code_version"}  # fmt: skip


def _db(work: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{work}/mlflow/dev/mlflow.db?mode=ro", uri=True)


def runs(db: sqlite3.Connection) -> dict:
    out = {}
    listed = db.execute("SELECT run_uuid, name, status, artifact_uri FROM runs")
    for rid, name, status, artifacts in listed.fetchall():
        if name == "training":
            continue
        params = dict(db.execute("SELECT key, value FROM params WHERE run_uuid = ?", (rid,)))
        metrics = {k: (v, nan) for k, v, nan in db.execute(
            "SELECT key, value, is_nan FROM metrics WHERE run_uuid = ?", (rid,))}  # fmt: skip
        tagged = db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (rid,))
        tags = {k: v for k, v in tagged if k not in IGNORED}
        inputs = sorted(r[0] for r in db.execute(
            "SELECT d.name FROM inputs i JOIN datasets d ON i.source_id = d.dataset_uuid "
            "WHERE i.destination_id = ?", (rid,)))  # fmt: skip
        root = Path(artifacts.removeprefix("file://"))
        files = sorted(str(f.relative_to(root)) for f in root.rglob("*") if f.is_file())
        out[name] = {"status": status, "params": params, "metrics": metrics, "tags": tags,
                     "inputs": inputs, "files": files}  # fmt: skip
    return out


def registry(db: sqlite3.Connection) -> tuple[dict, dict, list]:
    listed = db.execute("SELECT name, version, status, source FROM model_versions")
    versions = {(n, int(v)): (status, source.rsplit("/artifacts/", 1)[-1])
                for n, v, status, source in listed}  # fmt: skip
    tags: dict = {}
    for n, v, k, value in db.execute("SELECT name, version, key, value FROM model_version_tags"):
        if k not in IGNORED and not k.endswith("run_id"):
            tags.setdefault((n, int(v)), {})[k] = value
    aliases = sorted(db.execute("SELECT name, alias, version FROM registered_model_aliases"))
    return versions, tags, aliases


def main(argv: list[str] | None = None) -> int:
    a, b = (Path(p) for p in (argv or sys.argv[1:]))
    trained = [json.loads((w / "runs" / "training.json").read_text())["partitions"] for w in (a, b)]
    metrics = [{p: v.get("metrics") for p, v in t.items()} for t in trained]
    ra, rb = (runs(_db(w)) for w in (a, b))
    differing = [p for p in ra if ra[p] != rb.get(p)]
    ga, gb = (registry(_db(w)) for w in (a, b))
    result = {
        "partitions": len(metrics[0]),
        "backtest_metric_values": sum(len(v or {}) for v in metrics[0].values()),
        "backtest_metrics_identical": metrics[0] == metrics[1],
        "runs": [len(ra), len(rb)],
        "runs_differing": len(differing),
        "first_difference": {
            k: [str(ra[differing[0]][k])[:300], str(rb.get(differing[0], {}).get(k))[:300]]
            for k in ra[differing[0]]
            if ra[differing[0]][k] != rb.get(differing[0], {}).get(k)
        }
        if differing
        else None,  # fmt: skip
        "versions": [len(ga[0]), len(gb[0])],
        "versions_identical": ga[0] == gb[0],
        "version_tags_identical": ga[1] == gb[1],
        "aliases": len(ga[2]),
        "aliases_identical": ga[2] == gb[2],
    }
    print(json.dumps(result, indent=1))
    same = not differing and all(v for k, v in result.items() if k.endswith("identical"))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
