"""Sources that yield no rows: the wrong kind of file, a header only, only fill values, only bad
records. Each used to commit an empty version; now the run fails its gate (exit 1, run
``gate_failed``) naming the file and why it yielded nothing, unless the recipe says
``allow_empty: true``.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from catalog import store
from tests.conftest import require_shared_data

pytestmark = pytest.mark.slow


def _recipe(folder: Path, name: str, source: str, files: dict[str, bytes], extra: str = "") -> Path:
    folder.mkdir()
    for file_name, data in files.items():
        (folder / file_name).write_bytes(data)
    path = folder / "recipe.yaml"
    path.write_text(textwrap.dedent("""\
        name: {name}
        title: empty-source test
        licence: CC0-1.0
        owner: {{name: tests}}
        sources:
        {source}
        quality: {{enabled: false}}
        output: {{partition_by: none}}
        {extra}
        """).format(name=name, source=textwrap.indent(textwrap.dedent(source).strip(), "  "),
                    extra=extra))
    return path


def _first_lines(path: str, n: int) -> bytes:
    return b"".join(require_shared_data(path).read_bytes().splitlines(keepends=True)[:n])


def _demo_day(tmp_path: Path) -> Path:
    from examples.qingdao_demo import generate

    (path,) = generate(tmp_path / "demo", days=1)
    return path


def _all_fill(tmp_path: Path) -> bytes:
    with xr.open_dataset(_demo_day(tmp_path)) as ds:
        filled = ds.load()
    for name in filled.data_vars:
        filled[name][:] = np.nan
    target = tmp_path / "all_fill.nc"
    filled.to_netcdf(target)
    return target.read_bytes()


NMEA = "- kind: ais_nmea\n  uri: data.nmea"

#: name -> (source entry, file name, its bytes (built from tmp_path), what the message must say)
CASES = {
    "csv-given-to-ais_nmea": (
        NMEA, "data.nmea",
        lambda tmp: _first_lines("ais/aisdb_marinecadastre_test_data_noaa_20230101.csv", 40),
        ["kind ais_nmea", "records read, none kept", "quarantined (not_nmea "]),
    "empty-nmea": (NMEA, "data.nmea", lambda tmp: b"", ["(0 bytes, kind ais_nmea) is empty"]),
    "nmea-without-payloads": (
        NMEA, "data.nmea", lambda tmp: b"!AIVDM,1,1,,B,,0*25\n" * 5,
        ["5 records read, none kept: 5 quarantined (empty_payload 5)"]),
    "header-only-ais_csv": (
        "- kind: ais_csv\n  layout: marinecadastre\n  uri: data.csv", "data.csv",
        lambda tmp: _first_lines("ais/aisdb_marinecadastre_test_data_noaa_20230101.csv", 1),
        ["kind ais_csv) holds no records"]),
    "header-only-port_table": (
        "- kind: port_table\n  uri: data.csv\n  id_column: PORT\n  name_column: PORT_NAME\n"
        "  latitude_column: LATITUDE1\n  longitude_column: LONGITUDE1", "data.csv",
        lambda tmp: _first_lines("ports/usace_Principal_Ports.csv", 1),
        ["kind port_table) holds no records"]),
    "header-only-erddap_csv": (
        "- kind: erddap_csv\n  uri: data.csvp\n  station_id: amelia\n"
        "  variables: {temperature: sea_water_temperature}", "data.csvp",
        lambda tmp: _first_lines(
            "station_timeseries/erddap_gliders_amelia-20180501T0000_temperature.csvp", 1),
        ["kind erddap_csv) holds no records"]),
    "header-only-ndbc_text": (
        "- kind: ndbc_text\n  uri: data.txt\n  station_id: '41002'\n"
        "  variables: {WSPD: wind_speed}", "data.txt",
        lambda tmp: _first_lines("station_timeseries/ndbc_41002_realtime2.txt", 2),
        ["kind ndbc_text) holds no records"]),
    "header-only-delimited": (
        "- kind: delimited\n  uri: data.csv\n  delimiter: ','\n  time: {columns: time}\n"
        "  station_id: s1\n  variables: {salinity: {name: sea_water_practical_salinity, "
        "units: psu}}", "data.csv",
        lambda tmp: b"time,salinity\n", ["kind delimited) holds no records"]),
    "all-fill-netcdf_grid": (
        "- kind: netcdf_grid\n  uri: data.nc\n  chunk_dim: time\n  chunk_size: 1", "data.nc",
        _all_fill, ["143,420 records read, none kept: 143,420 dropped as fill"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_source_that_yields_no_rows_fails_the_run(case, tmp_path, tmp_warehouse, capsys):
    from pipelines.cli.app import main

    source, file_name, build, says = CASES[case]
    recipe = _recipe(tmp_path / "case", "empty-case", source, {file_name: build(tmp_path)})

    assert main(["run", str(recipe)]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: no rows to commit: {tmp_path / 'case' / file_name} (")
    for text in says:
        assert text in lines[0], lines[0]
    assert "allow_empty: true" in lines[0]
    catalog = store.open_catalog(f"sqlite:///{tmp_warehouse}/catalog.db")
    assert catalog.versions("empty-case") == []
    (run,) = catalog.runs("empty-case")
    assert run.status == "gate_failed" and "no rows to commit" in run.error
    assert not any((tmp_warehouse / "_staging").iterdir())


def test_only_the_source_that_yields_nothing_is_named(tmp_path, tmp_warehouse, capsys):
    from pipelines.cli.app import main

    good = require_shared_data("ais/libais_typeexamples.nmea").read_bytes()
    wrong = _first_lines("ais/aisdb_marinecadastre_test_data_noaa_20230101.csv", 40)
    recipe = _recipe(tmp_path / "case", "mixed", "- kind: ais_nmea\n  uri: '*.nmea'",
                     {"good.nmea": good, "wrong.nmea": wrong})

    assert main(["run", str(recipe)]) == 1
    err = capsys.readouterr().err
    assert "wrong.nmea" in err and "good.nmea" not in err, err


def test_a_binary_file_given_to_a_text_kind_is_refused_before_reading(tmp_path, tmp_warehouse,
                                                                    capsys):
    from pipelines.cli.app import main

    recipe = _recipe(tmp_path / "case", "binary", NMEA,
                     {"data.nmea": _demo_day(tmp_path).read_bytes()})

    assert main(["run", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "data.nmea: file is an HDF5/netCDF-4 file, not text" in err, err


def test_allow_empty_commits_an_empty_version(tmp_path, tmp_warehouse, capsys):
    from pipelines.cli.app import main

    recipe = _recipe(tmp_path / "case", "empty-allowed", NMEA, {"data.nmea": b""},
                     extra="allow_empty: true")

    assert main(["run", str(recipe)]) == 0, capsys.readouterr().err
    catalog = store.open_catalog(f"sqlite:///{tmp_warehouse}/catalog.db")
    (version,) = catalog.versions("empty-allowed")
    assert version.rows == 0


def test_nmea_with_bare_cr_line_ends_is_read_line_by_line(tmp_path, tmp_warehouse, capsys):
    """CR-only line ends (classic Mac, some serial loggers) are lines, not one bad record."""
    from pipelines.cli.app import main

    lf = require_shared_data("ais/libais_typeexamples.nmea").read_bytes().replace(b"\r\n", b"\n")
    assert b"\r" not in lf
    rows = {}
    for name, data in (("lf", lf), ("cr", lf.replace(b"\n", b"\r"))):
        recipe = _recipe(tmp_path / name, f"ais-{name}", NMEA, {"data.nmea": data})
        assert main(["run", str(recipe)]) == 0, capsys.readouterr().err
        catalog = store.open_catalog(f"sqlite:///{tmp_warehouse}/catalog.db")
        (version,) = catalog.versions(f"ais-{name}")
        rows[name] = version.rows
    assert rows["cr"] == rows["lf"] > 20
