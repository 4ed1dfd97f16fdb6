"""W3C PROV-JSON export of a version's provenance graph."""
from __future__ import annotations

import json

from catalog.lineage import prov

GRAPH = {
    "dataset": {"name": "buoys", "licence": "CC-BY-4.0", "classification": "public"},
    "version": {"id": "v1", "state": "draft", "created_at": "2025-01-01T00:01:00Z", "rows": 10,
                "bytes": 100, "path": "/wh/v1", "manifest_sha256": "b" * 64},
    "run": {"id": "r1", "openlineage_run_id": "d6782...", "status": "succeeded",
            "started_at": "2025-01-01T00:00:00Z", "ended_at": "2025-01-01T00:02:00Z",
            "actor": "alice", "code_version": "0.1.0", "recipe_path": "/r.yaml",
            "recipe_sha256": "a" * 64, "runner": "DirectRunner", "host": "h"},
    "sources": [{"uri": "/d/a.nc", "sha256": "1" * 64, "size": 5, "kind": "argo"},
                {"uri": "/d/b.nc", "sha256": "2" * 64, "size": 6, "kind": "argo"}],
    "checks": {"suites": 2, "suites_passed": 1, "expectations": 5, "expectations_met": 4},
}
RELATIONS = {  # PROV-JSON relation -> (its required roles, the record kind each must name)
    "used": {"prov:activity": "activity", "prov:entity": "entity"},
    "wasGeneratedBy": {"prov:entity": "entity", "prov:activity": "activity"},
    "wasAssociatedWith": {"prov:activity": "activity", "prov:agent": "agent"},
    "wasAttributedTo": {"prov:entity": "entity", "prov:agent": "agent"},
    "wasDerivedFrom": {"prov:generatedEntity": "entity", "prov:usedEntity": "entity"},
}


def test_document_is_well_formed_prov_json():
    doc = json.loads(json.dumps(prov.to_prov(GRAPH)))  # JSON-serialisable as is
    prefixes = set(doc["prefix"])
    ids = [i for kind in ("entity", "activity", "agent") for i in doc[kind]]
    for relation, roles in RELATIONS.items():
        for record in doc[relation].values():
            for role, kind in roles.items():
                assert record[role] in doc[kind], (relation, role, record)
    for qualified in ids + [k for kind in ("entity", "activity", "agent")
                            for rec in doc[kind].values() for k in rec]:
        assert qualified.split(":", 1)[0] in prefixes, qualified
    assert set(doc) <= {"prefix", "entity", "activity", "agent", *RELATIONS}


def test_graph_content():
    doc = prov.to_prov(GRAPH)
    assert set(doc["entity"]) == {"ver:buoys@v1", "src:" + "1" * 64, "src:" + "2" * 64}
    assert doc["entity"]["src:" + "1" * 64]["prov:location"] == "/d/a.nc"
    assert doc["entity"]["src:" + "2" * 64]["haina:size"] == {"$": "6", "type": "xsd:long"}
    assert doc["activity"]["run:r1"]["prov:startTime"] == "2025-01-01T00:00:00Z"
    assert set(doc["agent"]) == {"agent:user/alice", "agent:haina/0.1.0"}
    used = {r["prov:entity"] for r in doc["used"].values()}
    assert used == {"src:" + "1" * 64, "src:" + "2" * 64}
    assert [r["prov:entity"] for r in doc["wasGeneratedBy"].values()] == ["ver:buoys@v1"]
    assert doc["entity"]["ver:buoys@v1"]["haina:checksPassed"] == \
        "4/5 expectations, 1/2 suites"
