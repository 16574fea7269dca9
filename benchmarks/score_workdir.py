"""A work folder of N partitions cut from a larger kept ``scale.py`` run, to benchmark the score
stage at several sizes without training again.

    python benchmarks/score_workdir.py --source /work/scale10k --partitions 1000 --out W
    python benchmarks/scale.py --partitions 1000 --reuse --keep --workdir W --stages score ...

Every ``(source partitions / N)``-th partition is taken (spread over the whole run, not its
first ones): its rows of ``conditioned/demand.parquet`` (one row group per partition, as
``scale_data`` writes them), with the source's manifest, ``bench-data.json`` and a copy of its
MLflow database. The champions' artifacts stay where the source's registry says they are (the
copy points at them; nothing there is written). The score stage reads the whole registry
listing as before, and scores only the partitions in the data.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

TABLE = Path("conditioned") / "demand.parquet"


def cut(source: Path, out: Path, partitions: int) -> int:
    """Write the work folder ``out`` (replaced) with ``partitions`` of ``source``'s; the
    number of rows written."""
    table = pq.ParquetFile(source / TABLE)
    groups = table.metadata.num_row_groups
    if not 0 < partitions <= groups:
        raise SystemExit(f"--partitions must be 1..{groups} (the source's partitions)")
    shutil.rmtree(out, ignore_errors=True)
    (out / TABLE.parent).mkdir(parents=True)
    step = groups / partitions
    rows = 0
    with pq.ParquetWriter(out / TABLE, table.schema_arrow) as writer:
        for i in range(partitions):
            group = table.read_row_group(int(i * step))
            writer.write_table(group)
            rows += group.num_rows
    shutil.copy(source / TABLE.parent / "manifest.json", out / TABLE.parent / "manifest.json")
    data = json.loads((source / "bench-data.json").read_text())
    data |= {"partitions": partitions, "rows": rows, "cut_from": str(source)}
    (out / "bench-data.json").write_text(json.dumps(data))
    for env in (source / "mlflow").iterdir():
        (out / "mlflow" / env.name).mkdir(parents=True)
        shutil.copy(env / "mlflow.db", out / "mlflow" / env.name / "mlflow.db")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="a kept scale.py work folder")
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="the new work folder (replaced)")
    args = parser.parse_args()
    rows = cut(args.source.resolve(), args.out.resolve(), args.partitions)
    print(f"{args.out}: {args.partitions} partitions, {rows} rows")


if __name__ == "__main__":
    main()
