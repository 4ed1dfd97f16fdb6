"""Benchmark: Haina's ``delimited`` connector against plain pyarrow and pandas CSV readers.

Builds a large station CSV in a temporary folder by repeating the body of the CMOP SATURN
salinity file (single-quoted PST times, a '#' URL comment, header ``'time PST', sandi... [psu]``)
and reads it, in the same run, three ways:

* ``pyarrow.csv.read_csv``: typed read only (no time-zone conversion, no row accounting);
* ``pandas.read_csv``: the same, with the C engine;
* Haina: ``DelimitedText.plan`` + ``read`` of every chunk (line scan, quarantine bookkeeping,
  PST -> UTC, units metadata, canonical schema).

Usage: ``python bench/station_csv_bench.py [--rows 3000000] [--chunk-mib 64] [--repeat 3]``.
Prints rows/s of each reader (best of ``--repeat``) and Haina's ratio to each baseline.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402

from connectors.text.delimited import DelimitedConfig, DelimitedText  # noqa: E402

SOURCE = REPO / ".." / "shared" / "data" / "station_timeseries" / \
    "cmop_attenuated_salinity_example.csv"
CONFIG = {
    "kind": "delimited", "quote_char": "'", "comment": "#", "station_id": "sandi",
    "time": {"columns": "time PST", "format": "%Y-%m-%d %H:%M:%S", "timezone": "Etc/GMT+8"},
    "variables": {"sandi.790.A.CTD": {"name": "sea_water_practical_salinity"}},
}


def build(target: Path, rows: int) -> int:
    """Write the CMOP head once and its body repeated until ``rows`` data lines; return rows."""
    lines = SOURCE.read_bytes().splitlines(keepends=True)
    head, body = b"".join(lines[:2]), b"".join(lines[2:])
    per_copy = len(lines) - 2
    copies = max(1, rows // per_copy)
    with open(target, "wb") as out:
        out.write(head)
        for _ in range(copies):  # repeats a whole file body, not rows
            out.write(body)
    return copies * per_copy


def read_pyarrow(path: Path) -> int:
    table = pacsv.read_csv(
        path, read_options=pacsv.ReadOptions(skip_rows=1),
        parse_options=pacsv.ParseOptions(quote_char="'"),
        convert_options=pacsv.ConvertOptions(column_types={"time PST": pa.timestamp("us")}))
    return table.num_rows


def read_pandas(path: Path) -> int:
    frame = pd.read_csv(path, comment="#", quotechar="'", skipinitialspace=True,
                        parse_dates=["time PST"], engine="c")
    return len(frame)


def read_haina(path: Path, chunk_mib: int) -> int:
    connector = DelimitedText()
    config = DelimitedConfig.model_validate({**CONFIG, "uri": str(path),
                                             "chunk_bytes": chunk_mib * 2**20})
    plan = connector.plan(config, str(path), "0" * 64, path.stat().st_size)
    rows = 0
    for chunk in plan.chunks:  # sequential on purpose: one worker's throughput
        result = connector.read(config, chunk, plan.schema)
        assert result.rows_in == result.table.num_rows + result.rows_quarantined
        rows += result.table.num_rows
    return rows


def best_of(repeat: int, func, *args) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        rows = func(*args)
        best = min(best, time.perf_counter() - start)
    return best, rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--chunk-mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if not SOURCE.exists():
        sys.exit(f"source file not found: {SOURCE} (expected ../shared/data next to the repo)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cmop_big.csv"
        rows = build(path, args.rows)
        size = path.stat().st_size
        print(f"file: {rows:,} rows, {size / 2**20:.1f} MiB; chunk {args.chunk_mib} MiB; "
              f"best of {args.repeat}")
        results = {
            "pyarrow.csv.read_csv": best_of(args.repeat, read_pyarrow, path),
            "pandas.read_csv": best_of(args.repeat, read_pandas, path),
            "haina DelimitedText": best_of(args.repeat, read_haina, path, args.chunk_mib),
        }
    for name, (seconds, got) in results.items():
        assert got == rows, f"{name} read {got} rows, expected {rows}"
        print(f"{name:24s} {seconds:7.3f} s  {rows / seconds / 1e6:7.2f} M rows/s  "
              f"{size / seconds / 2**20:7.1f} MiB/s")
    haina = results["haina DelimitedText"][0]
    for name in ("pyarrow.csv.read_csv", "pandas.read_csv"):
        print(f"haina time / {name} time = {haina / results[name][0]:.2f}")


if __name__ == "__main__":
    main()
