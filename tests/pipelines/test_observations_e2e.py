"""Every observation file in ../shared/data through `haina run` with its example recipe.

Connector tests check the values against independent reads of each file; here the same numbers
must come out of a whole run: rows in the committed version, rows quarantined with their reason,
the accounting identity per source file in the manifest, units in the Parquet schema, and the
known bad values of the test set flagged by QC.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as pads
import pytest

from catalog.store import open_catalog
from pipelines import recipe as recipe_mod
from pipelines.cli.app import main

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
RECIPES = Path(__file__).resolve().parents[2] / "examples" / "recipes"

#: recipe -> (rows written, rows quarantined, rows dropped), from the connector tests' independent reads
EXPECTED = {
    "ais_libais_typeexamples": (26, 0, 0),
    "ais_marinecadastre_20230111": (1000, 0, 0),
    "ais_pyais_sample": (778, 120, 0),          # 100 empty payloads, 20 orphan fragments
    "argo_1901462_prof": (1406, 0, 1),          # 21 x 67 levels, one fill-padded level
    "argo_d4901079_010": (72, 0, 0),
    "argo_sd5904989_012": (849, 0, 0),
    "dsg_copernicus_exec0220": (2069, 0, 0),
    "dsg_erddap_argo_1900207": (55, 0, 0),
    "dsg_ooi_pco2w_ce01issm": (7339, 0, 0),
    "ports_nais_monthly_visits": (1162, 0, 0),
    "ports_nga_wpi": (3768, 0, 0),
    "ports_usace_principal": (150, 0, 0),
    "station_cmop_sandi_salinity": (24436, 0, 0),
    "station_coops_9414458": (21, 0, 0),
    "station_erddap_glider_amelia": (18113, 0, 0),
    "station_ndbc_41002": (6560, 0, 0),
}


def test_every_observation_file_has_a_recipe():
    assert sorted(p.stem for p in RECIPES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, shared_data) -> Path:
    return tmp_path_factory.mktemp("observations")


def _committed(warehouse: Path, name: str):
    catalog = open_catalog(f"sqlite:///{warehouse}/catalog.db")
    version = catalog.version(name, "latest")
    manifest = json.loads((Path(version.path) / "manifest.json").read_text())
    return catalog, version, manifest


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_run_commits_every_row_or_its_reason(stem, warehouse, capsys):
    recipe = recipe_mod.load(RECIPES / f"{stem}.yaml")
    assert main(["--warehouse", str(warehouse), "run", str(RECIPES / f"{stem}.yaml")]) == 0
    printed = capsys.readouterr().out
    assert "committed" in printed and "rows in = out + dropped" in printed.replace("Rows: in", "rows in")
    catalog, version, manifest = _committed(warehouse, recipe.name)
    rows, quarantined, dropped = EXPECTED[stem]
    run = catalog.run(version.run_id)
    assert (version.rows, run.rows_rejected, run.rows_dropped) == (rows, quarantined, dropped)
    assert run.rows_in == rows + quarantined + dropped
    for rec in manifest["extra"]["row_accounting"]["per_source"].values():
        assert rec["rows_in"] == rec["rows_out"] + rec["rows_dropped"] + rec["rows_quarantined"]
    sources = catalog.sources(run.run_id)  # the same accounting, per file, in the catalog
    for src in sources:
        assert src.rows_in == src.rows_out + src.rows_dropped + src.rows_quarantined
    assert sum(src.rows_out for src in sources) == rows
    assert sum(src.rows_quarantined for src in sources) == quarantined
    data = [f"{version.path}/{f.path}" for f in catalog.files(version.version_id)
            if f.partition != "quarantine"]
    table = pads.dataset(data, format="parquet").to_table()
    assert table.num_rows == rows
    units = {f.name: (f.metadata or {}).get(b"haina.units", b"").decode() for f in table.schema}
    for column in ("sea_water_temperature", "sea_surface_temperature", "air_temperature"):
        if column in units:
            assert units[column] == "degC"
    if quarantined:
        quarantine = [f"{version.path}/{f.path}" for f in catalog.files(version.version_id)
                      if f.partition == "quarantine"]
        reasons = pads.dataset(quarantine, format="parquet").to_table().column("reason")
        assert len(reasons) == quarantined and reasons.null_count == 0


@pytest.mark.parametrize("stem, column, above", [
    # the gross-range fail limits of expectations/qc_defaults.yaml
    ("dsg_copernicus_exec0220",
     "mole_concentration_of_dissolved_molecular_oxygen_in_sea_water", 600.0),
    ("dsg_ooi_pco2w_ce01issm", "partial_pressure_of_carbon_dioxide_in_sea_water", 5000.0),
])
def test_known_bad_values_end_up_flagged(stem, column, above, shared_data, tmp_path):
    """DOXY up to 5408 (Copernicus) and pCO2 up to 73 020 µatm (OOI) are QC FAILs."""
    name = recipe_mod.load(RECIPES / f"{stem}.yaml").name
    assert main(["--warehouse", str(tmp_path), "run", str(RECIPES / f"{stem}.yaml")]) == 0
    catalog, version, _ = _committed(tmp_path, name)
    data = [f"{version.path}/{f.path}" for f in catalog.files(version.version_id)
            if f.partition != "quarantine"]
    table = pads.dataset(data, format="parquet").to_table(columns=[column, f"{column}_qc"])
    bad = pc.greater(table[column], above)
    assert pc.sum(bad).as_py() > 0
    flags = pc.filter(table[f"{column}_qc"], bad)
    assert pc.all(pc.equal(flags, 4)).as_py(), "every implausible value is flagged FAIL (4)"
    report = Path(catalog.run(version.run_id).report_path).read_text()
    assert column in report


DOXY = "mole_concentration_of_dissolved_molecular_oxygen_in_sea_water"


def _doxy_recipe(tmp_path: Path, mostly: float) -> Path:
    """The Copernicus recipe, plus a suite using the QARTOD gross range expectation on DOXY."""
    suite = tmp_path / "qartod.json"
    suite.write_text(json.dumps({"name": "qartod.oxygen", "expectations": [
        {"type": "expect_column_values_to_pass_qartod_gross_range",
         "kwargs": {"column": DOXY, "fail_span": [0.0, 600.0], "suspect_span": [0.0, 500.0],
                    "mostly": mostly}}]}))
    source = RECIPES / "dsg_copernicus_exec0220.yaml"
    text = source.read_text().replace(
        "uri: ../../../shared/", f"uri: {(RECIPES / '../../../shared').resolve()}/")
    text = text.replace("quality: {max_failing_fraction: 0.05,",
                        f"quality: {{suites: [{suite}], max_failing_fraction: 0.05,")
    recipe = tmp_path / "copernicus_qartod.yaml"
    recipe.write_text(text)
    return recipe


def test_qartod_expectation_counts_what_the_qc_step_flags(shared_data, tmp_path, capsys):
    """GE's adapter over qc.gross_range agrees with the QC step's flag column on real data."""
    recipe = _doxy_recipe(tmp_path, mostly=0.05)
    assert main(["--warehouse", str(tmp_path / "wh"), "run", str(recipe)]) == 0
    catalog, version, manifest = _committed(tmp_path / "wh", "dsg_copernicus_exec0220")
    data = [f"{version.path}/{f.path}" for f in catalog.files(version.version_id)
            if f.partition != "quarantine"]
    flags = pads.dataset(data, format="parquet").to_table(
        columns=[f"{DOXY}_qc_gross_range"]).column(0)
    fails = pc.sum(pc.equal(flags, 4)).as_py()
    (digest,) = [s for s in manifest["extra"]["validation"] if s["suite"] == "qartod.oxygen"]
    assert fails > 1000 and digest["unexpected"][0]["unexpected_count"] == fails

    (tmp_path / "strict").mkdir()
    strict = _doxy_recipe(tmp_path / "strict", mostly=0.99)
    assert main(["--warehouse", str(tmp_path / "wh2"), "run", str(strict)]) == 1
    err = capsys.readouterr().err
    assert "expect_column_values_to_pass_qartod_gross_range" in err and DOXY in err


def test_qartod_location_expectation_counts_what_the_qc_step_flags(shared_data, tmp_path):
    """GE's pair adapter over qc.location agrees with the QC step's qc_location on real AIS
    messages (the libais examples include positions the location test fails)."""
    suite = tmp_path / "where.json"
    suite.write_text(json.dumps({"name": "qartod.where", "expectations": [
        {"type": "expect_column_pair_values_to_pass_qartod_location",
         "kwargs": {"column_A": "latitude", "column_B": "longitude", "mostly": 0.5}}]}))
    text = (RECIPES / "ais_libais_typeexamples.yaml").read_text().replace(
        "uri: ../../../shared/", f"uri: {(RECIPES / '../../../shared').resolve()}/")
    text = text.replace("quality: {max_failing_fraction: 0.05,",
                        f"quality: {{suites: [{suite}], max_failing_fraction: 0.05,")
    recipe = tmp_path / "libais_where.yaml"
    recipe.write_text(text)
    assert main(["--warehouse", str(tmp_path / "wh"), "run", str(recipe)]) == 0
    catalog, version, manifest = _committed(tmp_path / "wh", "ais_libais_typeexamples")
    data = [f"{version.path}/{f.path}" for f in catalog.files(version.version_id)
            if f.partition != "quarantine"]
    flags = pads.dataset(data, format="parquet").to_table(columns=["qc_location"]).column(0)
    fails = pc.sum(pc.equal(flags, 4)).as_py()
    (digest,) = [s for s in manifest["extra"]["validation"] if s["suite"] == "qartod.where"]
    assert fails > 0 and digest["unexpected"][0]["unexpected_count"] == fails
