"""Per-chunk cost of QC and validation on the backbone grid, against GE's own engine.

A command, not a test::

    .venv/bin/python bench/validation_bench.py              # 24 chunks of the scale-1 grid
    .venv/bin/python bench/validation_bench.py --chunks 48 --ge-chunks 3

It plans the benchmark grid (``bench/grid_bench.py`` makes it if missing) with the same recipe as
``haina run`` in the grid benchmark, reads ``--chunks`` time steps (280,000 wet cells each), and
times, per chunk, in this one process:

* **read** — the connector (netCDF slab to Arrow), the reference the others are compared with;
* **QC** — ``expectations.qc.apply.apply_qc`` (QARTOD flags, flag columns, statistics);
* **GE metrics (Haina)** — ``expectations.validation.arrow_metrics.chunk_metrics`` for every suite of the run: the
  exact metrics GE's expectation classes read, computed with NumPy/Arrow;
* **GE pandas engine** — the same suites validated by Great Expectations' own pandas engine on
  the same chunk (``ge_engine.ge_chunk_metrics``: ``to_pandas`` plus one GE validation), on
  ``--ge-chunks`` chunks because it is slow;
* **GE judgement** — once per run: GE's expectation classes evaluating the merged metrics
  (``expectations.validation.judgement.suite_results``), with GE already imported.

The whole-run share of QC and validation comes from ``grid_bench.py`` (configurations with them
on and off); this one explains it per chunk.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import grid_bench  # noqa: E402  (bench/ is on sys.path when run as a script)


def _timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, (time.perf_counter() - start) * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=24, help="time steps to measure")
    parser.add_argument("--ge-chunks", type=int, default=2,
                        help="of those, how many GE's pandas engine validates (slow)")
    parser.add_argument("--workdir", type=Path, default=grid_bench.DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)  # GE announces its temporary folders at INFO

    from expectations.validation import arrow_metrics, merge
    from expectations.validation.ge import engine as ge_engine
    from pipelines import driver as run_mod
    from pipelines import recipe as recipe_mod
    from pipelines.beam import steps

    params = grid_bench.GridParams()
    args.workdir.mkdir(parents=True, exist_ok=True)
    grid, _ = grid_bench.ensure_grid(args.workdir, params)
    recipe_path = args.workdir / "validation_bench.yaml"
    recipe_path.write_text(grid_bench.recipe_text("bench-validation", grid, "wh_validation", "on"))
    recipe = recipe_mod.load(recipe_path)
    runner = run_mod.Runner(recipe, warehouse=tempfile.mkdtemp())
    plans = run_mod.plan_sources(recipe, runner.match())
    read_schema = run_mod.dataset_schema(recipe, plans)
    schema, qc_plan = runner.with_qc(read_schema)
    suites = runner.suites(schema)
    from expectations.validation.checks import compile_checks
    checks = compile_checks(suites)
    chunks = [c for _, p in plans for c in p.chunks][:args.chunks]
    configs = list(recipe.sources)
    schemas = {p.uri: p.schema for _, p in plans}

    times: dict[str, list[float]] = {"read": [], "qc": [], "metrics": [], "ge_pandas": []}
    merged: dict = {}
    rows = 0
    for i, chunk in enumerate(chunks):
        out, ms = _timed(steps.read_chunk, chunk, configs, schemas, read_schema)
        times["read"].append(ms)
        out, ms = _timed(steps.qc_chunk, out, qc_plan, schema)
        times["qc"].append(ms)
        metrics, ms = _timed(arrow_metrics.chunk_metrics, out.table, checks, (0, chunk.uri, i))
        times["metrics"].append(ms)
        merged = merge.merge_metrics(merged, metrics)
        rows += out.table.num_rows
        if i < args.ge_chunks:
            _, ms = _timed(ge_engine.ge_chunk_metrics, out.table, suites)
            times["ge_pandas"].append(ms)
    import expectations.validation.judgement as results_mod  # GE import, not timed
    _, judge_ms = _timed(results_mod.suite_results, suites, merged)

    per_chunk = {k: statistics.median(v) for k, v in times.items() if v}
    print(f"{len(chunks)} chunks of {rows // len(chunks):,} rows; {len(suites)} suites, "
          f"{len(checks)} expectations; {len(qc_plan.variables)} variables under QC")
    print(f"{'step (median per chunk)':<34}{'ms':>10}{'vs read':>10}")
    labels = {"read": "read (connector)", "qc": "QC flags + statistics",
              "metrics": "GE metrics, Haina's arrow engine", "ge_pandas": "GE's own pandas engine"}
    for key, label in labels.items():
        if key in per_chunk:
            print(f"{label:<34}{per_chunk[key]:>10.1f}{per_chunk[key] / per_chunk['read']:>10.2f}")
    print(f"GE judgement of the merged metrics, once per run: {judge_ms:.0f} ms")
    if "ge_pandas" in per_chunk:
        print(f"GE's pandas engine costs {per_chunk['ge_pandas'] / per_chunk['metrics']:.0f}x "
              "Haina's metrics on the same chunk and suites")
    return 0


if __name__ == "__main__":
    sys.exit(main())
