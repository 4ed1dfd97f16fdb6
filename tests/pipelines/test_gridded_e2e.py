"""End to end: ``haina run`` on the four real gridded files, checked against xarray on the source.

Every expected number is computed here, independently of the connector, with xarray's own CF
decoding of the source file (fill values, scale/offset, times), or written out literally.
Each recipe runs once per module (a module-scoped fixture), so the file stays well under a minute.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import xarray as xr

from catalog.store import open_catalog
from pipelines.cli.app import main

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
GRIDS = "gridded_netcdf"
F32 = float(np.finfo(np.float32).eps)
# An explicit partition schema: with only __HIVE_DEFAULT_PARTITION__ folders (GEBCO has no time)
# pyarrow cannot infer the type of `date` and `partitioning="hive"` raises.
HIVE = pads.partitioning(pa.schema([("date", pa.string())]), flavor="hive")


@dataclasses.dataclass(frozen=True)
class Case:
    recipe: str
    dataset: str
    file: str
    #: source variable -> (output column, canonical units written in haina.units)
    variables: dict[str, tuple[str, str]]
    #: source dim (or scalar coordinate) names of time, depth, latitude, longitude
    axes: dict[str, str | None]
    #: the distinct times of the data, literally (None: the file has no time axis)
    times: tuple[str, ...] | None
    #: a substring the dataset's attribution must carry (licence requirement), or None
    attribution: str | None = None


CASES = {
    "gebco": Case(
        "gebco_kerguelen.yaml", "gebco-kerguelen",
        "GEBCO_2020_erddap_subset_lat-67_-54_lon81_123.nc",
        {"elevation": ("height_above_reference_ellipsoid", "m")},
        {"time": None, "depth": None, "latitude": "latitude", "longitude": "longitude"},
        None, "GEBCO"),
    "hfradar": Case(
        "hfradar_uswc.yaml", "hfradar-uswc", "ndbc_hfradar_uswc_1km_rtv_20250602T0000Z.nc",
        {"u": ("surface_eastward_sea_water_velocity", "m s-1"),
         "v": ("surface_northward_sea_water_velocity", "m s-1")},
        {"time": "time", "depth": "depth", "latitude": "lat", "longitude": "lon"},
        ("2025-06-02T00:00:00",)),
    "glo": Case(
        "cmems_glo_so.yaml", "cmems-glo-salinity",
        "cmems_mod_glo_phy-so_anfc_0.083deg_P1D-m_so_13.00W-5.00E_47.00N-64.00N_0.49m_"
        "2025-09-24-2025-09-25.nc",
        {"so": ("sea_water_salinity", "1e-3")},
        {"time": "time", "depth": "depth", "latitude": "latitude", "longitude": "longitude"},
        ("2025-09-24T00:00:00", "2025-09-25T00:00:00"), "Copernicus Marine"),
    "ibi": Case(
        "cmems_ibi_thetao.yaml", "cmems-ibi-thetao",
        "cmems_mod_ibi_phy_my_0.083deg-3D_P1Y-m_thetao_9.83W-9.67W_34.00N-34.17N_0.51-1.56m_"
        "1993-01-01-2021-01-01.nc",
        {"thetao": ("sea_water_potential_temperature", "degC")},
        {"time": "time", "depth": "depth", "latitude": "latitude", "longitude": "longitude"},
        tuple(f"{year}-01-01T00:00:00" for year in range(1993, 2022)), "Copernicus Marine"),
}
# total cells and finite cells, verified once with xarray (the tests also recompute them)
LITERAL_COUNTS = {"gebco": (313 * 1009, 313 * 1009), "hfradar": (2197 * 1399, 4105),
                  "glo": (2 * 205 * 217, 68674), "ibi": (29 * 2 * 3 * 3, 522)}


@dataclasses.dataclass
class Committed:
    key: str
    case: Case
    warehouse: Path
    version: object
    run: object
    files: list
    table: pa.Table
    expected: dict[str, np.ndarray]
    cells: int


# --------------------------------------------------------------------------- expectations


def _broadcast(ds: xr.Dataset, name: str | None, dims: tuple[str, ...], shape) -> np.ndarray:
    """A coordinate broadcast to the variable's shape (a scalar coordinate fills it)."""
    values = ds[name].values
    if values.ndim == 0:
        return np.broadcast_to(values, shape)
    layout = [1] * len(dims)
    layout[dims.index(ds[name].dims[0])] = -1
    return np.broadcast_to(values.reshape(layout), shape)


def expected_rows(source: Path, case: Case) -> tuple[dict[str, np.ndarray], int]:
    """Rows the pipeline should write: every cell where any variable is finite, via xarray."""
    with xr.open_dataset(source) as ds:
        first = ds[next(iter(case.variables))]
        dims, shape = first.dims, first.shape
        values = {column: ds[var].values.ravel() for var, (column, _u) in case.variables.items()}
        keep = np.logical_or.reduce([np.isfinite(v) for v in values.values()])
        out = {column: v[keep] for column, v in values.items()}
        for role, name in case.axes.items():
            if name is None:
                out[role] = None
                continue
            out[role] = _broadcast(ds, name, dims, shape).ravel()[keep]
    out["latitude"] = out["latitude"].astype(np.float64)
    out["longitude"] = out["longitude"].astype(np.float64)
    if out["depth"] is not None:
        out["depth"] = out["depth"].astype(np.float64)
    if out["time"] is not None:
        out["time"] = out["time"].astype("datetime64[us]")
    return out, int(np.prod(shape))


def _order(time, depth, lat, lon) -> np.ndarray:
    keys = [lon, lat] + ([depth] if depth is not None else []) + (
        [time.astype(np.int64)] if time is not None else [])
    return np.lexsort(keys)


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)


# --------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture(scope="module", params=list(CASES))
def committed(request, warehouse, shared_data, tmp_path_factory) -> Committed:
    """Run one recipe in-process and read back what it committed."""
    case = CASES[request.param]
    recipe = RECIPES / case.recipe
    assert main(["--warehouse", str(warehouse), "run", str(recipe)]) == 0
    catalog = open_catalog(f"sqlite:///{warehouse}/catalog.db")
    version = catalog.version(case.dataset, "latest")
    table = pads.dataset(version.path + "/data", format="parquet",
                         partitioning=HIVE).to_table()
    expected, cells = expected_rows(shared_data / GRIDS / case.file, case)
    return Committed(request.param, case, warehouse, version, catalog.run(version.run_id),
                     catalog.files(version.version_id), table, expected, cells)


def _manifest(c: Committed) -> dict:
    return json.loads((Path(c.version.path) / "manifest.json").read_text())


def _data_files(c: Committed) -> list[Path]:
    return [Path(c.version.path) / f.path for f in c.files if f.partition != "quarantine"]


# --------------------------------------------------------------------------- row accounting


def test_row_counts_match_finite_cells(committed):
    c = committed
    n_finite = len(c.expected["latitude"])
    assert (c.cells, n_finite) == LITERAL_COUNTS[c.key]
    assert c.table.num_rows == n_finite
    assert c.version.rows == n_finite
    assert sum(f.rows for f in c.files) == n_finite


def test_dropped_rows_are_accounted(committed):
    c = committed
    n_finite = len(c.expected["latitude"])
    accounting = _manifest(c)["extra"]["row_accounting"]
    assert accounting["rows_in"] == c.cells
    assert accounting["rows_out"] == n_finite
    assert accounting["rows_dropped"] == c.cells - n_finite
    assert accounting["rows_quarantined"] == 0
    assert (c.run.status, c.run.rows_in, c.run.rows_out, c.run.rows_dropped) == (
        "succeeded", c.cells, n_finite, c.cells - n_finite)


def test_manifest_rows_section_matches_accounting(committed):
    c = committed
    rows = _manifest(c)["rows"]
    n_finite = len(c.expected["latitude"])
    assert (rows["in"], rows["out"], rows["dropped"], rows["written"]) == (
        c.cells, n_finite, c.cells - n_finite, n_finite)


# --------------------------------------------------------------------------- values


def test_every_value_and_coordinate_matches_xarray(committed):
    """All rows, sorted the same way on both sides: coordinates exact, values to float32."""
    c, exp = committed, committed.expected
    t = c.table
    got_time = _column(t, "time").astype("datetime64[us]") if exp["time"] is not None else None
    got_depth = _column(t, "depth") if exp["depth"] is not None else None
    got = _order(got_time, got_depth, _column(t, "latitude"), _column(t, "longitude"))
    want = _order(exp["time"], exp["depth"], exp["latitude"], exp["longitude"])
    np.testing.assert_array_equal(_column(t, "latitude")[got], exp["latitude"][want])
    np.testing.assert_array_equal(_column(t, "longitude")[got], exp["longitude"][want])
    if exp["time"] is None:
        assert t.column("time").null_count == t.num_rows
        assert t.column("depth").null_count == t.num_rows
    else:
        np.testing.assert_array_equal(got_time[got], exp["time"][want])
        np.testing.assert_array_equal(got_depth[got], exp["depth"][want])
    for column, _units in c.case.variables.values():
        assert t.schema.field(column).type == pa.float32()
        np.testing.assert_allclose(_column(t, column)[got], exp[column][want], rtol=F32,
                                   atol=0, equal_nan=True)


def test_specific_cells_match_xarray_sel(committed, shared_data):
    """Three cells looked up by label with xarray .sel, found in the table by their coordinates."""
    c = committed
    axes = c.case.axes
    source = shared_data / GRIDS / c.case.file
    picks = np.linspace(0, len(c.expected["latitude"]) - 1, 3).astype(int)
    with xr.open_dataset(source) as ds:
        for i in picks:
            labels = {axes[r]: c.expected[r][i] for r in ("latitude", "longitude")}
            if axes["time"]:
                labels[axes["time"]] = c.expected["time"][i]
            if axes["depth"] and ds[axes["depth"]].ndim:
                labels[axes["depth"]] = c.expected["depth"][i]
            mask = np.ones(c.table.num_rows, bool)
            for role in ("latitude", "longitude"):
                mask &= _column(c.table, role) == c.expected[role][i]
            if axes["time"]:
                mask &= _column(c.table, "time").astype("datetime64[us]") == c.expected["time"][i]
            if axes["depth"]:
                mask &= _column(c.table, "depth") == c.expected["depth"][i]
            assert mask.sum() == 1, f"cell {labels} found {mask.sum()} times"
            for var, (column, _units) in c.case.variables.items():
                want = ds[var].sel({k: _label(ds, k, v) for k, v in labels.items()}).values
                np.testing.assert_allclose(_column(c.table, column)[mask], np.ravel(want),
                                           rtol=F32, equal_nan=True)


def _label(ds: xr.Dataset, dim: str, value):
    """The file's own coordinate label equal to ``value`` (float32 labels widened to float64)."""
    labels = ds[dim].values
    widened = labels.astype("datetime64[us]") if labels.dtype.kind == "M" else labels.astype(float)
    return labels[np.flatnonzero(widened == value)[0]]


def test_coordinate_ranges(committed):
    c, exp = committed, committed.expected
    lat, lon = _column(c.table, "latitude"), _column(c.table, "longitude")
    assert (lat.min(), lat.max()) == (exp["latitude"].min(), exp["latitude"].max())
    assert (lon.min(), lon.max()) == (exp["longitude"].min(), exp["longitude"].max())
    assert -180.0 <= lon.min() and lon.max() < 180.0


def test_times_are_the_files_times(committed):
    c = committed
    if c.case.times is None:
        assert c.table.column("time").null_count == c.table.num_rows
        return
    got = np.unique(_column(c.table, "time").astype("datetime64[us]"))
    np.testing.assert_array_equal(got, np.array(c.case.times, dtype="datetime64[us]"))
    np.testing.assert_array_equal(got, np.unique(c.expected["time"]))
    assert c.table.schema.field("time").type == pa.timestamp("us", tz="UTC")


# --------------------------------------------------------------------------- files and metadata


def test_units_and_cf_attributes_in_field_metadata(committed):
    c = committed
    schema = c.table.schema
    for var, (column, units) in c.case.variables.items():
        meta = schema.field(column).metadata
        assert meta[b"haina.units"] == units.encode()
        assert meta[b"haina.source_name"] == var.encode()
        assert meta[b"haina.standard_name"] == column.encode()
    assert schema.field("latitude").metadata[b"haina.units"] == b"degrees_north"
    assert schema.field("longitude").metadata[b"haina.units"] == b"degrees_east"
    assert schema.field("depth").metadata[b"haina.units"] == b"m"
    assert schema.names[:4] == ["time", "depth", "latitude", "longitude"]


def test_parquet_key_value_metadata(committed):
    c = committed
    for path in _data_files(c):
        kv = pq.ParquetFile(path).metadata.metadata
        assert kv[b"haina.dataset"] == c.case.dataset.encode()
        assert kv[b"haina.version"] == c.version.version_id.encode()
        columns = json.loads(kv[b"haina.columns"])
        for var, (column, units) in c.case.variables.items():
            assert columns[column]["units"] == units
            assert columns[column]["standard_name"] == column
            assert columns[column]["source_name"] == var
        if c.case.attribution:
            assert c.case.attribution in kv[b"haina.attribution"].decode()


def test_files_are_hive_partitioned_by_date(committed):
    c = committed
    on_disk = sorted(p.relative_to(c.version.path).as_posix()
                     for p in Path(c.version.path, "data").rglob("*.parquet"))
    assert on_disk == sorted(f.path for f in c.files)
    for path in _data_files(c):
        folder = path.parent.name
        times = pq.read_table(path, columns=["time"]).column("time")
        if c.case.times is None:
            assert folder == "date=__HIVE_DEFAULT_PARTITION__"
            assert times.null_count == len(times)
            continue
        dates = np.unique(times.to_numpy().astype("datetime64[D]"))
        assert [f"date={d}" for d in dates] == [folder]
    if c.case.times is not None:
        folders = {p.parent.name for p in _data_files(c)}
        assert folders == {f"date={t[:10]}" for t in c.case.times}


def test_rows_ordered_by_time_within_each_file(committed):
    for path in _data_files(committed):
        times = pq.read_table(path, columns=["time"]).column("time")
        if times.null_count == len(times):
            continue
        ticks = times.to_numpy().astype(np.int64)
        assert (np.diff(ticks) >= 0).all(), path


def test_zstd_compression(committed):
    for path in _data_files(committed):
        meta = pq.ParquetFile(path).metadata
        codecs = {meta.row_group(g).column(k).compression
                  for g in range(meta.num_row_groups) for k in range(meta.num_columns)}
        assert codecs == {"ZSTD"}, path


def test_show_json_prints_the_manifest(committed, capsys):
    c = committed
    capsys.readouterr()
    code = main(["--warehouse", str(c.warehouse), "show", f"{c.case.dataset}@latest", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    manifest = json.loads(out)
    assert manifest["version"]["id"] == c.version.version_id
    assert manifest["dataset"]["name"] == c.case.dataset
    assert {f["path"] for f in manifest["files"]} == {f.path for f in c.files}


