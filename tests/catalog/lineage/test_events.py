"""OpenLineage events: building, size bounds, offline schema validation, client models, storage."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid

import pytest

from catalog.lineage import events as lineage
from catalog.store import (
    DatasetRecord,
    FileRecord,
    RunRecord,
    SourceRecord,
    VersionRecord,
    open_catalog,
)

UTC = dt.UTC




def _column(name, role, **meta):
    return {"name": name, "type": "float", "nullable": True,
            "metadata": {"haina.role": role, **{f"haina.{k}": v for k, v in meta.items()}}}


COLUMNS = (
    _column("time", "coordinate", source_name="time", conversion="days since 1950 -> UTC"),
    _column("sea_water_temperature", "variable", source_name="TEMP", units="degC",
            source_units="degree_Celsius", conversion="none (degree_Celsius is degC)"),
    _column("sea_water_pressure", "variable", source_name="PRES", units="dbar",
            source_units="kPa", conversion="kPa -> dbar: x * 0.1"),
    _column("sea_water_temperature_qc_source", "flag", source_name="TEMP_QC"),
    _column("sea_water_temperature_qc", "flag", derived_from="sea_water_temperature"),
    {"name": "source_file", "type": "string", "nullable": True, "metadata": {"haina.role": "source"}},
)
DATASET = {"name": "buoys", "title": "Buoys", "description": "test", "licence": "CC-BY-4.0",
           "owner": {"name": "tests", "email": "t@example.org"}, "attribution": "NOAA",
           "classification": "internal"}


def _sources(n: int, run_id: str = "r1", folders: int = 1) -> tuple[SourceRecord, ...]:
    return tuple(SourceRecord(run_id=run_id, uri=f"/data/f{i % folders}/file{i:05d}.nc",
                              sha256=hashlib.sha256(str(i).encode()).hexdigest(), size=1000 + i,
                              kind="netcdf_dsg") for i in range(n))


def _context(n_sources=2, *, run_id="r20250101T000000Z-abcdef", folders=1, **kw):
    run = RunRecord(run_id=run_id, dataset="buoys", version_id="v1", recipe_path="/r/buoys.yaml",
                    recipe_sha256="a" * 64, code_version="0.1.0+gabc.dirty", runner="DirectRunner",
                    parameters={"beam_args": ["--direct_num_workers=2", "--flag"],
                                "actor": "alice"},
                    started_at=dt.datetime(2025, 1, 1, tzinfo=UTC))
    version = VersionRecord(version_id="v1", dataset="buoys", run_id=run_id, path="/wh/v1",
                            manifest_sha256="b" * 64, rows=10, bytes=100, file_count=1,
                            created_at=dt.datetime(2025, 1, 1, 0, 1, tzinfo=UTC))
    suites = [{"suite_name": "sea_water_temperature", "results": [
        {"success": False, "expectation_config": {
            "type": "expect_column_values_to_be_between", "severity": "critical",
            "kwargs": {"column": "sea_water_temperature", "min_value": -2.5, "max_value": 40.0}},
         "result": {"element_count": 10, "unexpected_count": 1}}]}]
    values = {"dataset": DATASET, "run": run, "sources": _sources(n_sources, run_id, folders),
                  "columns": COLUMNS, "version": version, "expectation_results": suites,
                  "validation": [{"suite": "sea_water_temperature", "success": False}],
                  "manifest_uri": "/wh/v1/manifest.json", "recipe_text": "name: buoys\n"}
    values.update(kw)
    return lineage.LineageContext(**values)


@pytest.mark.parametrize("event_type", ["START", "COMPLETE", "FAIL", "ABORT"])
def test_events_validate_against_the_openlineage_schemas(specs, event_type):
    ctx = _context(error="boom" if event_type in ("FAIL", "ABORT") else None)
    event = lineage.build_event(event_type, ctx, namespace="haina:///wh")
    lineage.validate_event(event, specs)
    assert event["eventType"] == event_type
    assert ("errorMessage" in event["run"]["facets"]) == (event_type in ("FAIL", "ABORT"))


def test_validation_catches_a_broken_facet(specs):
    event = lineage.build_event("COMPLETE", _context(), namespace="haina:///wh")
    del event["outputs"][0]["facets"]["haina_manifest"]["sha256"]            # custom facet
    event["inputs"][0]["facets"]["version"].pop("datasetVersion")            # spec facet
    event["run"]["runId"] = "not-a-uuid"
    with pytest.raises(lineage.LineageError) as err:
        lineage.validate_event(event, specs)
    text = str(err.value)
    assert "'sha256' is a required property" in text
    assert "'datasetVersion' is a required property" in text
    assert "not-a-uuid" in text


def test_run_id_is_a_deterministic_uuid_and_haina_id_is_kept():
    event = lineage.build_event("START", _context(), namespace="haina:///wh")
    expected = str(uuid.uuid5(lineage.RUN_UUID_NAMESPACE, "r20250101T000000Z-abcdef"))
    assert event["run"]["runId"] == expected
    assert uuid.UUID(expected).version == 5
    assert event["run"]["facets"]["haina_run"]["runId"] == "r20250101T000000Z-abcdef"
    assert event["run"]["facets"]["haina_beam"]["options"] == {"direct_num_workers": "2",
                                                               "flag": True}


def test_inputs_carry_hash_format_and_size():
    ctx = _context(per_source={"/data/f0/file00000.nc": {"rows_in": 7},
                               "/data/f0/file00001.nc": {"rows_in": 5}})
    event = lineage.build_event("COMPLETE", ctx, namespace="haina:///wh")
    first = event["inputs"][0]
    assert (first["namespace"], first["name"]) == ("file", "/data/f0/file00000.nc")
    assert first["facets"]["version"]["datasetVersion"] == hashlib.sha256(b"0").hexdigest()
    assert first["facets"]["storage"]["fileFormat"] == "netcdf"
    assert first["inputFacets"]["inputStatistics"] == {
        **first["inputFacets"]["inputStatistics"], "rowCount": 7, "size": 1000, "fileCount": 1}


def test_output_facets():
    event = lineage.build_event("COMPLETE", _context(), namespace="haina:///wh")
    out = event["outputs"][0]
    facets = out["facets"]
    assert (out["namespace"], out["name"]) == ("haina:///wh", "buoys")
    assert facets["version"]["datasetVersion"] == "v1"
    assert facets["haina_manifest"]["sha256"] == "b" * 64
    assert facets["haina_licence"]["licence"] == "CC-BY-4.0"
    assert facets["haina_classification"]["classification"] == "internal"
    assert [f["name"] for f in facets["schema"]["fields"]] == [c["name"] for c in COLUMNS]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 10
    [assertion] = facets["dataQualityAssertions"]["assertions"]
    assert assertion["assertion"] == "expect_column_values_to_be_between"
    assert (assertion["column"], assertion["success"]) == ("sea_water_temperature", False)
    assert assertion["params"] == {"min_value": -2.5, "max_value": 40.0}


def test_column_lineage_names_source_variable_conversion_and_derived_flags():
    event = lineage.build_event("COMPLETE", _context(), namespace="haina:///wh")
    fields = event["outputs"][0]["facets"]["columnLineage"]["fields"]
    pres = fields["sea_water_pressure"]["inputFields"]
    assert {f["name"] for f in pres} == {"/data/f0/file00000.nc", "/data/f0/file00001.nc"}
    assert {f["field"] for f in pres} == {"PRES"}
    assert pres[0]["transformations"][0]["description"] == "kPa -> dbar: x * 0.1"
    assert pres[0]["transformations"][0]["subtype"] == "TRANSFORMATION"
    assert fields["sea_water_temperature"]["inputFields"][0]["transformations"][0]["subtype"] \
        == "IDENTITY"
    derived = fields["sea_water_temperature_qc"]["inputFields"]
    assert {f["field"] for f in derived} == {"TEMP"}
    assert "derived from sea_water_temperature" in derived[0]["transformations"][0]["description"]
    # a source QC variable is both copied (TEMP_QC) and qualifies its variable (TEMP)
    assert {f["field"] for f in fields["sea_water_temperature_qc_source"]["inputFields"]} \
        == {"TEMP_QC", "TEMP"}
    assert "source_file" not in fields


def test_five_thousand_sources_stay_within_max_event_bytes(specs):
    ctx = _context(5000, folders=3)
    limit = 256 * 1024
    per_file = lineage.build_event("COMPLETE", ctx, namespace="n", max_event_bytes=10**9)
    assert lineage.event_bytes(per_file) > limit and len(per_file["inputs"]) == 5000
    event = lineage.build_event("COMPLETE", ctx, namespace="n", max_event_bytes=limit)
    assert lineage.event_bytes(event) <= limit
    lineage.validate_event(event, specs)
    assert [i["name"] for i in event["inputs"]] == ["/data/f0", "/data/f1", "/data/f2"]
    groups = [i["facets"]["haina_file_group"] for i in event["inputs"]]
    assert sum(g["fileCount"] for g in groups) == 5000
    assert sum(g["size"] for g in groups) == sum(1000 + i for i in range(5000))
    # the group digest is recomputable from the per-file hashes kept in the catalog/manifest
    members = sorted((s for s in ctx.sources if s.uri.startswith("/data/f1/")), key=lambda s: s.uri)
    lines = "".join(f"{s.sha256}  {s.uri}\n" for s in members)
    assert groups[1]["digest"] == hashlib.sha256(lines.encode()).hexdigest()
    assert event["inputs"][1]["facets"]["version"]["datasetVersion"] == groups[1]["digest"]
    assert groups[1]["manifest"] == "/wh/v1/manifest.json"


def test_too_small_a_limit_is_a_named_error():
    with pytest.raises(lineage.LineageError, match="max_event_bytes=4096"):
        lineage.build_event("COMPLETE", _context(50), namespace="n", max_event_bytes=4096)


def test_client_model_round_trip():
    from openlineage.client import event_v2
    from openlineage.client.facet_v2 import column_lineage_dataset, schema_dataset

    event = lineage.build_event("COMPLETE", _context(), namespace="haina:///wh")
    obj = lineage.to_client_event(event)
    assert isinstance(obj, event_v2.RunEvent)
    assert obj.eventType == event_v2.RunState.COMPLETE
    facets = obj.outputs[0].facets
    assert isinstance(facets["schema"], schema_dataset.SchemaDatasetFacet)
    assert isinstance(facets["columnLineage"], column_lineage_dataset.ColumnLineageDatasetFacet)
    assert facets["haina_manifest"]._schemaURL.endswith("HainaManifestFacet")
    assert lineage.from_client_event(obj) == event


def _transport_config(tmp_path, **transport):
    return lineage.LineageConfig(transport=transport, namespace="haina://test")


def test_file_transport_sends_the_event(tmp_path):
    target = tmp_path / "ol" / "events.jsonl"
    target.parent.mkdir()
    config = _transport_config(tmp_path, type="file", log_file_path=str(target), append=True)
    event = lineage.build_event("COMPLETE", _context(), namespace="haina://test")
    assert lineage.send(event, config)
    [line] = target.read_text().splitlines()
    sent = json.loads(line)
    # the client adds its own run tags (its version and the transport); all else is ours, as is
    added = sent["run"]["facets"].pop("tags")
    assert {t["key"] for t in added["tags"]} >= {"openlineage_client_version"}
    assert sent == event


def test_console_transport_logs_the_event(caplog):
    config = lineage.LineageConfig(transport={"type": "console"})
    event = lineage.build_event("START", _context(), namespace="haina://test")
    with caplog.at_level(logging.INFO, logger="openlineage.client.transport.console"):
        assert lineage.send(event, config)
    sent = [json.loads(r.getMessage()) for r in caplog.records
            if r.name == "openlineage.client.transport.console"]
    assert len(sent) == 1
    sent[0]["run"]["facets"].pop("tags")  # added by the client
    assert sent == [event]


def test_config_from_haina_env(tmp_path):
    path = tmp_path / "ol.yml"
    path.write_text("transport: {type: console}\nmax_event_bytes: 65536\n")
    config = lineage.LineageConfig.from_env({"HAINA_OPENLINEAGE_CONFIG": str(path)})
    assert config.transport == {"type": "console"} and config.max_event_bytes == 65536
    assert lineage.LineageConfig.from_env({"OPENLINEAGE_URL": "http://x"}).client_defaults
    path.write_text("transport: {type: console}\nmax_bytes: 1\n")
    with pytest.raises(lineage.LineageError, match="max_bytes"):
        lineage.LineageConfig.from_env({"HAINA_OPENLINEAGE_CONFIG": str(path)})


def test_unreachable_backend_does_not_fail_unless_asked():
    event = lineage.build_event("START", _context(), namespace="n")
    bad = {"type": "file", "log_file_path": "/nonexistent-dir/x/y.jsonl", "append": True}
    assert lineage.send(event, lineage.LineageConfig(transport=bad)) is False
    with pytest.raises(lineage.LineageError, match="fix|Fix"):
        lineage.send(event, lineage.LineageConfig(transport=bad, fail_on_transport_error=True))


# --- storage on every catalog backend -----------------------------------------------------------
@pytest.fixture
def catalog(catalog_url):
    cat = open_catalog(catalog_url)
    yield cat
    cat.close()


def _committed(catalog, tmp_path, run_id, sources):
    catalog.ensure_dataset(DatasetRecord(name="buoys", licence="CC-BY-4.0"))
    run = RunRecord(run_id=run_id, dataset="buoys", version_id=f"v-{run_id}",
                    parameters={"actor": "alice"})
    catalog.begin_run(run, [SourceRecord(run_id=run_id, uri=u, sha256=h, size=1, kind="argo")
                            for u, h in sources])
    folder = tmp_path / f"v-{run_id}"
    folder.mkdir()
    version = VersionRecord(version_id=f"v-{run_id}", dataset="buoys", run_id=run_id,
                            path=str(folder), manifest_sha256="c" * 64, rows=1, bytes=1,
                            file_count=1)
    catalog.commit_version(version, [FileRecord(path="data/a.parquet", sha256="d" * 64, rows=1,
                                                bytes=1)])
    return catalog.run(run_id), version


def test_emit_stores_audits_and_writes_jsonl(catalog, tmp_path):
    audit = []
    catalog.listeners.append(lambda conn, action, target, details, actor: audit.append(action))
    run, version = _committed(catalog, tmp_path, "r-a", [("/d/a.nc", "1" * 64)])
    ctx = lineage.LineageContext(dataset=DATASET, run=run, sources=tuple(catalog.sources("r-a")),
                                 columns=COLUMNS, version=version)
    config = lineage.LineageConfig(namespace="haina://t")
    start = lineage.emit(catalog, "/wh", "START", ctx, config=config)
    complete = lineage.emit(catalog, "/wh", "COMPLETE", ctx, config=config)
    assert [e["eventType"] for e in lineage.events(catalog, run_id="r-a")] == ["START", "COMPLETE"]
    assert lineage.events(catalog, dataset="buoys", event_type="COMPLETE") == [complete]
    assert lineage.read_jsonl(str(tmp_path / "v-r-a")) == [start, complete]
    assert audit.count("lineage.emit") == 2


def test_downstream_finds_versions_by_uri_or_hash(catalog, tmp_path):
    _committed(catalog, tmp_path, "r-1", [("/d/a.nc", "1" * 64), ("/d/b.nc", "2" * 64)])
    _committed(catalog, tmp_path, "r-2", [("/d/b.nc", "2" * 64)])
    _committed(catalog, tmp_path, "r-3", [("/d/c.nc", "3" * 64)])
    by_uri = lineage.downstream(catalog, uris=["/d/b.nc"])
    assert [r["version_id"] for r in by_uri] == ["v-r-1", "v-r-2"]
    by_hash = lineage.downstream(catalog, sha256s=["1" * 64])
    assert [(r["version_id"], r["uri"]) for r in by_hash] == [("v-r-1", "/d/a.nc")]
    assert lineage.downstream(catalog, uris=["/d/none.nc"]) == []
