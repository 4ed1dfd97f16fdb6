"""Unit conversion, including a recipe's ``units_to`` for columns outside the canonical list.

``units_to`` converts with pint (through cf_xarray's udunits-aware registry): a scale and an
offset computed once per variable, applied to whole arrays; an impossible target is refused when
the source is planned, so ``haina check`` reports it.
"""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from connectors.config import VariableMapping
from connectors.exceptions import UnitConversionError
from connectors.netcdf import decoding
from connectors.units import column_conversion
from pipelines.cli.app import main
from tests.connectors.netcdf.test_grid import LAT, LON, time_var, write_nc
from tests.connectors.netcdf.test_grid import run as run_grid
from tests.connectors.reading import read_source


@pytest.mark.parametrize("source, target, scale, offset", [
    ("mS cm-1", "S m-1", 0.1, 0.0),
    ("mS/cm", "S/m", 0.1, 0.0),
    ("mm", "m", 0.001, 0.0),
    ("degree_Celsius", "K", 1.0, 273.15),
    ("cm s-1", "m s-1", 0.01, 0.0),
    ("PSU", "1e-3", 1.0, 0.0),
])
def test_units_to_is_an_affine_conversion_by_pint(source, target, scale, offset):
    conv = column_conversion(source, None, target, variable="x")
    assert conv.target_units == target
    assert conv.scale == pytest.approx(scale) and conv.offset == pytest.approx(offset)
    values = np.array([0.0, 10.0, 52.5], np.float32)
    np.testing.assert_allclose(conv.apply(values), values * scale + offset, rtol=1e-6)


def test_without_units_to_a_non_canonical_column_keeps_its_units():
    conv = column_conversion("mS cm-1", None, None, variable="cond")
    assert conv.identity and conv.target_units == "mS cm-1"


@pytest.mark.parametrize("source, target", [("m", "degC"), ("PSU", "m"), ("mm", "not_a_unit")])
def test_an_impossible_units_to_names_the_variable_both_units_and_the_fix(source, target):
    with pytest.raises(UnitConversionError) as err:
        column_conversion(source, None, target, variable="level", source="f.csv")
    message = str(err.value)
    assert message.startswith("f.csv: ")
    assert "'level'" in message and repr(source) in message and f"units_to {target!r}" in message
    assert "Fix: set variables.level.units_to" in message


def test_units_to_on_a_canonical_column_must_be_its_canonical_units():
    conv = column_conversion("K", "degC", "degree_Celsius", variable="t")
    assert conv.target_units == "degC" and conv.offset == pytest.approx(-273.15)
    with pytest.raises(UnitConversionError, match="canonical column, always written in 'degC'"):
        column_conversion("K", "degC", "K", variable="t")


# ------------------------------------------------------------------------- every connector


def test_delimited_conductivity_and_sea_level_converted(tmp_path):
    path = tmp_path / "cond.csv"
    path.write_text("time,cond,level\n"
                    "2024-01-01T00:00:00Z,52.5,1250\n"
                    "2024-01-01T01:00:00Z,48.0,-30\n")
    plan, table, quarantine, _ = read_source(
        "delimited", path, time={"columns": "time"},
        variables={"cond": {"name": "conductivity", "units": "mS/cm", "units_to": "S/m"},
                   "level": {"name": "sea_level", "units": "mm", "units_to": "m",
                             "dtype": "float64"}})
    assert quarantine.num_rows == 0
    np.testing.assert_allclose(table["conductivity"].to_numpy(), [5.25, 4.8], rtol=1e-6)
    assert table["sea_level"].to_pylist() == pytest.approx([1.25, -0.03])
    cond = plan.schema.field("conductivity").metadata
    assert cond[b"haina.units"] == b"S/m" and cond[b"haina.source_units"] == b"mS/cm"
    assert b"x * 0.1" in cond[b"haina.conversion"]
    assert plan.schema.field("sea_level").metadata[b"haina.units"] == b"m"


def test_netcdf_grid_conductivity_converted(tmp_path):
    cond = np.array([[[52.5, 48.0, 0.0], [10.0, 1.0, 35.0]]], np.float32)
    path = write_nc(tmp_path / "c.nc", {"time": 1, "lat": 2, "lon": 3}, [
        time_var([0]), LAT, LON,
        ("cndc", "f4", ("time", "lat", "lon"), cond,
         {"standard_name": "sea_water_electrical_conductivity", "units": "mS cm-1"})])
    plan, table, _, _ = run_grid(path, variables={"cndc": {"name": "conductivity",
                                                           "units_to": "S m-1"}})
    np.testing.assert_allclose(table["conductivity"].to_numpy(), cond.ravel() / 10, rtol=1e-6)
    meta = plan.schema.field("conductivity").metadata
    assert meta[b"haina.units"] == b"S m-1" and meta[b"haina.source_units"] == b"mS cm-1"


def test_dsg_and_argo_columns_use_units_to():
    info, conv = decoding.variable_column(
        "CNDC", VariableMapping(name="conductivity", units_to="S m-1"),
        {"units": "mhos/m"}, source="argo.nc")
    assert info.units == "S m-1" and conv.scale == pytest.approx(1.0)
    info, conv = decoding.variable_column(
        "CNDC", VariableMapping(name="conductivity", units_to="S m-1"),
        {"units": "mS/cm"}, source="argo.nc")
    assert info.units == "S m-1" and conv.scale == pytest.approx(0.1)


# ------------------------------------------------------------------------------ haina check


def test_check_refuses_an_impossible_units_to_in_one_line(tmp_path, capsys):
    (tmp_path / "level.csv").write_text("time,level\n2024-01-01T00:00:00Z,1250\n")
    recipe = tmp_path / "level.yaml"
    recipe.write_text(textwrap.dedent("""\
        name: level-test
        title: units_to refused
        licence: CC0-1.0
        owner: {name: tests}
        sources:
          - kind: delimited
            uri: level.csv
            time: {columns: time}
            variables: {level: {name: sea_level, units: m, units_to: degC}}
        """))
    code = main(["--warehouse", str(tmp_path / "warehouse"), "check", str(recipe)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    line = " ".join(err.split())
    assert "'level'" in line and "'m'" in line and "units_to 'degC'" in line
    assert "Fix: set variables.level.units_to" in line
    assert not (tmp_path / "warehouse").exists()
