"""Bad input through ``haina run`` / ``haina check``: one clear message, never a traceback.

Each case builds its input in ``tmp_path`` (tiny grids written with xarray, broken on purpose)
and a recipe pointing at it, runs the CLI in-process and checks: the exit code, that stderr names
the file and the fix (connector errors) or the key path, bad value and what is accepted (recipe
errors), and that no version was committed.
"""
from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog.store import open_catalog
from pipelines.cli.app import main

# --------------------------------------------------------------------------- inputs


def write_grid(path: Path, *, units: str = "degC", hot_fraction: float = 0.0,
               fmt: str = "NETCDF4") -> Path:
    """A 2 x 10 x 12 CF grid of sea_water_temperature; ``hot_fraction`` of the cells at 99 degC."""
    rng = np.random.default_rng(7)
    temp = rng.uniform(10.0, 20.0, (2, 10, 12)).astype("float32")
    flat = temp.reshape(-1)
    flat[: int(round(flat.size * hot_fraction))] = 99.0
    ds = xr.Dataset(
        {"temp": (("time", "lat", "lon"), temp,
                  {"standard_name": "sea_water_temperature", "units": units})},
        coords={"time": pd.date_range("2025-07-01", periods=2, freq="D"),
                "lat": ("lat", np.linspace(35.0, 36.0, 10),
                        {"standard_name": "latitude", "units": "degrees_north"}),
                "lon": ("lon", np.linspace(120.0, 121.0, 12),
                        {"standard_name": "longitude", "units": "degrees_east"})},
    )
    ds.to_netcdf(path, format=fmt)
    return path


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_recipe(folder: Path, name: str, source: str, *, top: str = "",
                 licence: str = "CC0-1.0") -> Path:
    """A recipe ``<name>.yaml``; ``source`` is the YAML body of sources[0] (indented 4)."""
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent("""\
        name: {name}
        title: bad input test
        licence: {licence}
        owner: {{name: tests}}
        {top}
        sources:
          - kind: netcdf_grid
        {source}
        """).format(name=name, licence=licence, top=top,
                    source=textwrap.indent(textwrap.dedent(source), "    ")))
    return path


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_no_version(capsys, warehouse: Path, name: str) -> None:
    """`haina versions NAME` lists none (or the dataset or the whole catalog is unknown: a
    reader creates no catalog), and nothing is on disk."""
    code, out, err = cli(capsys, "--warehouse", str(warehouse), "versions", name)
    if code == 0:
        assert open_catalog(f"sqlite:///{warehouse}/catalog.db").versions(name) == []
    else:
        assert code == 2 and ("not in the catalog" in err or "no catalog at" in err), err
    assert "Traceback" not in out + err
    assert not list((warehouse / "datasets" / name / "versions").glob("*"))


# --------------------------------------------------------------------------- source errors


@dataclasses.dataclass(frozen=True)
class SourceCase:
    build: Callable[[Path], Path]      # tmp folder -> recipe path
    must_say: tuple[str, ...]          # substrings of stderr besides "Fix:"


def _truncated(fmt: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        truncate(write_grid(tmp / "trunc.nc", fmt=fmt))
        return write_recipe(tmp, "truncated", "uri: trunc.nc\nvariables: {temp: {}}")
    return build


def _text_as_nc(tmp: Path) -> Path:
    (tmp / "x.nc").write_text("station,temp\nA,12.5\n")
    return write_recipe(tmp, "text-file", "uri: x.nc\nvariables: {temp: {}}")


def _absent_variable(tmp: Path) -> Path:
    write_grid(tmp / "good.nc")
    return write_recipe(tmp, "absent-var", "uri: good.nc\nvariables: {salt: {}}")


def _bad_units(tmp: Path) -> Path:
    write_grid(tmp / "metres.nc", units="m")
    return write_recipe(tmp, "bad-units", "uri: metres.nc\nvariables: {temp: {}}")


def _empty_glob(tmp: Path) -> Path:
    return write_recipe(tmp, "empty-glob", "uri: missing/*.nc\nvariables: {temp: {}}")


SOURCE_CASES = {
    "truncated-netcdf4": SourceCase(_truncated("NETCDF4"), ("trunc.nc", "truncated")),
    "truncated-netcdf3": SourceCase(_truncated("NETCDF3_CLASSIC"), ("trunc.nc", "truncated")),
    "text-named-nc": SourceCase(_text_as_nc, ("x.nc", "not netCDF")),
    "absent-variable": SourceCase(_absent_variable, ("good.nc", "'salt'", "temp")),
    "unconvertible-units": SourceCase(_bad_units, ("metres.nc", "'temp'", "'m'", "degC")),
    "empty-glob": SourceCase(_empty_glob, ("missing/*.nc", "sources[0].uri")),
}


@pytest.mark.parametrize("case", list(SOURCE_CASES))
def test_source_error_is_one_clear_message(case, tmp_path, capsys):
    recipe = SOURCE_CASES[case].build(tmp_path)
    warehouse = tmp_path / "warehouse"
    name = recipe.stem
    code, out, err = cli(capsys, "--warehouse", str(warehouse), "run", str(recipe))
    assert code == 2, err
    assert "Traceback" not in out + err
    assert "Fix:" in err
    for text in SOURCE_CASES[case].must_say:
        assert text in err, f"{text!r} not in {err!r}"
    assert_no_version(capsys, warehouse, name)

    # `haina check` plans the same sources, so it fails the same way
    check_code, check_out, check_err = cli(capsys, "--warehouse", str(warehouse), "check",
                                           str(recipe))
    assert (check_code, check_err) == (code, err)
    assert "Traceback" not in check_out


# --------------------------------------------------------------------------- recipe errors


@dataclasses.dataclass(frozen=True)
class RecipeCase:
    source: str
    top: str = ""
    licence: str = "CC0-1.0"
    key_path: str = ""
    bad_value: str = ""
    accepted: tuple[str, ...] = ()


RECIPE_CASES = {
    "unknown-source-key": RecipeCase("uri: good.nc\nvariabels: {temp: {}}",
                                     key_path="sources[0].variabels", bad_value="{'temp': {}}",
                                     accepted=("variables",)),
    "unknown-top-key": RecipeCase("uri: good.nc", top="colour: blue", key_path="colour",
                                  bad_value="'blue'", accepted=("title",)),
    "bad-licence": RecipeCase("uri: good.nc", licence="'free for all!'", key_path="licence",
                              bad_value="'free for all!'", accepted=("SPDX", "CC-BY-4.0")),
    "chunk-size-type": RecipeCase("uri: good.nc\nchunk_size: lots",
                                  key_path="sources[0].chunk_size", bad_value="'lots'",
                                  accepted=("integer", "'auto'")),
    "unknown-kind": RecipeCase("uri: good.nc", key_path="sources[0].kind",
                               bad_value="'netcdf_gridd'", accepted=("netcdf_grid", "argo")),
}


def _bad_recipe(tmp: Path, case: str) -> Path:
    spec = RECIPE_CASES[case]
    write_grid(tmp / "good.nc")
    path = write_recipe(tmp, case, spec.source, top=spec.top, licence=spec.licence)
    if case == "unknown-kind":
        path.write_text(path.read_text().replace("kind: netcdf_grid", "kind: netcdf_gridd"))
    return path


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize("case", list(RECIPE_CASES))
def test_recipe_error_names_file_key_and_value(case, command, tmp_path, capsys):
    recipe = _bad_recipe(tmp_path, case)
    warehouse = tmp_path / "warehouse"
    code, out, err = cli(capsys, "--warehouse", str(warehouse), command, str(recipe))
    spec = RECIPE_CASES[case]
    assert code == 2, err
    assert "Traceback" not in out + err
    assert recipe.name in err
    assert spec.key_path in err
    assert spec.bad_value in err
    assert_no_version(capsys, warehouse, case)


@pytest.mark.parametrize("case", list(RECIPE_CASES))
def test_recipe_error_says_what_is_accepted(case, tmp_path, capsys):
    recipe = _bad_recipe(tmp_path, case)
    code, _out, err = cli(capsys, "--warehouse", str(tmp_path / "wh"), "check", str(recipe))
    assert code == 2
    for text in RECIPE_CASES[case].accepted:
        assert text in err, f"{text!r} not in {err!r}"


def test_recipe_key_path_is_a_real_key_path(tmp_path, capsys):
    recipe = _bad_recipe(tmp_path, "chunk-size-type")
    _code, _out, err = cli(capsys, "--warehouse", str(tmp_path / "wh"), "check", str(recipe))
    # one problem is one line: "FILE: recipe is not valid: KEY: what (got VALUE)"
    assert err.strip().count("\n") == 0, err
    assert err.split("recipe is not valid: ", 1)[1].startswith("sources[0].chunk_size: "), err


def test_several_problems_are_listed_one_per_line(tmp_path, capsys):
    write_grid(tmp_path / "good.nc")
    recipe = write_recipe(tmp_path, "two-problems", "uri: good.nc", top="colour: blue",
                          licence="'free for all!'")
    _code, _out, err = cli(capsys, "--warehouse", str(tmp_path / "wh"), "check", str(recipe))
    problems = [line.strip() for line in err.splitlines() if line.strip().startswith("- ")]
    assert "recipe is not valid (2 problems):" in err
    assert sorted(p.split(":")[0] for p in problems) == ["- colour", "- licence"], err


# --------------------------------------------------------------------------- the quality gate


@pytest.fixture
def hot_recipe(tmp_path) -> Path:
    """Half the temperatures at 99 degC: far outside the sea_water_temperature gross range."""
    write_grid(tmp_path / "hot.nc", hot_fraction=0.5)
    return write_recipe(tmp_path, "hot-grid", "uri: hot.nc\nvariables: {temp: {}}")


def test_gate_failure_commits_nothing(hot_recipe, tmp_path, capsys):
    warehouse = tmp_path / "warehouse"
    code, out, err = cli(capsys, "--warehouse", str(warehouse), "run", str(hot_recipe))
    assert code == 1, err
    assert "Traceback" not in out + err
    assert "expect_column_values_to_be_between" in err
    assert "'sea_water_temperature'" in err
    assert "120 of 240 rows" in err
    assert "Fix:" in err and hot_recipe.name in err
    report = Path(err.split("Validation report:")[1].split()[0])
    assert report.is_file()
    assert report.suffix == ".html"
    assert_no_version(capsys, warehouse, "hot-grid")

    runs = open_catalog(f"sqlite:///{warehouse}/catalog.db").runs("hot-grid")
    assert [r.status for r in runs] == ["gate_failed"]
    assert runs[0].report_path == str(report)
    code, out, err = cli(capsys, "--warehouse", str(warehouse), "runs", "hot-grid")
    assert code == 0 and "gate_failed" in out

    # the JSON report beside the HTML one records the failing expectation too
    details = json.loads(report.with_suffix(".json").read_text())
    assert "expect_column_values_to_be_between" in json.dumps(details)


def test_gate_failure_shows_the_offending_values(hot_recipe, tmp_path, capsys):
    code, _out, err = cli(capsys, "--warehouse", str(tmp_path / "wh"), "run", str(hot_recipe))
    assert code == 1
    assert "99.0" in err
