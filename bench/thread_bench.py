"""Benchmark: what worker threads buy on a multi-file grid now that HDF5 calls are serialised.

    .venv/bin/python bench/thread_bench.py [--days 30] [--repeat 3] [--workers 1 2 4]
                                           [--baseline-tree DIR] [--workdir DIR]

Generates the demo grid (``examples/qingdao_demo.py``, ``--days`` daily files) once, then runs
``haina run --full`` on it with each ``--workers`` value, interleaved (1 2 4 1 2 4 ...) because
the machine is noisy. Every run is a fresh subprocess and a fresh warehouse; wall seconds come
from a monotonic clock and CPU seconds (user + system, the whole process tree) from
``os.wait4``. Ratios are against ``--workers 1`` measured in the same session.

``--baseline-tree DIR`` adds runs of another checkout (e.g. a ``git worktree`` of the commit
before the HDF5 lock) with the same worker counts, put first on ``PYTHONPATH``; runs that crash
are counted, not timed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def recipe(folder: Path) -> Path:
    text = (REPO / "recipes" / "demo.yaml").read_text()
    text = text.replace("../demo-data/qingdao_coastal_*.nc", str(folder / "data" / "*.nc"))
    path = folder / "demo.yaml"
    path.write_text(text)
    return path


def run_once(recipe_path: Path, warehouse: Path, workers: int, tree: str | None) -> dict:
    shutil.rmtree(warehouse, ignore_errors=True)
    env = {**os.environ, "HAINA_WAREHOUSE": str(warehouse)}
    if tree:
        env["PYTHONPATH"] = tree
    cmd = [sys.executable, "-m", "pipelines.cli.app", "run", str(recipe_path), "--full",
           "--workers", str(workers)]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=tree or REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    return {"workers": workers, "tree": tree or "this", "exit": code, "wall_s": round(wall, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "error": stderr.strip().splitlines()[-1][:200] if code else ""}


def summarise(results: list[dict]) -> list[dict]:
    rows = []
    for tree in dict.fromkeys(r["tree"] for r in results):
        ok = {w: [r for r in results if r["tree"] == tree and r["workers"] == w and r["exit"] == 0]
              for w in dict.fromkeys(r["workers"] for r in results)}
        base = statistics.median(r["wall_s"] for r in ok.get(1, [])) if ok.get(1) else None
        for workers, runs in ok.items():
            total = sum(1 for r in results if r["tree"] == tree and r["workers"] == workers)
            wall = statistics.median(r["wall_s"] for r in runs) if runs else None
            cpu = statistics.median(r["cpu_s"] for r in runs) if runs else None
            rows.append({"tree": tree, "workers": workers, "ok": f"{len(runs)}/{total}",
                         "median_wall_s": wall, "median_cpu_s": cpu,
                         "speedup_vs_1_worker": round(base / wall, 2) if base and wall else None})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--baseline-tree", default=None)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "threads")
    args = parser.parse_args(argv)

    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / "data"
    if len(list(data.glob("*.nc"))) != args.days:
        shutil.rmtree(data, ignore_errors=True)
        sys.path.insert(0, str(REPO))
        from examples.qingdao_demo import generate
        generate(data, days=args.days)
    recipe_path = recipe(args.workdir)
    trees = [None] + ([str(Path(args.baseline_tree).resolve())] if args.baseline_tree else [])
    results = []
    for round_ in range(args.repeat):
        for tree in trees:
            for workers in args.workers:
                result = run_once(recipe_path, args.workdir / "warehouse", workers, tree)
                results.append(result)
                print(json.dumps({"round": round_, **result}), flush=True)
    summary = summarise(results)
    for row in summary:
        print(json.dumps(row))
    (args.workdir / "thread_bench.json").write_text(json.dumps(
        {"days": args.days, "runs": results, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
