"""Backbone benchmark: a reanalysis-like netCDF grid to Parquet, plain pyarrow vs ``haina run``.

    .venv/bin/python bench/grid_bench.py [--scale 1|4] [--time N] [--workdir DIR] [--keep]
                                         [--repeat N] [--workers2] [--only KEYS]

1. generates (once; reused while its parameters match) a seeded grid time × 10 depths × 200 lat ×
   200 lon with four float32 variables and 30 % land, zlib level 4, one HDF5 chunk per time step;
2. converts it with a *plain* numpy + pyarrow loop in a fresh subprocess (the floor Haina is
   compared with);
3. runs ``haina run`` on a recipe for the same file, with validation on and off;
4. prints seconds, rows/s, ratio to plain, peak RSS and output size, and writes them as JSON.

Every configuration runs in its own subprocess so that its peak RSS is its own: ``os.wait4``
returns the rusage of exactly that child (``ru_maxrss`` = the largest process in its tree), and a
/proc sampler adds the summed RSS of the whole tree, which matters when Beam forks workers.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORKDIR = REPO / "bench" / "out"
COORDS = ("time", "depth", "latitude", "longitude")
TIME_UNITS = "days since 1950-01-01"
#: 2020-01-01 in days since 1950-01-01: the grid starts on a round date
FIRST_DAY = 25567
DEPTHS = (0.494, 5.08, 10.5, 21.6, 47.4, 97.0, 200.3, 508.6, 1062.4, 2225.1)
VARIABLES = {
    "thetao": ("sea_water_potential_temperature", "degC", "Sea water potential temperature"),
    "so": ("sea_water_salinity", "1e-3", "Sea water salinity"),
    "uo": ("eastward_sea_water_velocity", "m s-1", "Eastward velocity"),
    "vo": ("northward_sea_water_velocity", "m s-1", "Northward velocity"),
}
FILL = np.float32(1.0e20)
MIB = 1024 * 1024


class BenchError(RuntimeError):
    """A benchmark step failed; the message names the command and its log file."""


# --------------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GridParams:
    n_time: int = 240
    n_depth: int = len(DEPTHS)
    n_lat: int = 200
    n_lon: int = 200
    land_fraction: float = 0.3
    seed: int = 20240601
    zlib_level: int = 4

    def cells(self) -> int:
        return self.n_time * self.n_depth * self.n_lat * self.n_lon

    def file_name(self) -> str:
        return f"grid_t{self.n_time}_{self.n_depth}x{self.n_lat}x{self.n_lon}.nc"

    def as_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


@dataclasses.dataclass(frozen=True)
class Static:
    """Everything that does not change with time, computed once (a few MB)."""

    lat: np.ndarray        # (lat,)
    lon: np.ndarray        # (lon,)
    depth: np.ndarray      # (depth,)
    land: np.ndarray       # (lat, lon) bool
    y: np.ndarray          # (1, lat, 1) radians-ish phase coordinates for the smooth fields
    x: np.ndarray          # (1, 1, lon)
    z: np.ndarray          # (depth, 1, 1) metres
    eddy_phase: np.ndarray  # (n_eddies, 3): kx, ky, phase


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cutoff: float) -> np.ndarray:
    """White noise low-passed in Fourier space: a smooth random field (coastlines, blobs)."""
    spectrum = np.fft.rfft2(rng.standard_normal(shape))
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    spectrum *= np.exp(-(kx**2 + ky**2) / (2 * cutoff**2))
    return np.fft.irfft2(spectrum, s=shape)


def land_mask(params: GridParams, rng: np.random.Generator) -> np.ndarray:
    """A smooth coastline covering exactly ``land_fraction`` of the cells (ties aside)."""
    field = smooth_noise(rng, (params.n_lat, params.n_lon), cutoff=0.02)
    return field >= np.quantile(field, 1.0 - params.land_fraction)


def static_fields(params: GridParams) -> Static:
    rng = np.random.default_rng(params.seed)
    lat = 20.05 + 0.1 * np.arange(params.n_lat)
    lon = -79.95 + 0.1 * np.arange(params.n_lon)
    depth = np.asarray(DEPTHS[: params.n_depth], dtype="f8")
    eddies = np.column_stack([rng.uniform(2, 9, 6), rng.uniform(2, 9, 6), rng.uniform(0, 6.3, 6)])
    return Static(
        lat=lat, lon=lon, depth=depth, land=land_mask(params, rng),
        y=np.linspace(0, 1, params.n_lat)[None, :, None],
        x=np.linspace(0, 1, params.n_lon)[None, None, :],
        z=depth[:, None, None], eddy_phase=eddies,
    )


def streamfunction_velocity(s: Static, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Geostrophic-like currents: u = -dpsi/dy, v = dpsi/dx of drifting sinusoidal eddies."""
    u = np.zeros((1, s.y.shape[1], s.x.shape[2]))
    v = np.zeros_like(u)
    for kx, ky, phase in s.eddy_phase:  # six eddies, each a whole-array operation
        arg = kx * s.x + ky * s.y + phase - 0.05 * t
        u = u - 0.05 * ky * np.cos(arg)
        v = v + 0.05 * kx * np.cos(arg)
    decay = np.exp(-s.z / 400.0)
    return u * decay, v * decay


def fields_at(params: GridParams, s: Static, t: int) -> dict[str, np.ndarray]:
    """Four (depth, lat, lon) float32 fields for time step ``t``, NaN on land."""
    rng = np.random.default_rng([params.seed, t])  # per step: any step is reproducible alone
    shape = (params.n_depth, params.n_lat, params.n_lon)
    season = np.cos(2 * np.pi * (t - 225) / 365.0)
    surface = 28.0 - 10.0 * s.y + 2.0 * season + 0.8 * np.sin(6 * s.x + 4 * s.y - 0.03 * t)
    thetao = 4.0 + (surface - 4.0) * np.exp(-s.z / 350.0)
    so = 34.6 + 1.4 * np.exp(-s.z / 500.0) * (1 - s.y) + 0.2 * np.cos(5 * s.x - 0.02 * t)
    uo, vo = streamfunction_velocity(s, t)
    noise = {"thetao": 0.02, "so": 0.005, "uo": 0.01, "vo": 0.01}
    out = {}
    for name, smooth in (("thetao", thetao), ("so", so), ("uo", uo), ("vo", vo)):
        values = np.broadcast_to(smooth, shape) + noise[name] * rng.standard_normal(shape)
        out[name] = np.where(s.land[None], np.nan, values).astype("f4")
    return out


def _define(ds, params: GridParams, s: Static) -> None:
    ds.createDimension("time", None)
    ds.createDimension("depth", params.n_depth)
    ds.createDimension("latitude", params.n_lat)
    ds.createDimension("longitude", params.n_lon)
    ds.setncatts({"Conventions": "CF-1.8", "title": "Haina benchmark grid (synthetic)",
                  "institution": "Haina", "source": "bench/grid_bench.py (seeded, synthetic)",
                  "licence": "CC0-1.0", "haina_bench_params": params.as_json()})
    coords = {
        "time": ("f8", {"standard_name": "time", "units": TIME_UNITS, "calendar": "standard",
                        "axis": "T"}),
        "depth": ("f4", {"standard_name": "depth", "units": "m", "positive": "down", "axis": "Z"}),
        "latitude": ("f4", {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"}),
        "longitude": ("f4", {"standard_name": "longitude", "units": "degrees_east", "axis": "X"}),
    }
    for name, (dtype, attrs) in coords.items():
        ds.createVariable(name, dtype, (name,)).setncatts(attrs)
    ds["depth"][:] = s.depth
    ds["latitude"][:] = s.lat
    ds["longitude"][:] = s.lon
    chunks = (1, params.n_depth, params.n_lat, params.n_lon)
    for name, (standard_name, units, long_name) in VARIABLES.items():
        var = ds.createVariable(name, "f4", ("time", "depth", "latitude", "longitude"),
                                zlib=True, complevel=params.zlib_level, shuffle=True,
                                chunksizes=chunks, fill_value=FILL)
        var.setncatts({"standard_name": standard_name, "units": units, "long_name": long_name})


def write_grid(path: Path, params: GridParams) -> None:
    """Write the grid one time step at a time (memory: one step), to a temp name, then rename."""
    import netCDF4

    tmp = path.with_suffix(".nc.part")
    s = static_fields(params)
    with netCDF4.Dataset(tmp, "w", format="NETCDF4") as ds:
        _define(ds, params, s)
        for t in range(params.n_time):
            ds["time"][t] = FIRST_DAY + t
            for name, values in fields_at(params, s, t).items():
                # masked_invalid: NaN land becomes _FillValue on disk, as in real products
                ds[name][t] = np.ma.masked_invalid(values)
    tmp.replace(path)  # a killed generator never leaves a file that looks complete


def existing_params(path: Path) -> str | None:
    import netCDF4

    try:
        with netCDF4.Dataset(path) as ds:
            return getattr(ds, "haina_bench_params", None)
    except OSError:
        return None


def ensure_grid(workdir: Path, params: GridParams) -> tuple[Path, bool]:
    """The grid file for ``params``; generated only when missing or made with other parameters."""
    path = workdir / params.file_name()
    if path.exists() and existing_params(path) == params.as_json():
        return path, False
    write_grid(path, params)
    return path, True


# --------------------------------------------------------------------------------------------
# The plain baseline (runs in a child process: `grid_bench.py --plain SRC DST`)
# --------------------------------------------------------------------------------------------

def plain_schema():
    import pyarrow as pa

    fields = [pa.field("time", pa.timestamp("us", tz="UTC"))]
    fields += [pa.field(name, pa.float64()) for name in COORDS[1:]]
    fields += [pa.field(name, pa.float32()) for name in VARIABLES]
    return pa.schema(fields)


def decode_times(var) -> np.ndarray:
    """CF times to int64 microseconds since the epoch (all values at once)."""
    import cftime

    dates = cftime.num2date(var[:], var.units, getattr(var, "calendar", "standard"),
                            only_use_cftime_datetimes=False, only_use_python_datetimes=True)
    return np.asarray(dates, dtype="datetime64[us]").astype("i8")


def step_table(ds, t: int, time_us: int, coords: dict[str, np.ndarray]):
    """One time step as an Arrow table of wet cells (a cell is dry when all variables are NaN)."""
    import pyarrow as pa

    values = {name: ds[name][t].filled(np.nan) for name in VARIABLES}
    wet = ~np.logical_and.reduce([np.isnan(v) for v in values.values()])
    shape = wet.shape
    columns = {
        "time": pa.array(np.full(int(wet.sum()), time_us, "i8"), pa.int64()).cast(
            pa.timestamp("us", tz="UTC")),
        "depth": np.broadcast_to(coords["depth"][:, None, None], shape)[wet],
        "latitude": np.broadcast_to(coords["latitude"][None, :, None], shape)[wet],
        "longitude": np.broadcast_to(coords["longitude"][None, None, :], shape)[wet],
    }
    columns.update({name: v[wet] for name, v in values.items()})
    return pa.Table.from_pydict(columns, schema=plain_schema())


def plain_convert(src: Path, dst: Path) -> int:
    """The floor: netCDF4 one step at a time -> numpy -> one ParquetWriter. Returns rows."""
    import netCDF4
    import pyarrow.parquet as pq

    rows = 0
    with netCDF4.Dataset(src) as ds:
        times = decode_times(ds["time"])
        coords = {name: np.asarray(ds[name][:], dtype="f8") for name in COORDS[1:]}
        coords["longitude"] = (coords["longitude"] + 180.0) % 360.0 - 180.0
        with pq.ParquetWriter(dst, plain_schema(), compression="zstd", compression_level=3,
                              use_dictionary=list(COORDS),
                              column_encoding=dict.fromkeys(VARIABLES, "BYTE_STREAM_SPLIT"),
                              ) as writer:
            for t in range(len(times)):
                table = step_table(ds, t, int(times[t]), coords)
                writer.write_table(table, row_group_size=1_000_000)
                rows += table.num_rows
    return rows


# --------------------------------------------------------------------------------------------
# Measuring a child process
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Measurement:
    seconds: float
    max_rss_mib: float   # ru_maxrss from wait4: the largest single process of the child's tree
    tree_rss_mib: float  # sampled every 0.2 s: sum of RSS over the child and its descendants
    returncode: int


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:  # the process ended while we looked
            continue
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(root: int) -> int:
    children, total, todo = _children_map(), 0, [root]
    while todo:
        pid = todo.pop()
        total += _rss_kib(pid)
        todo.extend(children.get(pid, ()))
    return total


def _sample_tree(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.wait(0.2):
        peak[0] = max(peak[0], tree_rss_kib(pid))


def measure(cmd: list[str], log: Path, env: dict | None = None) -> Measurement:
    """Run ``cmd`` to completion; wall time and memory of exactly that process tree."""
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        stop, peak = threading.Event(), [0]
        sampler = threading.Thread(target=_sample_tree, args=(proc.pid, stop, peak), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)  # we reaped it; tell Popen
    return Measurement(seconds, usage.ru_maxrss / 1024, peak[0] / 1024, proc.returncode)


# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------

QUALITY = {
    "on": "{max_failing_fraction: 0.0}",                 # QC flags and GE validation
    "off": "{enabled: false}",                           # QC flags only
    "bare": "{enabled: false, qc: {enabled: false}}",    # neither: the pipeline's own cost
}


def recipe_text(name: str, grid: Path, warehouse: str, quality_mode: str) -> str:
    quality = QUALITY[quality_mode]
    return f"""\
name: {name}
title: Benchmark grid
licence: CC0-1.0
owner: {{name: bench}}
warehouse: ./{warehouse}
sources:
  - kind: netcdf_grid
    uri: {grid.name}
    variables: {{thetao: {{}}, so: {{}}, uo: {{}}, vo: {{}}}}
    chunk_dim: time
    chunk_size: 1
quality: {quality}
output: {{partition_by: date, target_file_mb: 128}}
"""


def parquet_totals(root: Path) -> tuple[int, int]:
    """(rows, bytes) of the data Parquet files under ``root`` (footers only; no quarantine)."""
    import pyarrow.parquet as pq

    rows = size = 0
    # committed versions only: staging leftovers and the quarantine partition are not output
    for path in sorted(root.glob("datasets/*/versions/*/data/**/*.parquet")):
        if any(part.startswith("quarantine") for part in path.parts):
            continue
        rows += pq.ParquetFile(path).metadata.num_rows
        size += path.stat().st_size
    return rows, size


def haina_command() -> list[str]:
    exe = Path(sys.executable).with_name("haina")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "pipelines.cli.app"]


@dataclasses.dataclass(frozen=True)
class Config:
    label: str
    key: str
    cmd: list[str]
    output: Path          # a file or a warehouse folder, removed before every run


def configurations(workdir: Path, grid: Path, workers2: bool) -> list[Config]:
    plain_out = workdir / "plain.parquet"
    configs = [Config("plain pyarrow", "plain",
                      [sys.executable, str(Path(__file__).resolve()), "--plain", str(grid),
                       str(plain_out)], plain_out)]
    variants = [("haina (validation on)", "haina_on", "on", []),
                ("haina (validation off)", "haina_off", "off", []),
                ("haina (no QC, no validation)", "haina_bare", "bare", [])]
    if workers2:
        # the default is one worker thread per core; these show what the threads buy
        variants.append(("haina (on, 1 worker thread)", "haina_on_w1", "on", ["--workers", "1"]))
        variants.append(("haina (on, 2 worker processes)", "haina_on_mp2", "on",
                         ["--", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]))
    for label, key, quality_mode, beam_args in variants:
        recipe = workdir / f"{key}.yaml"
        recipe.write_text(recipe_text("bench-grid", grid, f"wh_{key}", quality_mode))
        configs.append(Config(label, key, haina_command() + ["run", str(recipe)] + beam_args,
                              workdir / f"wh_{key}"))
    return configs


def selected(configs: list[Config], only: str | None) -> list[Config]:
    if not only:
        return configs
    keys = {"plain", *only.split(",")}
    unknown = keys - {c.key for c in configs}
    if unknown:
        raise BenchError(f"--only: unknown configuration(s) {sorted(unknown)}; accepted: "
                         f"{', '.join(c.key for c in configs)} (haina_on_w1 and haina_on_mp2 need --workers2)")
    return [c for c in configs if c.key in keys]


def _clear(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def run_config(config: Config, workdir: Path, repeat: int) -> dict:
    """Best of ``repeat`` runs (by wall time), each on a fresh output."""
    best = None
    for i in range(repeat):
        _clear(config.output)
        log = workdir / f"{config.key}.log"
        m = measure(config.cmd, log, env={**os.environ, "GX_ANALYTICS_ENABLED": "false"})
        if m.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:]
            raise BenchError(f"{config.label} failed (exit {m.returncode}): "
                             f"{' '.join(config.cmd)}\nlog {log}, last lines:\n{tail}")
        rows, size = parquet_totals(config.output) if config.output.is_dir() else \
            _file_totals(config.output)
        if best is None or m.seconds < best["seconds"]:
            best = {"label": config.label, "seconds": m.seconds, "rows": rows,
                    "rows_per_s": rows / m.seconds, "max_rss_mib": m.max_rss_mib,
                    "tree_rss_mib": m.tree_rss_mib, "output_mib": size / MIB,
                    "command": " ".join(config.cmd)}
        print(f"  {config.label} run {i + 1}/{repeat}: {m.seconds:.1f} s, {rows:,} rows, "
              f"max RSS {m.max_rss_mib:.0f} MiB", flush=True)
    return best


def _file_totals(path: Path) -> tuple[int, int]:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows, path.stat().st_size


def catalog_rows(workdir: Path, key: str) -> int | None:
    """rows_out as the catalog records it (cross-check of the Parquet footers), if readable."""
    cmd = haina_command() + ["--warehouse", str(workdir / f"wh_{key}"), "versions", "bench-grid"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "COLUMNS": "200"})
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.split("│") if c.strip()]
        if len(cells) >= 4 and cells[3].replace(",", "").isdigit():
            return int(cells[3].replace(",", ""))
    return None


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def format_table(results: list[dict]) -> str:
    plain = next(r for r in results if r["label"].startswith("plain"))
    header = (f"{'configuration':<24}{'seconds':>9}{'rows/s':>13}{'vs plain':>10}"
              f"{'max RSS MiB':>13}{'tree RSS MiB':>14}{'output MiB':>12}")
    lines = [header, "-" * len(header)]
    for r in results:
        if "error" in r:
            lines.append(f"{r['label']:<24}{'failed (see its log)':>30}")
            continue
        lines.append(f"{r['label']:<24}{r['seconds']:>9.1f}{r['rows_per_s']:>13,.0f}"
                     f"{r['rows_per_s'] / plain['rows_per_s']:>10.2f}{r['max_rss_mib']:>13.0f}"
                     f"{r['tree_rss_mib']:>14.0f}{r['output_mib']:>12.1f}")
    return "\n".join(lines)


def validation_share(results: list[dict], without: str = "haina_off") -> float | None:
    """Share of the full run's wall time that a configuration without a step saves."""
    by_key = {r["key"]: r for r in results if "error" not in r}
    if "haina_on" not in by_key or without not in by_key:
        return None
    on, off = by_key["haina_on"]["seconds"], by_key[without]["seconds"]
    return (on - off) / on


def machine() -> dict:
    # importlib.metadata, not `import apache_beam`: importing Beam logs noise and takes seconds
    from importlib.metadata import version

    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "pyarrow": version("pyarrow"), "apache_beam": version("apache-beam"),
            "platform": platform.platform()}


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=int, default=1, help="time steps = 240 × scale (1 or 4)")
    p.add_argument("--time", type=int, help="time steps (overrides --scale; e.g. 12 to iterate)")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    p.add_argument("--keep", action="store_true",
                   help="keep the converted outputs (the grid file is always kept for reuse)")
    p.add_argument("--repeat", type=int, default=1, help="runs per configuration; best is kept")
    p.add_argument("--workers2", action="store_true",
                   help="also run haina with one worker thread (--workers 1) and with two worker "
                        "processes (--direct_running_mode=multi_processing)")
    p.add_argument("--only", help="comma-separated configurations to run (default: all of "
                   "plain,haina_on,haina_off,haina_bare[,haina_on_w1,haina_on_mp2]); plain always runs, as the "
                   "reference")
    p.add_argument("--generate-only", action="store_true", help="only make the grid file")
    p.add_argument("--plain", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = _args(argv)
    if args.plain:  # the child side of the baseline
        rows = plain_convert(Path(args.plain[0]), Path(args.plain[1]))
        print(f"plain: {rows} rows")
        return 0
    params = GridParams(n_time=args.time or 240 * args.scale)
    args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir.resolve()
    start = time.perf_counter()
    grid, made = ensure_grid(workdir, params)
    print(f"grid {grid} ({grid.stat().st_size / MIB:.0f} MiB, {params.cells():,} cells"
          + (f", generated in {time.perf_counter() - start:.0f} s)" if made else ", reused)"),
          flush=True)
    if args.generate_only:
        return 0
    results = []
    for config in selected(configurations(workdir, grid, args.workers2), args.only):
        try:
            result = run_config(config, workdir, args.repeat)
        except BenchError as err:
            if config.key == "plain":
                raise
            # one failing haina variant should not cost the numbers of the others
            print(f"FAILED: {err}", flush=True)
            results.append({"label": config.label, "key": config.key, "error": str(err)})
            continue
        result["key"] = config.key
        if config.key.startswith("haina"):
            result["catalog_rows"] = catalog_rows(workdir, config.key)
            if result["catalog_rows"] != result["rows"]:
                print(f"WARNING: {config.label}: catalog says {result['catalog_rows']} rows, "
                      f"the Parquet footers {result['rows']}")
        results.append(result)
        if not args.keep:
            _clear(config.output)
    report(workdir, params, grid, results, args)
    return 0


def report(workdir: Path, params: GridParams, grid: Path, results: list[dict], args) -> None:
    share = validation_share(results)
    checks_share = validation_share(results, "haina_bare")
    print()
    print(format_table(results))
    if share is not None:
        print(f"validation (GE) share of haina wall time: {share:.0%}")
    if checks_share is not None:
        print(f"QC + validation share of haina wall time: {checks_share:.0%}")
    rows = {r["rows"] for r in results if "error" not in r}
    if len(rows) != 1:
        print(f"WARNING: configurations wrote different row counts: {sorted(rows)}")
    out = workdir / f"results_t{params.n_time}.json"
    out.write_text(json.dumps({
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(), "grid": {**dataclasses.asdict(params), "path": str(grid),
                                       "bytes": grid.stat().st_size},
        "repeat": args.repeat, "validation_share": share,
        "qc_and_validation_share": checks_share, "results": results,
    }, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    sys.exit(main())
