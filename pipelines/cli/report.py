"""``haina report``: where the validation report of a version (or of a run) is, or open it.

Read-only (``--open`` starts a browser, nothing else).
"""
from __future__ import annotations

import argparse
import webbrowser
from pathlib import Path

from rich.console import Console

from catalog.exceptions import RunNotFoundError
from catalog.storage import uri as uri_mod
from catalog.store import Catalog, RunRecord
from pipelines.cli.common import err_console, open_catalog_for, parse_ref, resolve_ref, warn_to
from pipelines.exceptions import HainaError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="print the path of the validation report of NAME@VERSION (or of a run id)",
        description="Print the path of the HTML validation report written by the run that made "
                    "NAME@VERSION (VERSION may be 'latest'). A run id (e.g. of a run the gate "
                    "refused, which made no version) is accepted too.")
    p.add_argument("ref", metavar="NAME@VERSION|RUN_ID")
    p.add_argument("--open", action="store_true", help="open the report in a web browser")
    p.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    catalog, _warehouse = open_catalog_for(args, read_only=True)
    try:
        path = report_path(catalog, args.ref)
    finally:
        catalog.close()
    if args.open:
        open_report(path)
    # soft_wrap: a long path stays on one line, so scripts can use the output as is
    console.print(path, soft_wrap=True, markup=False, highlight=False)
    return 0


def report_path(catalog: Catalog, ref: str) -> str:
    """The report path recorded for the run behind ``NAME@VERSION``, or for run id ``ref``
    (a bare word that is no run id is a dataset name: ``NAME`` is ``NAME@latest``)."""
    run = _run_by_id(catalog, ref) if "@" not in ref else None
    if run is not None:
        where = f"run {run.run_id}"
    else:
        parsed = parse_ref(ref, "report")
        version = resolve_ref(catalog, parsed, warn=warn_to(err_console))
        run = catalog.run(version.run_id)
        where = f"{parsed.name}@{version.version_id} (run {run.run_id})"
    if not run.report_path:
        raise HainaError(f"{where} has no validation report recorded (run status "
                         f"{run.status!r}; reports are written when validation runs). Fix: "
                         f"re-run the recipe with quality checks enabled: haina run "
                         f"{run.recipe_path or 'RECIPE'}")
    _check_exists(run.report_path, where)
    return run.report_path


def _run_by_id(catalog: Catalog, run_id: str) -> RunRecord | None:
    """The run ``run_id``; None when it is a dataset's name instead; else an error."""
    try:
        return catalog.run(run_id)
    except RunNotFoundError as err:
        if run_id in {d.name for d in catalog.datasets()}:
            return None
        raise HainaError(f"{run_id!r} is neither NAME@VERSION nor a known run id. Fix: e.g. "
                         f"`haina report demo@latest`; list runs with `haina runs NAME`") from err


def _check_exists(path: str, where: str) -> None:
    if uri_mod.is_remote(path):
        return  # an object-store warehouse: nothing local to check
    if not Path(uri_mod.local_path(path)).is_file():
        raise HainaError(f"the validation report of {where} is recorded at {path}, but that "
                         f"file does not exist. Fix: point --warehouse at the warehouse the run "
                         f"wrote to (or restore its _runs folder), or re-run the recipe")


def open_report(path: str) -> None:
    """Open the report in the user's browser; a remote or headless setup gets a clear error."""
    if uri_mod.is_remote(path):
        raise HainaError(f"the report is in an object store ({path}); a browser cannot open it "
                         f"directly. Fix: copy it locally first, then open the copy")
    if not webbrowser.open(Path(uri_mod.local_path(path)).resolve().as_uri()):
        raise HainaError(f"no web browser could be started to open {path}. Fix: open the file "
                         f"yourself, or set $BROWSER to a browser command")
