"""The connector contract of connectors/base.py, checked on every registered kind.

Each kind reads a small real file from ../shared/data with the configuration of its example
recipe. A kind registered later (``connectors.register``) is collected here too and fails
until it has a sample in :data:`SAMPLES`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

import connectors
from connectors.base import QUARANTINE_SCHEMA, ChunkResult, ChunkSpec, SourcePlan
from pipelines.recipe import load
from tests.conftest import require_shared_data

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "examples" / "recipes"
IBI = ("gridded_netcdf/cmems_mod_ibi_phy_my_0.083deg-3D_P1Y-m_thetao_9.83W-9.67W_34.00N-34.17N_"
       "0.51-1.56m_1993-01-01-2021-01-01.nc")


@dataclasses.dataclass(frozen=True)
class Sample:
    """A file and the recipe keys (besides ``kind`` and ``uri``) that read it."""

    path: Path
    fields: dict[str, Any]


def _recipe(name: str, **overrides: Any) -> Callable[[], Sample]:
    """The first source of an example recipe, with ``overrides`` (e.g. a smaller chunk)."""
    def sample() -> Sample:
        recipe = load(RECIPES / f"{name}.yaml")
        source = recipe.sources[0]
        path = (recipe.base_dir / source.uris()[0]).resolve()
        require_shared_data(str(path.relative_to((REPO / ".." / "shared" / "data").resolve())))
        fields = source.model_dump(mode="json", exclude_unset=True, exclude={"kind", "uri"})
        return Sample(path, {**fields, **overrides})
    return sample


def _file(rel: str, **fields: Any) -> Callable[[], Sample]:
    return lambda: Sample(require_shared_data(rel), fields)


#: kind -> its sample; text kinds get small chunks so that a file is read in several
SAMPLES: dict[str, Callable[[], Sample]] = {
    "netcdf_grid": _file(IBI, chunk_size=10),
    "netcdf_dsg": _recipe("dsg_copernicus_exec0220"),
    "argo": _recipe("argo_1901462_prof", profiles_per_chunk=8),
    "ndbc_text": _recipe("station_ndbc_41002", chunk_bytes=128 * 1024),
    "erddap_csv": _recipe("station_erddap_glider_amelia", chunk_bytes=128 * 1024),
    "coops_json": _recipe("station_coops_9414458"),
    "delimited": _recipe("station_cmop_sandi_salinity", chunk_bytes=128 * 1024),
    "ais_nmea": _recipe("ais_pyais_sample", chunk_bytes=8192),
    "ais_csv": _recipe("ais_marinecadastre_20230111", chunk_bytes=32 * 1024),
    "port_table": _recipe("ports_usace_principal"),
}


def _sample(kind: str) -> Sample:
    if kind not in SAMPLES:
        pytest.fail(f"kind {kind!r} is registered but has no sample: add one to SAMPLES in "
                    "tests/connectors/test_contract.py (a small real file and its recipe keys)")
    return SAMPLES[kind]()


def _config(kind: str, sample: Sample, **extra: Any) -> Any:
    model = connectors.get(kind).config_model
    return model.model_validate({**sample.fields, "kind": kind, "uri": str(sample.path), **extra})


@dataclasses.dataclass(frozen=True)
class Read:
    plan: SourcePlan
    results: tuple[ChunkResult, ...]


def _read(kind: str) -> tuple[Sample, Any, Read]:
    sample = _sample(kind)
    config = _config(kind, sample)
    connector = connectors.get(kind)
    plan = connector.plan(config, str(sample.path), "0" * 64, sample.path.stat().st_size)
    results = tuple(connector.read(config, chunk, plan.schema) for chunk in plan.chunks)
    return sample, config, Read(plan, results)


@pytest.fixture(scope="module", params=connectors.kinds())
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def read(kind: str) -> tuple[Sample, Any, Read]:
    return _read(kind)


def test_plan_returns_a_source_plan_with_a_schema(kind, read):
    sample, _, done = read
    plan = done.plan
    assert isinstance(plan, SourcePlan)
    assert isinstance(plan.schema, pa.Schema) and len(plan.schema) > 0
    assert plan.uri == str(sample.path) and plan.size == sample.path.stat().st_size
    assert [c.name for c in plan.columns] == plan.schema.names
    assert plan.chunks and all(isinstance(c, ChunkSpec) for c in plan.chunks)
    assert [c.ordinal for c in plan.chunks] == list(range(len(plan.chunks)))
    for field in plan.schema:
        keys = set(field.metadata or {})
        assert b"haina.role" in keys, f"{kind}: column {field.name!r} has no haina.role"
        assert all(k.startswith(b"haina.") for k in keys), (kind, field.name, keys)


def test_chunks_are_tables_in_the_plan_schema(kind, read):
    _, _, done = read
    for result in done.results:
        assert isinstance(result.table, pa.Table)
        # names, types and field metadata (every key) are the plan's
        assert result.table.schema.equals(done.plan.schema, check_metadata=True), kind
    assert sum(r.table.num_rows for r in done.results) > 0, f"{kind}: the sample gave no rows"


def test_every_input_row_is_output_dropped_or_quarantined(kind, read):
    _, _, done = read
    for result in done.results:
        assert result.rows_in == (result.table.num_rows + result.rows_dropped
                                  + result.rows_quarantined), kind
        assert result.rows_dropped >= 0 and result.rows_in >= 0


def test_quarantine_tables_have_the_standard_columns(kind, read):
    sample, _, done = read
    for result in done.results:
        if result.quarantine is None:
            continue
        assert result.quarantine.schema.equals(QUARANTINE_SCHEMA), kind
        rows = result.quarantine.to_pylist()
        assert all(r["source_file"] == str(sample.path) for r in rows)
        assert all(r["reason"] and r["position"] is not None for r in rows)


def test_reading_is_deterministic_and_survives_release(kind, read):
    sample, config, done = read
    connector = connectors.get(kind)
    connector.release()
    again = connector.plan(config, str(sample.path), "0" * 64, sample.path.stat().st_size)
    assert again.schema.equals(done.plan.schema, check_metadata=True)
    assert again.chunks == done.plan.chunks
    for chunk, first in zip(again.chunks, done.results, strict=True):
        second = connector.read(config, chunk, again.schema)
        assert second.table.equals(first.table, check_metadata=True), (kind, chunk.ordinal)
        assert (second.rows_in, second.rows_dropped) == (first.rows_in, first.rows_dropped)
        if first.quarantine is None:
            assert second.quarantine is None or second.quarantine.num_rows == 0
        else:
            assert second.quarantine is not None and second.quarantine.equals(first.quarantine)
    connector.release()


def test_the_config_model_rejects_an_unknown_key_by_name(kind):
    sample = _sample(kind)
    _config(kind, sample)  # the sample's own keys are valid
    with pytest.raises(ValidationError) as info:
        _config(kind, sample, no_such_key=1)
    assert "no_such_key" in str(info.value)


def test_the_quarantine_is_exercised_by_some_sample():
    """The quarantine checks above are not vacuous: at least one sample has rejects."""
    quarantined = {kind: sum(r.rows_quarantined for r in _read(kind)[2].results)
                   for kind in ("ais_nmea", "delimited")}
    assert any(quarantined.values()), quarantined
