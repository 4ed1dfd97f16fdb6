"""Corrupt and odd input files: one clear line (exit 2) or quarantined lines, never a traceback,
a hang, or silently wrong rows.

Connector cases call the connector API in-process (plan, then read every chunk); a few go
through ``haina run`` (in-process, or as a subprocess where a hang is the failure) and check the
exit code, stderr and that the catalog holds no version and no running run.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xarray as xr

import connectors
from catalog.store import open_catalog
from connectors import integrity
from connectors.ais.csv import AisCsvConfig
from connectors.ais.nmea import AisNmeaConfig
from connectors.exceptions import (
    CorruptSourceError,
    DuplicateKeyError,
    EncodingError,
    NotAFileError,
    TruncatedSourceError,
    UnreadableSourceError,
)
from connectors.netcdf.argo import ArgoConfig
from connectors.netcdf.dsg import DsgConfig
from connectors.netcdf.grid import GriddedConfig
from connectors.text.delimited import DelimitedConfig
from connectors.text.ports import PortTableConfig
from pipelines.cli.app import main
from tests.conftest import REPO, require_shared_data

pytestmark = pytest.mark.realdata

ARGO = "argo_dsg_netcdf/D4901079_010.nc"
MARINECADASTRE = "ais/aisdb_marinecadastre_test_data_noaa_20230101.csv"
CMOP = "station_timeseries/cmop_attenuated_salinity_example.csv"
PORTS = "ports/usace_Principal_Ports.csv"

CMOP_CONFIG = {"kind": "delimited", "uri": "x", "delimiter": ",", "quote_char": "'", "comment": "#",
                   "time": {"columns": "time PST", "format": "%Y-%m-%d %H:%M:%S",
                         "timezone": "Etc/GMT+8"},
                   "variables": {"sandi.790.A.CTD": {"name": "sea_water_practical_salinity",
                                                   "units": "PSU"}}}
PORT_CONFIG = {"kind": "port_table", "uri": "x", "id_column": "PORT", "name_column": "PORT_NAME",
                   "latitude_column": "LATITUDE1", "longitude_column": "LONGITUDE1"}


def run_connector(config, path: Path):
    """Plan and read every chunk; returns (rows table, quarantine table, rows_in)."""
    data = path.read_bytes()
    connector = connectors.get(config.kind)
    plan = connector.plan(config, str(path), hashlib.sha256(data).hexdigest(), len(data))
    results = [connector.read(config, chunk, plan.schema) for chunk in plan.chunks]
    connector.release()
    for r in results:
        assert r.rows_in == r.table.num_rows + r.rows_dropped + r.rows_quarantined
    quarantine = [r.quarantine for r in results if r.quarantine is not None]
    return (pa.concat_tables([r.table for r in results]),
            pa.concat_tables(quarantine) if quarantine else None,
            sum(r.rows_in for r in results))


def copy_real(tmp_path: Path, rel: str, data: bytes | None = None) -> Path:
    source = require_shared_data(rel)
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes() if data is None else data)
    return path


def reasons(quarantine) -> dict[str, int]:
    if quarantine is None:
        return {}
    return dict(pd.Series(quarantine["reason"].to_pylist()).value_counts())


def one_line(err: pytest.ExceptionInfo, path: Path) -> str:
    message = str(err.value)
    assert "\n" not in message and path.name in message and "Fix:" in message, message
    return message


# --------------------------------------------------------------------------- truncated files


@pytest.mark.parametrize("rel, config", [
    (ARGO, ArgoConfig(uri="x")),                                           # netCDF-3 classic
    ("argo_dsg_netcdf/erddap_ifremer_ArgoFloats_lon-20_-16_lat0_1_200401.nc",
     DsgConfig(uri="x")),                                                  # netCDF-3, DSG
    ("argo_dsg_netcdf/GL_TS_BO_EXEC0220.nc", DsgConfig(uri="x")),          # HDF5
    ("gridded_netcdf/ndbc_hfradar_uswc_1km_rtv_20250602T0000Z.nc",
     GriddedConfig(kind="netcdf_grid", uri="x", variables={"u": {}})),     # HDF5
])
@pytest.mark.parametrize("fraction", [0.9, 0.999])
def test_truncated_binary_file_names_both_byte_counts(tmp_path, rel, config, fraction):
    whole = require_shared_data(rel).read_bytes()
    kept = int(len(whole) * fraction)
    path = copy_real(tmp_path, rel, whole[:kept])
    with pytest.raises(TruncatedSourceError) as err:
        run_connector(config, path)
    found = re.search(r"truncated: its .* needs (\d+) bytes, the file has (\d+) ",
                      one_line(err, path))
    needed, has = int(found[1]), int(found[2])  # netCDF-3 may leave the last 4-byte pad out
    assert (len(whole) - 4 < needed <= len(whole), has) == (True, kept)


def test_truncated_argo_is_not_read_as_zeros(tmp_path):
    # the case: 72 levels of temperature 0.0 were committed with exit 0
    whole = require_shared_data(ARGO).read_bytes()
    path = copy_real(tmp_path, ARGO, whole[:-1500])
    with pytest.raises(TruncatedSourceError, match="24056 bytes, the file has 22556"):
        run_connector(ArgoConfig(uri="x"), path)


@pytest.mark.parametrize("rel", [ARGO, "gridded_netcdf/GEBCO_2020_erddap_subset_lat-67_-54_lon81"
                                       "_123.nc"])
def test_whole_netcdf3_header_needs_at_most_its_size(rel):
    path = require_shared_data(rel)
    container, needed, size = integrity.needed_size(str(path))
    assert container == "netcdf3" and size - 4 < needed <= size


@pytest.mark.parametrize("rel", ["argo_dsg_netcdf/GL_TS_BO_EXEC0220.nc",
                                 "argo_dsg_netcdf/ooi_pco2w_pco2_netcdf_example.nc"])
def test_whole_hdf5_superblock_end_of_file_is_its_size(rel):
    path = require_shared_data(rel)
    assert integrity.needed_size(str(path)) == ("hdf5", path.stat().st_size,
                                                path.stat().st_size)


@pytest.mark.parametrize("version", ["earliest", "latest"])  # superblock v0 and v3
def test_hdf5_superblock_versions(tmp_path, version):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w", libver=version) as f:
        f["v"] = np.arange(1000)
    size = path.stat().st_size
    assert integrity.needed_size(str(path)) == ("hdf5", size, size)
    path.write_bytes(path.read_bytes()[:size - 10])
    with pytest.raises(TruncatedSourceError, match=f"needs {size} bytes, the file has {size - 10}"):
        integrity.check_whole(str(path))


@pytest.mark.parametrize("rel, config", [
    (MARINECADASTRE, AisCsvConfig(uri="x")),
    (CMOP, DelimitedConfig.model_validate(CMOP_CONFIG)),
])
def test_truncated_text_file_quarantines_its_last_line(tmp_path, rel, config):
    whole = require_shared_data(rel).read_bytes()
    cut = whole.rstrip(b"\n").rfind(b"\n") + 12  # 11 bytes into the last line
    full_rows, _, full_in = run_connector(config, copy_real(tmp_path, rel))
    rows, quarantine, rows_in = run_connector(config, copy_real(tmp_path, rel, whole[:cut]))
    assert rows_in == full_in and rows.num_rows == full_rows.num_rows - 1
    assert quarantine.num_rows == 1 and quarantine["position"][0].as_py() == whole.count(b"\n")


# --------------------------------------------------------------------------- corrupt binary files


def test_flipped_byte_in_attribute_name_is_one_line(tmp_path):
    whole = require_shared_data(ARGO).read_bytes()
    at = whole.index(b"long_name")  # the first attribute name in the header
    path = copy_real(tmp_path, ARGO, whole[:at] + b"\xff" + whole[at + 1:])
    with pytest.raises(CorruptSourceError) as err:
        run_connector(ArgoConfig(uri="x"), path)
    assert "not valid UTF-8: byte 0xFF" in one_line(err, path)


def write_dsg(path: Path, n: int = 2000) -> Path:
    """A CF timeSeries file with a deflate-compressed, chunked TEMP variable."""
    ds = xr.Dataset(
        {"TEMP": ("time", np.linspace(10, 20, n, dtype="float32"),
                  {"standard_name": "sea_water_temperature", "units": "degC"}),
         "station": ((), "S1", {"cf_role": "timeseries_id"}),
         "lat": ((), 43.0, {"standard_name": "latitude", "units": "degrees_north"}),
         "lon": ((), -3.0, {"standard_name": "longitude", "units": "degrees_east"})},
        coords={"time": ("time", pd.date_range("2020-01-01", periods=n, freq="h"),
                         {"standard_name": "time"})},
        attrs={"featureType": "timeSeries"})
    ds.to_netcdf(path, encoding={"TEMP": {"zlib": True, "chunksizes": (500,)}})
    return path


def corrupt_chunk(path: Path, variable: str, index: int) -> None:
    """Scramble bytes inside one stored (deflated) chunk of ``variable``."""
    with h5py.File(path) as f:
        info = f[variable].id.get_chunk_info(index)
    data = bytearray(path.read_bytes())
    for k in range(8):
        data[info.byte_offset + 4 + k] ^= 0x5A
    path.write_bytes(bytes(data))


def test_corrupt_deflate_chunk_in_dsg_file_names_the_variable(tmp_path):
    path = write_dsg(tmp_path / "ts.nc")
    corrupt_chunk(path, "TEMP", 1)
    with pytest.raises(CorruptSourceError) as err:
        run_connector(DsgConfig(uri="x"), path)  # planning reads metadata only: fails in read
    assert "variable 'TEMP' is corrupt (NetCDF: HDF error)" in one_line(err, path)


# --------------------------------------------------------------------------- not a regular file


def test_directory_uri_says_use_a_glob(tmp_path):
    folder = tmp_path / "argo"
    folder.mkdir()
    copy_real(folder, ARGO)
    with pytest.raises(NotAFileError) as err:
        connectors.get("argo").plan(ArgoConfig(uri="x"), str(folder), "0" * 64, 0)
    message = str(err.value)
    assert "URI is a directory" in message and f"use a glob like {folder}/*.nc" in message


@pytest.mark.timeout(30)  # before the check, opening the FIFO blocked forever
@pytest.mark.parametrize("config", [ArgoConfig(uri="x"), AisCsvConfig(uri="x"),
                                    DelimitedConfig.model_validate(CMOP_CONFIG),
                                    PortTableConfig.model_validate(PORT_CONFIG)])
def test_named_pipe_is_refused_before_opening(tmp_path, config):
    fifo = tmp_path / "feed.csv"
    os.mkfifo(fifo)
    connector = connectors.get(config.kind)
    with pytest.raises(NotAFileError, match="not a regular file: it is a named pipe"):
        connector.plan(config, str(fifo), "0" * 64, 0)


# --------------------------------------------------------------------------- text files


def marinecadastre_lines() -> list[bytes]:
    return require_shared_data(MARINECADASTRE).read_bytes().split(b"\n")


def test_binary_file_given_to_ais_csv(tmp_path):
    path = copy_real(tmp_path, ARGO)
    with pytest.raises(UnreadableSourceError) as err:
        run_connector(AisCsvConfig(uri="x"), path)
    assert "is a netCDF-3 file, not text" in one_line(err, path)


def test_latin1_vessel_name_quarantines_the_line_not_the_file(tmp_path):
    lines = marinecadastre_lines()
    fields = lines[5].split(b",")
    fields[7] = b"\xc9TOILE DE MER"  # VesselName, in Latin-1
    lines[5] = b",".join(fields)
    path = tmp_path / "ais.csv"
    path.write_bytes(b"\n".join(lines))
    rows, quarantine, rows_in = run_connector(AisCsvConfig(uri="x"), path)
    assert (rows.num_rows, rows_in) == (999, 1000)
    assert quarantine.select(["reason", "position"]).to_pylist() == [
        {"reason": "encoding", "position": 6}]
    assert "\\xc9TOILE DE MER" in quarantine["raw"][0].as_py()
    # naming the encoding reads the line
    rows, quarantine, _ = run_connector(AisCsvConfig(uri="x", encoding="latin-1"), path)
    assert rows.num_rows == 1000 and not reasons(quarantine)
    assert "ÉTOILE DE MER" in rows["vessel_name"].to_pylist()


def test_non_utf8_byte_on_wrong_length_ais_row(tmp_path):
    lines = marinecadastre_lines()
    lines[3] = lines[3] + b",extra\xff"
    path = tmp_path / "ais.csv"
    path.write_bytes(b"\n".join(lines))
    rows, quarantine, _ = run_connector(AisCsvConfig(uri="x"), path)
    assert rows.num_rows == 999 and reasons(quarantine) == {"encoding": 1}


@pytest.mark.parametrize("rel, config", [
    (MARINECADASTRE, AisCsvConfig(uri="x")),
    (CMOP, DelimitedConfig.model_validate(CMOP_CONFIG)),
    (PORTS, PortTableConfig.model_validate(PORT_CONFIG)),
])
def test_utf16_file_is_named_not_a_missing_column(tmp_path, rel, config):
    text = require_shared_data(rel).read_bytes().decode("utf-8-sig")
    path = copy_real(tmp_path, rel, text.encode("utf-16"))
    with pytest.raises(EncodingError) as err:
        run_connector(config, path)
    message = one_line(err, path)
    assert "file is UTF-16 (byte-order mark FF FE)" in message and "iconv" in message


@pytest.mark.parametrize("value, error", [("utf-16", "not ASCII-compatible"),
                                          ("klingon", "unknown encoding")])
def test_encoding_option_is_checked_in_the_recipe(value, error):
    with pytest.raises(ValueError, match=error):
        AisCsvConfig(uri="x", encoding=value)
    with pytest.raises(ValueError, match=error):
        DelimitedConfig.model_validate({**CMOP_CONFIG, "encoding": value})


@pytest.mark.parametrize("rel, config", [
    (MARINECADASTRE, AisCsvConfig(uri="x")),
    (CMOP, DelimitedConfig.model_validate(CMOP_CONFIG)),
    (PORTS, PortTableConfig.model_validate(PORT_CONFIG)),
    ("ais/pyais_nmea_data_sample.txt", AisNmeaConfig(uri="x")),
])
@pytest.mark.parametrize("ends", ["cr", "mixed"])
def test_cr_and_mixed_line_endings_just_parse(tmp_path, rel, config, ends):
    whole = require_shared_data(rel).read_bytes()
    lines = whole.replace(b"\r\n", b"\n").split(b"\n")  # the NMEA sample ends lines CRLF
    if ends == "cr":
        changed = b"\r".join(lines)
    else:  # LF, CRLF and CR in turn
        changed = b"".join(line + (b"\n", b"\r\n", b"\r")[i % 3]
                           for i, line in enumerate(lines[:-1])) + lines[-1]
    expected, expected_q, expected_in = run_connector(config, copy_real(tmp_path, rel))
    rows, quarantine, rows_in = run_connector(config, copy_real(tmp_path, rel, changed))
    assert rows_in == expected_in and rows.num_rows == expected.num_rows
    assert reasons(quarantine) == reasons(expected_q)
    if quarantine is not None:  # line numbers count CR line ends too
        assert quarantine["position"].to_pylist() == expected_q["position"].to_pylist()


@pytest.mark.parametrize("rel, config", [
    (MARINECADASTRE, AisCsvConfig(uri="x")),
    (CMOP, DelimitedConfig.model_validate(CMOP_CONFIG)),
    (PORTS, PortTableConfig.model_validate(PORT_CONFIG)),
    ("ais/pyais_nmea_data_sample.txt", AisNmeaConfig(uri="x")),
])
def test_ten_mib_line_is_quarantined_as_too_long(tmp_path, rel, config):
    lines = require_shared_data(rel).read_bytes().split(b"\n")
    at = len(lines) // 2
    lines.insert(at, b"9" * (10 << 20))
    rows, quarantine, _ = run_connector(config, copy_real(tmp_path, rel, b"\n".join(lines)))
    long = quarantine.filter(pa.compute.equal(quarantine["reason"], "line_too_long"))
    assert long["position"].to_pylist() == [at + 1]
    assert len(long["raw"][0].as_py()) <= integrity.RAW_KEEP + 1


# --------------------------------------------------------------------------- grid time steps


def write_grid(path: Path, days: list[str]) -> Path:
    ds = xr.Dataset(
        {"temp": (("time", "lat", "lon"), np.full((len(days), 2, 3), 12.5, "float32"),
                  {"standard_name": "sea_water_temperature", "units": "degC"})},
        coords={"time": pd.to_datetime(days),
                "lat": ("lat", [35.0, 35.5], {"standard_name": "latitude",
                                              "units": "degrees_north"}),
                "lon": ("lon", [120.0, 120.5, 121.0], {"standard_name": "longitude",
                                                       "units": "degrees_east"})})
    ds.to_netcdf(path)
    return path


def test_repeated_time_step_in_one_grid_file(tmp_path):
    path = write_grid(tmp_path / "g.nc", ["2025-07-01", "2025-07-02", "2025-07-01"])
    with pytest.raises(DuplicateKeyError) as err:
        run_connector(GriddedConfig(kind="netcdf_grid", uri="x"), path)
    assert "time step 2025-07-01T00:00:00Z occurs twice (time indices 0 and 2)" in \
        one_line(err, path)


def recipe(tmp_path: Path, source: str, name: str = "faults") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: {name}
        title: fault test
        licence: CC0-1.0
        owner: {{name: tests}}
        sources:
          - {textwrap.indent(textwrap.dedent(source), "            ").strip()}
        """))
    return path


def haina(capsys, tmp_path, *argv) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--warehouse", str(tmp_path / "warehouse"), *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err


def assert_nothing_committed(tmp_path: Path, name: str) -> None:
    db = tmp_path / "warehouse" / "catalog.db"
    if db.exists():
        catalog = open_catalog(f"sqlite:///{db}")
        if name in [d.name for d in catalog.datasets()]:  # unknown when planning failed
            assert catalog.versions(name) == []
            assert [r.status for r in catalog.runs(name) if r.status == "running"] == []
        catalog.close()
    assert not list((tmp_path / "warehouse").glob("_staging/*"))


@pytest.mark.slow
def test_time_step_in_two_grid_files_stops_the_run(tmp_path, capsys):
    write_grid(tmp_path / "a.nc", ["2025-07-01", "2025-07-02"])
    write_grid(tmp_path / "b.nc", ["2025-07-02", "2025-07-03"])
    path = recipe(tmp_path, "kind: netcdf_grid\nuri: '*.nc'")
    code, err = haina(capsys, tmp_path, "run", str(path))
    assert code == 2
    assert f"{tmp_path}/a.nc: time step 2025-07-02T00:00:00Z is also in {tmp_path}/b.nc" in err
    assert_nothing_committed(tmp_path, "faults")


@pytest.mark.slow
def test_corrupt_chunk_found_while_reading_exits_2(tmp_path, capsys):
    corrupt_chunk(write_dsg(tmp_path / "ts.nc"), "TEMP", 1)
    path = recipe(tmp_path, "kind: netcdf_dsg\nuri: ts.nc")
    code, err = haina(capsys, tmp_path, "run", str(path))
    assert code == 2
    assert "ts.nc: variable 'TEMP' is corrupt (NetCDF: HDF error)" in err
    assert "(no version was committed)" in err
    assert_nothing_committed(tmp_path, "faults")


@pytest.mark.slow
def test_directory_uri_through_haina_run(tmp_path, capsys):
    (tmp_path / "grids").mkdir()
    write_grid(tmp_path / "grids" / "a.nc", ["2025-07-01"])
    code, err = haina(capsys, tmp_path, "run", str(recipe(tmp_path, "kind: netcdf_grid\n"
                                                                    "uri: grids")))
    assert code == 2 and "URI is a directory" in err and "grids/*.nc" in err


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_named_pipe_through_haina_run_does_not_hang(tmp_path):
    # a subprocess: before the check, hashing the FIFO blocked forever (the timeout fails it)
    write_grid(tmp_path / "a.nc", ["2025-07-01"])
    os.mkfifo(tmp_path / "b.nc")
    path = recipe(tmp_path, "kind: netcdf_grid\nuri: '*.nc'")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "pipelines.cli.app", "--warehouse",
                           str(tmp_path / "warehouse"), "run", str(path)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "b.nc: not a regular file: it is a named pipe (FIFO)" in done.stderr
    assert_nothing_committed(tmp_path, "faults")
