"""Implementations of the ``haina`` subcommands (argument parsing lives in ``pipelines.cli.app``)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from catalog import store as store_mod
from catalog.audit import log as audit
from catalog.exceptions import CatalogNotFoundError
from catalog.sql.backend import catalog_identity
from catalog.storage import manifest as manifest_mod
from pipelines import recipe as recipe_mod
from pipelines.cli.app import err_console, table
from pipelines.driver import Runner, catalog_url, columns_info, resolve_warehouse
from pipelines.exceptions import HainaError


def _catalog(args, recipe=None):
    """The existing catalog of every command but ``run``: none of them creates a warehouse
    folder, a catalog file or tables where there is none (only ``haina run`` does)."""
    warehouse = resolve_warehouse(recipe, args.warehouse)
    url = catalog_url(recipe, warehouse, args.catalog)
    try:
        catalog = store_mod.open_catalog(url, create=False)
    except CatalogNotFoundError as err:
        raise _no_catalog(err, warehouse.root) from err
    catalog.actor = args.actor or store_mod.default_actor()
    audit.use_warehouse(catalog, warehouse.root)
    return catalog, warehouse


def _no_catalog(err: CatalogNotFoundError, root: str) -> CatalogNotFoundError:
    """Say where we looked, and which catalog the warehouse's runs used if it records one."""
    looked = err.reason
    if err.where and not err.where.startswith("sqlite"):  # a SQLite reason names the file
        looked += f" ({err.where})"
    if "://" not in root and not os.path.isdir(root):
        looked += f"; the warehouse folder {root} does not exist"
    try:
        recorded = (audit.read_head_file(audit.head_file_uri(root)) or {}).get("catalog")
    except audit.AuditError:
        recorded = None
    if recorded and recorded != catalog_identity(err.where or "sqlite://"):
        return CatalogNotFoundError(
            f"{looked}; the warehouse {root} records that its runs used the catalog "
            f"{recorded}", where="catalog",
            fix=f"pass --catalog {recorded} (or set $HAINA_CATALOG_URL), adding its password "
                f"if it needs one; nothing was created")
    return CatalogNotFoundError(looked, where="catalog", fix=err.fix)


def _split_ref(ref: str) -> tuple[str, str]:
    name, sep, version = ref.partition("@")
    if not sep or not name or not version:
        raise HainaError(f"{ref!r} is not NAME@VERSION. Fix: e.g. `haina show demo@latest`, or "
                         f"list versions with `haina versions NAME`")
    return name, version


def _human_bytes(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_check(args, console: Console) -> int:
    recipe = recipe_mod.load(args.recipe)
    runner = Runner(recipe, warehouse=args.warehouse, catalog=args.catalog)
    plans, schema, suites = runner.plan()
    console.print(f"[bold]{recipe.name}[/]: {recipe.title}  (licence {recipe.licence}, "
                  f"owner {recipe.owner.name})")
    n_chunks = sum(len(p.chunks) for _, p in plans)
    console.print(f"{len(plans)} source file(s), {n_chunks} chunk(s), "
                  f"{sum(p.size for _, p in plans):,} bytes")
    for _, plan in plans:  # choices a connector made that the recipe may want to pin
        for note in plan.attributes.get("notes", ()):
            console.print(f"[yellow]note:[/] {escape(Path(plan.uri).name)}: {escape(note)}")
    rows = [(i.name, str(schema.field(i.name).type), i.units, i.source_name, i.conversion)
            for i in columns_info(schema)]
    console.print(table("Columns", ["column", "type", "units", "from", "conversion"], rows))
    console.print(table("Validation suites", ["suite", "expectations"],
                        [(s["name"], len(s["expectations"])) for s in suites]))
    console.print(_catalog_status(runner.catalog_url))
    console.print(f"recipe OK. Run it with: haina run {args.recipe}")
    return 0


def _catalog_status(url: str) -> str:
    """Where the run will record its version: an existing catalog is opened (a broken one is an
    error now, not at run time); a missing one is named, and created by ``haina run``."""
    try:
        store_mod.open_catalog(url, create=False).close()
    except CatalogNotFoundError:
        return f"catalog: none yet at {url}; `haina run` creates it"
    return f"catalog: {url}"


def cmd_run(args, console: Console) -> int:
    recipe = recipe_mod.load(args.recipe)
    # before the Runner opens (and on a new warehouse creates) the catalog inside it
    resolve_warehouse(recipe, args.warehouse).require_writable("nothing was run")
    beam_args = args.beam_args
    runner = Runner(recipe, beam_args=beam_args, warehouse=args.warehouse, catalog=args.catalog,
                    actor=args.actor, wait_seconds=args.wait, full=args.full,
                    workers=args.workers, judge=getattr(args, "judge", None), echo=lambda msg: console.print(f"[dim]{msg}[/]"),
                    warn=lambda msg: err_console.print(f"[yellow]warning:[/] {escape(msg)}",
                                                       soft_wrap=True))
    outcome = runner.run()
    _print_outcome(console, outcome)
    return 0


def _print_outcome(console: Console, outcome) -> None:
    if outcome.status == "no_change":
        console.print(f"[bold]{outcome.message}[/] (run {outcome.run_id})")
        return
    c = outcome.counts
    console.print(f"\n[bold green]committed[/] {outcome.dataset}@{outcome.version_id} "
                  f"(draft) in {outcome.seconds:.1f} s")
    rows = [(Path(uri).name, rec["chunks"], f"{rec['rows_in']:,}", f"{rec['rows_out']:,}",
             f"{rec['rows_dropped']:,}", f"{rec['rows_quarantined']:,}")
            for uri, rec in sorted(outcome.sources.items())]
    rows.append(("total", c["chunks"], f"{c['rows_in']:,}", f"{c['rows_out']:,}",
                 f"{c['rows_dropped']:,}", f"{c['rows_quarantined']:,}"))
    console.print(table("Rows: in = out + dropped (fill/land cells) + quarantined",
                        ["source", "chunks", "in", "out", "dropped", "quarantined"], rows))
    if outcome.qc_flags:
        console.print(table("QC flags (aggregate per variable; details in the report)",
                            ["variable", "good", "suspect", "fail", "missing", "not evaluated"],
                            [(var, *(f"{flags.get(k, 0):,}" for k in ("1", "3", "4", "9", "2")))
                             for var, flags in outcome.qc_flags.items()]))
    if outcome.validation:
        console.print(table("Validation (gate passed)", ["suite", "expectations met",
                                                         "unexpected values"],
                            [_suite_row(v) for v in outcome.validation]))
    data = [f for f in outcome.files if f["partition"] != "quarantine"]
    console.print(f"{len(data)} data file(s), {_human_bytes(sum(f['bytes'] for f in data))} "
                  f"in {outcome.version_dir}"
                  + (f" ({outcome.carried_files} carried over unchanged)" if outcome.carried_files
                     else ""))
    console.print(f"validation report: {outcome.report_path}")
    console.print(f"next: haina show {outcome.dataset}@{outcome.version_id}")


def _suite_row(digest: dict) -> tuple:
    notes = [f"{u['column']}: {u['unexpected_count']:,} of {u['element_count']:,} "
             f"e.g. {', '.join(_short(x) for x in u['partial_unexpected_list'][:3])}"
             for u in digest["unexpected"]]
    return (digest["suite"], f"{digest['successful']}/{digest['evaluated']}",
            "; ".join(notes) or "none")


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def cmd_datasets(args, console: Console) -> int:
    catalog, _ = _catalog(args)
    rows = []
    for d in catalog.datasets():
        versions = catalog.versions(d.name)
        latest = versions[-1].version_id if versions else "-"
        rows.append((d.name, d.title, d.licence, len(versions), latest))
    console.print(table("Datasets", ["name", "title", "licence", "versions", "latest"], rows))
    return 0


def cmd_versions(args, console: Console) -> int:
    catalog, _ = _catalog(args)
    versions = catalog.versions(args.name)
    if not versions and args.name not in {d.name for d in catalog.datasets()}:
        raise HainaError(f"no dataset named {args.name!r}. Fix: list datasets with "
                         f"`haina datasets`")
    from catalog.releases.lifecycle import semver_labels

    labels = semver_labels(catalog, args.name)
    rows = [(v.version_id, labels.get(v.version_id, ""), v.state,
             v.created_at.isoformat(timespec="seconds") if v.created_at else "",
             f"{v.rows:,}", v.file_count, _human_bytes(v.bytes), v.run_id) for v in versions]
    console.print(table(f"Versions of {args.name}", ["version", "semver", "state", "created (UTC)",
                                                     "rows", "files", "size", "run"], rows))
    return 0


def cmd_runs(args, console: Console) -> int:
    catalog, _ = _catalog(args)
    rows = [(r.run_id, r.status, r.started_at.isoformat(timespec="seconds") if r.started_at else "",
             f"{r.rows_in:,}" if r.rows_in is not None else "", r.rows_out, r.rows_dropped,
             r.rows_rejected, r.version_id if r.status == "succeeded" else "", (r.error or "")[:60])
            for r in catalog.runs(args.name)]
    console.print(table(f"Runs of {args.name}", ["run", "status", "started (UTC)", "in", "out",
                                                  "dropped", "rejected", "version", "error"], rows))
    return 0


def cmd_show(args, console: Console) -> int:
    name, ref = _split_ref(args.ref)
    from catalog.releases.lifecycle import resolve

    catalog, _ = _catalog(args)
    version = resolve(catalog, name, ref, allow_yanked=True, draft_fallback=True,
                      warn=lambda m: err_console.print(f"[yellow]warning:[/] {escape(m)}"))
    manifest = manifest_mod.read_manifest(version.path)
    if args.json:
        console.print_json(json.dumps(manifest, default=str))
        return 0
    ds = manifest["dataset"]
    console.print(f"[bold]{name}@{version.version_id}[/] ({version.state}) — {ds['title']}")
    console.print(f"licence {ds['licence']}; owner {ds['owner']['name']}; classification "
                  f"{ds['classification']}")
    for text in manifest.get("attributions", []) or manifest.get("extra", {}).get("attributions", []):
        console.print(f"attribution: {text}")
    acc = manifest.get("row_accounting") or manifest.get("extra", {}).get("row_accounting", {})
    console.print(f"rows {version.rows:,} in {version.file_count} file(s), "
                  f"{_human_bytes(version.bytes)}; rows in {acc.get('rows_in', 0):,}, dropped "
                  f"{acc.get('rows_dropped', 0):,}, quarantined {acc.get('rows_quarantined', 0):,}")
    console.print(f"folder {version.path}")
    console.print(f"manifest sha256 {version.manifest_sha256}")
    columns = manifest.get("schema", [])
    rows = [(c.get("name"), c.get("type"), (c.get("metadata") or {}).get("haina.units", ""),
             (c.get("metadata") or {}).get("haina.source_name", "")) for c in columns]
    console.print(table("Schema", ["column", "type", "units", "from"], rows))
    return 0
