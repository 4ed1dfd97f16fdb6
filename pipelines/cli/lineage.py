"""``haina lineage``: where a version came from, or where a source file went. Read-only."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from catalog.lineage import events as lineage
from catalog.lineage import prov
from catalog.storage import uri as uri_mod
from pipelines.cli.common import (
    err_console,
    open_catalog_for,
    parse_ref,
    resolve_ref,
    table,
    warn_to,
)
from pipelines.exceptions import HainaError

FORMATS = ("tree", "json", "dot", "prov")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "lineage", help="provenance of NAME@VERSION (sources, run, code, checks), or with "
                        "--downstream SOURCE every version that used a source file")
    p.add_argument("ref", nargs="?", metavar="NAME@VERSION",
                   help="dataset version, e.g. demo@latest")
    p.add_argument("--downstream", metavar="SOURCE",
                   help="a source file path, URI or sha256: list the dataset versions using it")
    p.add_argument("--format", choices=FORMATS, default="tree",
                   help="tree (default), json, dot (Graphviz) or prov (W3C PROV-JSON)")
    p.add_argument("--column", metavar="COLUMN",
                   help="show one column's lineage: source variable, files, units, conversion")
    p.set_defaults(handler=cmd_lineage)


_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def cmd_lineage(args: argparse.Namespace, console: Console) -> int:
    if args.downstream:
        return _downstream(args, console)
    if not args.ref:
        raise HainaError("haina lineage needs NAME@VERSION or --downstream SOURCE. Fix: e.g. "
                         "`haina lineage demo@latest` or `haina lineage --downstream "
                         "data/file.nc`")
    ref = parse_ref(args.ref, "lineage")
    catalog, _ = open_catalog_for(args, read_only=True)
    version = resolve_ref(catalog, ref, warn=warn_to(err_console))
    graph = lineage.provenance(catalog, ref.name, version.version_id)
    if args.column:
        return _column(graph, args.column, args.format, console)
    render = {"tree": _print_tree, "json": _print_json, "dot": _print_dot,
              "prov": lambda g, c: _print_json(prov.to_prov(g), c)}[args.format]
    render(graph, console)
    return 0


# --- downstream ------------------------------------------------------------------------------
def source_keys(source: str) -> tuple[list[str], list[str]]:
    """URIs and hashes that identify ``source``: a sha256, or a path (also matched by content)."""
    if _SHA256.match(source):
        return [], [source.lower()]
    uris = [source]
    if uri_mod.scheme(source) is None:
        uris.append(os.path.abspath(source))
        if os.path.isfile(source):  # the same content read from another path counts too
            # imported here: pipelines.driver imports Beam (seconds), kept off `haina --help`
            from pipelines.driver import fingerprint

            return uris, [fingerprint(os.path.abspath(source))[0]]
    return uris, []


def _downstream(args: argparse.Namespace, console: Console) -> int:
    catalog, _ = open_catalog_for(args, read_only=True)
    uris, hashes = source_keys(args.downstream)
    rows = lineage.downstream(catalog, uris=uris, sha256s=hashes)
    if args.format == "json":
        _print_json([{**r, "created_at": _iso(r["created_at"])} for r in rows], console)
        return 0
    if not rows:
        console.print(f"no dataset version used {escape(args.downstream)}")
        return 0
    console.print(table(f"Dataset versions that used {args.downstream}",
                        ["dataset", "version", "state", "created (UTC)", "run", "source", "sha256"],
                        [(r["dataset"], r["version_id"], r["state"],
                          r["created_at"].isoformat(timespec="seconds"), r["run_id"],
                          r["uri"], r["sha256"][:12]) for r in rows]))
    return 0


def _iso(value: dt.datetime | None) -> str | None:
    """UTC ISO 8601 with a ``Z``, as the lineage events write times."""
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# --- upstream --------------------------------------------------------------------------------
def _print_json(value: Any, console: Console) -> None:
    console.print_json(json.dumps(value, default=str))


def _print_tree(graph: Mapping[str, Any], console: Console) -> None:
    v, run, checks = graph["version"], graph["run"], graph["checks"]
    ds = graph["dataset"]
    root = Tree(f"[bold]{escape(ds['name'])}@{v['id']}[/] ({v['state']}) {v['rows']:,} rows, "
                f"manifest sha256 {v['manifest_sha256'][:12]}")
    node = root.add(f"run {run['id']} ({run['status']}) by {escape(str(run['actor']))} on "
                    f"{escape(str(run['runner']))}, {run['started_at']}")
    node.add(f"code haina {escape(str(run['code_version']))}")
    node.add(f"recipe {escape(str(run['recipe_path']))} sha256 {str(run['recipe_sha256'])[:12]}")
    node.add(f"checks passed: {checks['expectations_met']}/{checks['expectations']} expectations, "
             f"{checks['suites_passed']}/{checks['suites']} suites")
    files = node.add(f"{len(graph['sources'])} source file(s)")
    for s in graph["sources"]:
        files.add(f"{escape(s['uri'])}  sha256 {s['sha256']}  {s['size']:,} B  ({s['kind']}, "
                  f"recipe sources[{s.get('source_index', 0)}])")
    console.print(root)


def _dot_id(text: str) -> str:
    return json.dumps(text)


def to_dot(graph: Mapping[str, Any]) -> str:
    """Graphviz: sources -> run -> version, with the code and the actor."""
    v, run = graph["version"], graph["run"]
    version = f"{graph['dataset']['name']}@{v['id']}"
    lines = ["digraph lineage {", "  rankdir=LR;",
             f"  {_dot_id(version)} [shape=box3d];",
             f"  {_dot_id(run['id'])} [shape=ellipse];",
             f"  {_dot_id(run['id'])} -> {_dot_id(version)} [label=\"generated\"];",
             f"  {_dot_id('haina ' + str(run['code_version']))} -> {_dot_id(run['id'])} "
             f"[label=\"code\"];"]
    for s in graph["sources"]:
        label = f"{Path(s['uri']).name}\\n{s['sha256'][:12]}"
        node = _dot_id(s.get("key", s["uri"]))
        lines.append(f"  {node} [shape=note, label=\"{label}\"];")
        lines.append(f"  {node} -> {_dot_id(run['id'])} [label=\"used\"];")
    lines.append("}")
    return "\n".join(lines)


def _print_dot(graph: Mapping[str, Any], console: Console) -> None:
    console.print(to_dot(graph), markup=False, highlight=False, soft_wrap=True)


def column_lineage(graph: Mapping[str, Any], column: str) -> dict[str, Any]:
    by_name = {c["name"]: c for c in graph["columns"]}
    if column not in by_name:
        raise HainaError(f"{graph['dataset']['name']}@{graph['version']['id']} has no column "
                         f"{column!r}. Fix: use one of {', '.join(by_name)}")
    entry = dict(by_name[column])
    parent = by_name.get(entry.get("derived_from") or "")
    entry["derived_from_source"] = parent.get("source_name") if parent else None
    entry["files"] = [{"uri": s["uri"], "sha256": s["sha256"]} for s in graph["sources"]]
    return entry


def _column(graph: Mapping[str, Any], column: str, fmt: str, console: Console) -> int:
    entry = column_lineage(graph, column)
    if fmt != "tree":
        _print_json(entry, console)
        return 0
    root = Tree(f"[bold]{escape(column)}[/] ({entry['type']}, {entry.get('units') or 'no units'})")
    if entry.get("source_name"):
        root.add(f"from source variable {escape(entry['source_name'])} "
                 f"({escape(str(entry.get('source_units')))})")
        root.add(f"conversion: {escape(str(entry.get('conversion') or 'none'))}")
    if entry.get("derived_from"):
        root.add(f"quality flag derived from {escape(entry['derived_from'])}")
    files = root.add(f"in {len(entry['files'])} file(s)")
    for f in entry["files"]:
        files.add(f"{escape(f['uri'])}  sha256 {f['sha256']}")
    console.print(root)
    return 0
