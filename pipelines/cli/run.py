"""``haina check RECIPE`` and ``haina run RECIPE [-- BEAM_ARGS]``: plan a recipe, or run it.

The driver (:mod:`pipelines.driver`) imports Beam, which takes seconds: it is imported inside
the handlers, so ``haina --help`` does not pay for it.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from catalog import store as store_mod
from catalog.exceptions import CatalogNotFoundError
from pipelines import recipe as recipe_mod
from pipelines.cli.common import err_console, human_bytes, table

if TYPE_CHECKING:  # imports Beam; only annotations need it here
    from pipelines.driver import RunOutcome


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="validate and plan a recipe without running it")
    p.add_argument("recipe")
    p.set_defaults(handler=cmd_check)
    p = sub.add_parser("run", help="run a recipe; arguments after -- go to Beam")
    p.add_argument("recipe")
    p.add_argument("--full", action="store_true",
                   help="process every source file, not only new and changed ones")
    p.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                   help="if another run of the dataset holds its lock, wait this long for it "
                        "(default: fail at once)")
    p.add_argument("--workers", default="auto", type=workers, metavar="N",
                   help="DirectRunner worker threads (default: auto, one per CPU core)")
    p.epilog = ("Beam pipeline options go after --, e.g. "
                "haina run recipe.yaml -- --runner=FlinkRunner --flink_master=localhost:8081")
    p.set_defaults(handler=cmd_run)


def workers(value: str) -> int | str:
    """``--workers``: ``auto`` or a positive whole number."""
    if value == "auto":
        return value
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not 'auto' or a positive whole number")
    return count


# --- check -----------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace, console: Console) -> int:
    from pipelines.driver import Runner, columns_info  # Beam: seconds, kept off --help

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
    console.print(catalog_status(runner.catalog_url))
    console.print(f"recipe OK. Run it with: haina run {args.recipe}")
    return 0


def catalog_status(url: str) -> str:
    """Where the run will record its version: an existing catalog is opened (a broken one is an
    error now, not at run time); a missing one is named, and created by ``haina run``."""
    try:
        store_mod.open_catalog(url, create=False, read_only=True).close()
    except CatalogNotFoundError:
        return f"catalog: none yet at {url}; `haina run` creates it"
    return f"catalog: {url}"


# --- run -------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from pipelines.driver import Runner, resolve_warehouse  # Beam: seconds, kept off --help

    recipe = recipe_mod.load(args.recipe)
    # before the Runner opens (and on a new warehouse creates) the catalog inside it
    resolve_warehouse(recipe, args.warehouse).require_writable("nothing was run")
    runner = Runner(recipe, beam_args=args.beam_args, warehouse=args.warehouse,
                    catalog=args.catalog, actor=args.actor, wait_seconds=args.wait,
                    full=args.full, workers=args.workers, judge=getattr(args, "judge", None),
                    echo=lambda msg: console.print(f"[dim]{msg}[/]"),
                    warn=lambda msg: err_console.print(f"[yellow]warning:[/] {escape(msg)}",
                                                       soft_wrap=True))
    outcome = runner.run()
    print_outcome(console, outcome)
    return 0


def print_outcome(console: Console, outcome: RunOutcome) -> None:
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
    console.print(f"{len(data)} data file(s), {human_bytes(sum(f['bytes'] for f in data))} "
                  f"in {outcome.version_dir}"
                  + (f" ({outcome.carried_files} carried over unchanged)" if outcome.carried_files
                     else ""))
    console.print(f"validation report: {outcome.report_path}")
    console.print(f"next: haina show {outcome.dataset}@{outcome.version_id}")


def _suite_row(digest: dict[str, Any]) -> tuple[str, str, str]:
    notes = [f"{u['column']}: {u['unexpected_count']:,} of {u['element_count']:,} "
             f"e.g. {', '.join(_short(x) for x in u['partial_unexpected_list'][:3])}"
             for u in digest["unexpected"]]
    return (digest["suite"], f"{digest['successful']}/{digest['evaluated']}",
            "; ".join(notes) or "none")


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
