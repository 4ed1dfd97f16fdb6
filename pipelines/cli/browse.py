"""``haina datasets | versions NAME | runs NAME | show NAME@VERSION``: what the catalog holds.

Read-only: each opens the catalog without creating or upgrading anything.
"""
from __future__ import annotations

import argparse
import json

from rich.console import Console

from catalog.exceptions import VersionNotFoundError
from catalog.releases import lifecycle
from catalog.releases import resolve as resolve_mod
from catalog.releases.lifecycle import semver_labels
from catalog.store import Catalog
from pipelines.cli.common import (
    err_console,
    human_bytes,
    open_catalog_for,
    parse_ref,
    resolve_ref,
    table,
    warn_to,
)
from pipelines.exceptions import HainaError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list datasets")
    p.set_defaults(handler=cmd_datasets)
    p = sub.add_parser("versions", help="list the versions of a dataset")
    p.add_argument("name")
    p.set_defaults(handler=cmd_versions)
    p = sub.add_parser("runs", help="list the runs of a dataset")
    p.add_argument("name")
    p.set_defaults(handler=cmd_runs)
    p = sub.add_parser("show", help="show one version: NAME@VERSION (VERSION may be 'latest')")
    p.add_argument("ref")
    p.add_argument("--json", action="store_true", help="print the version's manifest as JSON")
    p.set_defaults(handler=cmd_show)


def cmd_datasets(args: argparse.Namespace, console: Console) -> int:
    catalog, _ = open_catalog_for(args, read_only=True)
    rows = []
    for d in catalog.datasets():
        versions = catalog.versions(d.name)
        rows.append((d.name, d.title, d.licence, len(versions), _latest(catalog, d.name)))
    console.print(table("Datasets", ["name", "title", "licence", "versions", "latest"], rows))
    return 0


def _latest(catalog: Catalog, name: str) -> str:
    """The version ``NAME@latest`` names, as every command reads it; ``-`` when none does (no
    version yet, or every release yanked)."""
    try:
        version = lifecycle.resolve(catalog, name, resolve_mod.LATEST, allow_yanked=True,
                                    draft_fallback=True, warn=lambda _notice: None)
    except VersionNotFoundError:
        return "-"
    return version.version_id


def cmd_versions(args: argparse.Namespace, console: Console) -> int:
    catalog, _ = open_catalog_for(args, read_only=True)
    versions = catalog.versions(args.name)
    if not versions and args.name not in {d.name for d in catalog.datasets()}:
        raise HainaError(f"no dataset named {args.name!r}. Fix: list datasets with "
                         f"`haina datasets`")
    labels = semver_labels(catalog, args.name)
    rows = [(v.version_id, labels.get(v.version_id, ""), v.state,
             v.created_at.isoformat(timespec="seconds") if v.created_at else "",
             f"{v.rows:,}", v.file_count, human_bytes(v.bytes), v.run_id) for v in versions]
    console.print(table(f"Versions of {args.name}", ["version", "semver", "state", "created (UTC)",
                                                     "rows", "files", "size", "run"], rows))
    return 0


def cmd_runs(args: argparse.Namespace, console: Console) -> int:
    catalog, _ = open_catalog_for(args, read_only=True)
    rows = [(r.run_id, r.status, r.started_at.isoformat(timespec="seconds") if r.started_at else "",
             f"{r.rows_in:,}" if r.rows_in is not None else "", r.rows_out, r.rows_dropped,
             r.rows_rejected, r.version_id if r.status == "succeeded" else "", (r.error or "")[:60])
            for r in catalog.runs(args.name)]
    console.print(table(f"Runs of {args.name}", ["run", "status", "started (UTC)", "in", "out",
                                                  "dropped", "rejected", "version", "error"], rows))
    return 0


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    ref = parse_ref(args.ref, "show")
    catalog, _ = open_catalog_for(args, read_only=True)
    version = resolve_ref(catalog, ref, warn=warn_to(err_console))
    # imported here: the manifest reader uses Beam's filesystems (a second to import)
    from catalog.storage import manifest as manifest_mod

    manifest = manifest_mod.Manifest.read(version.path)
    if args.json:
        console.print_json(json.dumps(manifest.to_json(), default=str))
        return 0
    ds = manifest.dataset
    owner = ds.owner.name if ds.owner is not None else None
    console.print(f"[bold]{ref.name}@{version.version_id}[/] ({version.state}) — {ds.title}")
    console.print(f"licence {ds.licence}; owner {owner}; classification {ds.classification}")
    # very early manifests kept attributions and row accounting at the top level
    for text in manifest.extras.get("attributions") or manifest.attributions:
        console.print(f"attribution: {text}")
    acc = manifest.extras.get("row_accounting") or manifest.row_accounting
    console.print(f"rows {version.rows:,} in {version.file_count} file(s), "
                  f"{human_bytes(version.bytes)}; rows in {acc.get('rows_in', 0):,}, dropped "
                  f"{acc.get('rows_dropped', 0):,}, quarantined {acc.get('rows_quarantined', 0):,}")
    console.print(f"folder {version.path}")
    console.print(f"manifest sha256 {version.manifest_sha256}")
    rows = [(c.name, c.type, c.metadata.get("haina.units", ""),
             c.metadata.get("haina.source_name", "")) for c in manifest.schema]
    console.print(table("Schema", ["column", "type", "units", "from"], rows))
    return 0
