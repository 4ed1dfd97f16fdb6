"""W3C PROV-JSON (https://www.w3.org/submissions/prov-json/) of a version's provenance graph.

Entities: the source files and the version; activity: the run; agents: the actor who ran it and
the code (Haina at a version, the recipe it executed). The input is the graph of
:func:`catalog.lineage.events.provenance`, so the PROV document and ``haina lineage --format json``
describe the same thing.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PREFIXES = {
    "prov": "http://www.w3.org/ns/prov#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "haina": "https://github.com/haina-ocean/haina/ns#",
    "src": "urn:sha256:",
    "run": "urn:haina:run:",
    "ver": "urn:haina:version:",
    "agent": "urn:haina:agent:",
}


def _typed(value: Any, xsd: str) -> dict[str, str]:
    return {"$": str(value), "type": f"xsd:{xsd}"}


def _clean(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if v is not None and v != ""}


def to_prov(graph: Mapping[str, Any]) -> dict[str, Any]:
    """The PROV-JSON document of one version (entities, activity, agents and their relations)."""
    version, run = graph["version"], graph["run"]
    dataset = graph["dataset"]["name"]
    ver_id, run_id = f"ver:{dataset}@{version['id']}", f"run:{run['id']}"
    actor_id = f"agent:user/{run.get('actor') or 'unknown'}"
    code_id = f"agent:haina/{run.get('code_version') or 'unknown'}"
    doc: dict[str, Any] = {"prefix": dict(PREFIXES), "entity": {}, "activity": {}, "agent": {},
                           "used": {}, "wasGeneratedBy": {}, "wasAssociatedWith": {},
                           "wasAttributedTo": {}, "wasDerivedFrom": {}}
    doc["entity"][ver_id] = _version_entity(graph)
    doc["activity"][run_id] = _clean({
        "prov:type": "haina:Run", "prov:startTime": run.get("started_at"),
        "prov:endTime": run.get("ended_at"), "haina:status": run.get("status"),
        "haina:runner": run.get("runner"), "haina:host": run.get("host"),
        "haina:openlineageRunId": run.get("openlineage_run_id")})
    doc["agent"][actor_id] = {"prov:type": "prov:Person", "prov:label": run.get("actor")
                              or "unknown"}
    doc["agent"][code_id] = _clean({"prov:type": "prov:SoftwareAgent",
                                    "prov:label": f"Haina {run.get('code_version')}",
                                    "haina:recipePath": run.get("recipe_path"),
                                    "haina:recipeSha256": run.get("recipe_sha256")})
    doc["wasGeneratedBy"]["_:gen"] = _clean({"prov:entity": ver_id, "prov:activity": run_id,
                                             "prov:time": version.get("created_at")})
    doc["wasAssociatedWith"]["_:assoc_actor"] = {"prov:activity": run_id, "prov:agent": actor_id}
    doc["wasAssociatedWith"]["_:assoc_code"] = {"prov:activity": run_id, "prov:agent": code_id}
    doc["wasAttributedTo"]["_:attr"] = {"prov:entity": ver_id, "prov:agent": actor_id}
    for i, source in enumerate(graph["sources"]):
        src_id = f"src:{source['sha256']}"
        doc["entity"][src_id] = _clean({
            "prov:type": "haina:SourceFile", "prov:location": source["uri"],
            "haina:sha256": source["sha256"], "haina:size": _typed(source["size"], "long"),
            "haina:kind": source.get("kind")})
        doc["used"][f"_:use{i}"] = {"prov:activity": run_id, "prov:entity": src_id}
        doc["wasDerivedFrom"][f"_:der{i}"] = {"prov:generatedEntity": ver_id,
                                              "prov:usedEntity": src_id, "prov:activity": run_id}
    return doc


def _version_entity(graph: Mapping[str, Any]) -> dict[str, Any]:
    version, checks, ds = graph["version"], graph.get("checks", {}), graph["dataset"]
    return _clean({
        "prov:type": "haina:DatasetVersion", "prov:label": f"{ds['name']}@{version['id']}",
        "prov:location": version.get("path"), "haina:state": version.get("state"),
        "haina:rows": _typed(version.get("rows", 0), "long"),
        "haina:bytes": _typed(version.get("bytes", 0), "long"),
        "haina:manifestSha256": version.get("manifest_sha256"),
        "haina:licence": ds.get("licence"), "haina:classification": ds.get("classification"),
        "haina:checksPassed": f"{checks.get('expectations_met', 0)}/"
                              f"{checks.get('expectations', 0)} expectations, "
                              f"{checks.get('suites_passed', 0)}/{checks.get('suites', 0)} suites",
    })
