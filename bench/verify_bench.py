"""``haina verify`` throughput against ``sha256sum`` on the same multi-GB version.

    .venv/bin/python bench/verify_bench.py [--gb 3] [--files 24] [--workdir DIR] [--keep]

1. writes a version of ``--files`` Parquet files of random float32 data (incompressible, so the
   bytes on disk are what is hashed) with ``catalog.storage.writer.write_table``, and commits it to a
   SQLite catalog with its manifest, as a run would;
2. for each method, drops the page cache first (``/proc/sys/vm/drop_caches``; needs root,
   otherwise every method runs warm and the output says so), then times:
   ``verify_version`` with 1 worker, with the default workers, and ``sha256sum`` over the files;
3. prints seconds, MB/s and the ratio to ``sha256sum``, and writes them as JSON.

``openssl dgst -sha256`` is timed too: coreutils ``sha256sum`` may not use the CPU's SHA
instructions while Python's hashlib (OpenSSL) does, so it is the fairer floor for hashing.

``verify_version`` does more than ``sha256sum``: it also parses every footer, compares with the
manifest and the catalog, lists the folder for strays and checks lineage.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from catalog.storage import manifest as manifest_mod  # noqa: E402 - after the sys.path line
from catalog.storage import verify, writer  # noqa: E402
from catalog.store import (  # noqa: E402
    DatasetRecord,
    RunRecord,
    SourceRecord,
    VersionRecord,
    new_run_id,
    new_version_id,
    open_catalog,
)

DEFAULT_WORKDIR = REPO / "bench" / "out" / "verify"
COLUMNS = 8
SOURCE_SHA = "5" * 64
RAW = writer.WriteOptions(compression="none", compression_level=None, dictionary_columns=(),
                          byte_stream_split_columns=())


def _table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2025-07-01T00:00", "us")
    cols = {"time": pa.array(start + np.arange(rows) * np.timedelta64(1, "s"),
                             pa.timestamp("us", tz="UTC"))}
    for c in range(COLUMNS):
        cols[f"v{c}"] = pa.array(rng.random(rows, dtype=np.float32))
    return pa.table(cols)


def make_version(root: Path, gb: float, n_files: int):
    catalog = open_catalog(f"sqlite:///{root / 'catalog.db'}")
    catalog.ensure_dataset(DatasetRecord(name="bench"))
    run_id, version_id = new_run_id(), new_version_id()
    sources = [SourceRecord(run_id, "/bench/source", SOURCE_SHA, 1, "bench")]
    catalog.begin_run(RunRecord(run_id=run_id, dataset="bench"), sources)
    folder = root / "datasets" / "bench" / "versions" / version_id
    rows = int(gb * 2**30 / n_files / (4 * COLUMNS + 8))
    kv = writer.footer_metadata("bench", version_id, run_id)
    files = []
    for i in range(n_files):
        rel = f"data/date=2025-07-01/part-{i:04d}.parquet"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        written = writer.write_table(_table(rows, i), str(folder / rel), kv_metadata=kv,
                                     options=dataclasses.replace(RAW, row_group_rows=rows // 4))
        files.append(written.record(rel, "date=2025-07-01", SOURCE_SHA))
    version = VersionRecord(version_id=version_id, dataset="bench", run_id=run_id,
                            path=str(folder), manifest_sha256="", rows=sum(f.rows for f in files),
                            bytes=sum(f.bytes for f in files), file_count=len(files))
    manifest = manifest_mod.Manifest.build(DatasetRecord(name="bench"), version,
                                           catalog.run(run_id), files, sources,
                                           _table(1, 0).schema, {})
    _uri, sha = manifest.write(str(folder))
    version = dataclasses.replace(version, manifest_sha256=sha)
    catalog.commit_version(version, files)
    return catalog, version, [str(folder / f.path) for f in files]


def drop_caches() -> bool:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(args) -> dict:
    root = Path(args.workdir)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    catalog, version, paths = make_version(root, args.gb, args.files)
    size = sum(os.path.getsize(p) for p in paths)
    print(f"wrote {len(paths)} files, {size / 1e9:.2f} GB in {time.perf_counter() - t0:.0f} s")

    def haina(workers):
        def go():
            report = verify.verify_version(catalog, "bench", version.version_id, workers=workers)
            assert report.ok, report.mismatches
        return go

    def sha256sum():
        subprocess.run(["sha256sum", *paths], check=True, stdout=subprocess.DEVNULL)

    def openssl():  # OpenSSL's SHA-256 (SHA-NI where the CPU has it), as hashlib uses
        subprocess.run(["openssl", "dgst", "-sha256", *paths], check=True,
                       stdout=subprocess.DEVNULL)

    methods = {"sha256sum": sha256sum, "haina verify, 1 worker": haina(1),
               f"haina verify, {min(8, os.cpu_count() or 1)} workers": haina(None)}
    if shutil.which("openssl"):
        methods["openssl dgst -sha256"] = openssl
    results = []
    for cache in ("cold", "warm"):
        for name, fn in methods.items():
            if cache == "warm":
                fn()  # read once so the page cache holds the files
            dropped = drop_caches() if cache == "cold" else False
            seconds = timed(fn)
            results.append({"method": name, "cache": cache if cache == "warm" or dropped
                            else "warm (could not drop caches)", "seconds": seconds,
                            "MB_per_s": size / 1e6 / seconds})
    for cache in {r["cache"] for r in results}:
        base = next(r for r in results if r["cache"] == cache and r["method"] == "sha256sum")
        for r in results:
            if r["cache"] == cache:
                r["ratio_to_sha256sum"] = base["seconds"] / r["seconds"]
    out = {"bytes": size, "files": len(paths), "cpus": os.cpu_count(),
           "machine": platform.platform(), "results": results}
    if not args.keep:
        catalog.close()
        shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=3.0)
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--workdir", default=str(DEFAULT_WORKDIR))
    parser.add_argument("--keep", action="store_true", help="keep the generated version")
    args = parser.parse_args()
    out = run(args)
    print(f"{'method':34} {'cache':6} {'s':>7} {'MB/s':>7} {'x sha256sum':>11}")
    for r in out["results"]:
        print(f"{r['method']:34} {r['cache'][:6]:6} {r['seconds']:7.2f} {r['MB_per_s']:7.0f} "
              f"{r['ratio_to_sha256sum']:11.2f}")
    result_file = REPO / "bench" / "out" / "verify_bench.json"
    result_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.write_text(json.dumps(out, indent=2) + "\n")
    print(f"results: {result_file}")


if __name__ == "__main__":
    main()
