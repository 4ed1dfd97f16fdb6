"""Benchmark: Haina's ``ais_nmea`` reader against pyais alone, on the same lines.

    .venv/bin/python bench/ais_bench.py [--lines 200000] [--repeat 3]

Builds a large NMEA file in a temporary folder by repeating the real pyais sample
(``../shared/data/ais/pyais_nmea_data_sample.txt``), then measures in the same run:

(a) pyais alone: ``pyais.stream.FileReaderStream`` (its own sentence parsing and multi-part
    assembly) and ``decode().asdict()`` for every message, the usual way to get dicts out of pyais;
(b) Haina: ``AisNmea.read`` on the whole file as one chunk (framing, checksums, reassembly,
    pyais payload decoding, n/a clean-up, static join, Arrow table).

Prints messages per second for each and the ratio. The best of ``--repeat`` runs is reported, in CPU and in wall time.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pyais.exceptions import MissingPayloadException
from pyais.stream import FileReaderStream

from connectors.ais.nmea import AisNmea, AisNmeaConfig

SAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ais" / \
    "pyais_nmea_data_sample.txt"


def build_input(folder: Path, n_lines: int) -> Path:
    lines = SAMPLE.read_bytes().splitlines()
    repeated = (lines * (n_lines // len(lines) + 1))[:n_lines]
    path = folder / "ais_bench.nmea"
    path.write_bytes(b"\n".join(repeated) + b"\n")
    return path


def run_pyais(path: Path) -> int:
    decoded = 0
    for sentence in FileReaderStream(str(path)):
        try:
            sentence.decode().asdict()
        except MissingPayloadException:
            continue
        decoded += 1
    return decoded


def run_haina(path: Path) -> int:
    connector = AisNmea()
    config = AisNmeaConfig(uri=str(path), chunk_bytes=1 << 30)
    plan = connector.plan(config, str(path), "bench", path.stat().st_size)
    (chunk,) = plan.chunks
    result = connector.read(config, chunk, plan.schema)
    assert result.rows_in == result.table.num_rows + result.quarantine.num_rows
    return result.table.num_rows


def best_time(func, path: Path, repeat: int) -> tuple[float, float, int]:
    """Best CPU time and best wall time of ``repeat`` runs (CPU time is the fair number on a
    shared machine, where wall time includes waiting for a core)."""
    cpu, wall, count = float("inf"), float("inf"), 0
    for _ in range(repeat):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        count = func(path)
        cpu = min(cpu, time.process_time() - start_cpu)
        wall = min(wall, time.perf_counter() - start_wall)
    return cpu, wall, count


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = build_input(Path(folder), args.lines)
        print(f"input: {args.lines} lines, {path.stat().st_size / 1e6:.1f} MB "
              f"(pyais sample repeated)")
        cpu_a, wall_a, n_pyais = best_time(run_pyais, path, args.repeat)
        cpu_b, wall_b, n_haina = best_time(run_haina, path, args.repeat)
    if n_pyais != n_haina:
        raise SystemExit(f"message counts differ: pyais {n_pyais}, haina {n_haina}")
    for label, n, cpu, wall in (("(a) pyais stream + decode + asdict", n_pyais, cpu_a, wall_a),
                                ("(b) Haina AisNmea.read -> Arrow   ", n_haina, cpu_b, wall_b)):
        print(f"{label}: {n} messages, CPU {cpu:.2f} s = {n / cpu:,.0f} msg/s "
              f"(wall {wall:.2f} s = {n / wall:,.0f} msg/s)")
    print(f"ratio haina/pyais throughput: {cpu_a / cpu_b:.2f}x CPU, {wall_a / wall_b:.2f}x wall")


if __name__ == "__main__":
    main()
