"""A seeded fuzz corpus of the real files in ``../shared/data``: every mutation must end as rows,
quarantined rows, or one named input error -- never another exception, a hang, or a truncated
binary file accepted.

Each case mutates one real file in ``tmp_path`` (:mod:`tests.faults.mutations`: truncations,
seeded byte flips, a Latin-1 byte, UTF-16, CR and mixed line ends) and runs it through its
connector's plan and read in-process, with the source entry of the file's example recipe. A few
cases also go through ``haina run`` in a subprocess.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import connectors
from connectors.exceptions import ConnectorError, UnreadableSourceError
from pipelines import recipe as recipe_mod
from tests.conftest import REPO, require_shared_data
from tests.faults import mutations as M

pytestmark = pytest.mark.realdata

#: real file -> the recipe whose first source reads it
REAL = {
    "gridded_netcdf/GEBCO_2020_erddap_subset_lat-67_-54_lon81_123.nc": "tests/recipes/gebco_kerguelen.yaml",
    "gridded_netcdf/ndbc_hfradar_uswc_1km_rtv_20250602T0000Z.nc": "tests/recipes/hfradar_uswc.yaml",
    "gridded_netcdf/cmems_mod_glo_phy-so_anfc_0.083deg_P1D-m_so_13.00W-5.00E_47.00N-64.00N_0.49m_2025-09-24-2025-09-25.nc": "tests/recipes/cmems_glo_so.yaml",
    "gridded_netcdf/cmems_mod_ibi_phy_my_0.083deg-3D_P1Y-m_thetao_9.83W-9.67W_34.00N-34.17N_0.51-1.56m_1993-01-01-2021-01-01.nc": "tests/recipes/cmems_ibi_thetao.yaml",
    "argo_dsg_netcdf/D4901079_010.nc": "examples/recipes/argo_d4901079_010.yaml",
    "argo_dsg_netcdf/SD5904989_012.nc": "examples/recipes/argo_sd5904989_012.yaml",
    "argo_dsg_netcdf/1901462_prof.nc": "examples/recipes/argo_1901462_prof.yaml",
    "argo_dsg_netcdf/erddap_ifremer_ArgoFloats_lon-20_-16_lat0_1_200401.nc": "examples/recipes/dsg_erddap_argo_1900207.yaml",
    "argo_dsg_netcdf/GL_TS_BO_EXEC0220.nc": "examples/recipes/dsg_copernicus_exec0220.yaml",
    "argo_dsg_netcdf/ooi_pco2w_pco2_netcdf_example.nc": "examples/recipes/dsg_ooi_pco2w_ce01issm.yaml",
    "station_timeseries/ndbc_41002_realtime2.txt": "examples/recipes/station_ndbc_41002.yaml",
    "station_timeseries/erddap_gliders_amelia-20180501T0000_temperature.csvp": "examples/recipes/station_erddap_glider_amelia.yaml",
    "station_timeseries/coops_9414458_water_level_20050330.json": "examples/recipes/station_coops_9414458.yaml",
    "station_timeseries/cmop_attenuated_salinity_example.csv": "examples/recipes/station_cmop_sandi_salinity.yaml",
    "ais/pyais_nmea_data_sample.txt": "examples/recipes/ais_pyais_sample.yaml",
    "ais/libais_typeexamples.nmea": "examples/recipes/ais_libais_typeexamples.yaml",
    "ais/aisdb_marinecadastre_test_data_noaa_20230101.csv": "examples/recipes/ais_marinecadastre_20230111.yaml",
    "ports/usace_Principal_Ports.csv": "examples/recipes/ports_usace_principal.yaml",
    "ports/nais_usace_principal_ports_monthly_visits.csv": "examples/recipes/ports_nais_monthly_visits.yaml",
    "ports/nga_wpi_UpdatedPub150.csv": "examples/recipes/ports_nga_wpi.yaml",
}
BINARY = {rel for rel in REAL if rel.endswith(".nc")}
BINARY_MUTATIONS = ("truncate-0.5", "truncate-0.999", "flip-0", "flip-1", "head-flip-0",
                    "head-flip-1")
TEXT_MUTATIONS = ("truncate-0.5", "truncate-0.999", "flip-0", "latin1", "utf16", "cr", "mixed")
CASES = [(rel, m) for rel in REAL for m in (BINARY_MUTATIONS if rel in BINARY else TEXT_MUTATIONS)]
CASE_SECONDS = 30


def mutate(data: bytes, rel: str, mutation: str) -> bytes:
    """The mutated bytes of one case; seeded by file and mutation, so every run is the same."""
    kind, _, arg = mutation.rpartition("-") if "-" in mutation else (mutation, "", "")
    seed = M.seed_of(rel, mutation)
    if kind == "truncate":
        return M.truncate(data, float(arg))
    if kind == "flip":
        return M.flip_bytes(data, seed)
    if kind == "head-flip":
        return M.flip_bytes(data, seed, 1, head=2048)
    if kind == "latin1":
        return M.latin1_line(data, seed)
    if kind == "utf16":
        return M.reencode(data, "utf-16")
    if kind in ("cr", "mixed"):
        return M.line_endings(data, kind, seed)
    raise ValueError(f"unknown mutation {mutation!r}")


def source_config(rel: str, uri: str):
    """The example recipe's source entry for ``rel``, pointed at ``uri``."""
    recipe = recipe_mod.load(REPO / REAL[rel])
    return recipe.sources[0].model_copy(update={"uri": uri})


class Hang(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail a case that takes longer than ``seconds`` (SIGALRM interrupts blocking reads)."""
    def expired(*_):
        raise Hang(f"no outcome after {seconds} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def outcome(config, path: Path) -> tuple[int, int]:
    """Plan and read every chunk: (rows, quarantined rows); raises what the connector raises."""
    data = path.read_bytes()
    connector = connectors.get(config.kind)
    plan = connector.plan(config, str(path), hashlib.sha256(data).hexdigest(), len(data))
    rows = quarantined = 0
    try:
        for chunk in plan.chunks:
            result = connector.read(config, chunk, plan.schema)
            assert result.rows_in == (result.table.num_rows + result.rows_dropped
                                      + result.rows_quarantined), chunk
            rows, quarantined = rows + result.table.num_rows, quarantined + result.rows_quarantined
    finally:
        connector.release()
    return rows, quarantined


@pytest.mark.parametrize("rel, mutation", CASES, ids=[f"{Path(r).stem[:24]}-{m}" for r, m in CASES])
def test_mutated_real_file_has_a_named_outcome(tmp_path, rel, mutation):
    original = require_shared_data(rel)
    path = tmp_path / original.name
    path.write_bytes(mutate(original.read_bytes(), rel, mutation))
    config = source_config(rel, str(path))
    try:
        with deadline(CASE_SECONDS):
            rows, quarantined = outcome(config, path)
    except ConnectorError as err:  # the named input error: one line naming the file and fix
        message = str(err)
        assert "\n" not in message and path.name in message and "Fix:" in message, message
        if rel in BINARY and mutation.startswith("truncate"):
            assert isinstance(err, UnreadableSourceError), message
        return
    # accepted: a truncated or re-encoded binary file never is
    assert not (rel in BINARY and mutation.startswith("truncate")), (rows, quarantined)
    assert rows + quarantined > 0


def test_corpus_size_and_determinism():
    assert 100 <= len(CASES) <= 160
    data = bytes(range(256)) * 64
    for mutation in {m for _, m in CASES}:
        assert mutate(data, "x", mutation) == mutate(data, "x", mutation) != data
    assert mutate(b"a,b\n1,2\n", "x", "utf16").startswith(b"\xff\xfe")


# --------------------------------------------------------------------------- through haina run


RUN_CASES = [("argo_dsg_netcdf/D4901079_010.nc", "truncate-0.999", 2),
             ("ais/aisdb_marinecadastre_test_data_noaa_20230101.csv", "latin1", 0),
             ("station_timeseries/cmop_attenuated_salinity_example.csv", "utf16", 2)]


@pytest.mark.slow
@pytest.mark.parametrize("rel, mutation, code", RUN_CASES)
def test_mutated_file_through_haina_run(tmp_path, rel, mutation, code):
    original = require_shared_data(rel)
    path = tmp_path / original.name
    path.write_bytes(mutate(original.read_bytes(), rel, mutation))
    source = source_config(rel, path.name).model_dump(mode="json", exclude_none=True)
    recipe = tmp_path / "fuzz.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "fuzz", "title": "fuzz case", "licence": "CC0-1.0", "owner": {"name": "tests"},
        "sources": [source], "quality": {"max_failing_fraction": 0.01}}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "pipelines.cli.app", "--warehouse",
                           str(tmp_path / "warehouse"), "run", str(recipe)],
                          capture_output=True, text=True, timeout=180, env=env, cwd=REPO)
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode == code, done.stderr
    if code == 2:
        assert path.name in done.stderr and "Fix:" in done.stderr
