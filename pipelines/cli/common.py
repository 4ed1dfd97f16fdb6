"""What every ``haina`` command group shares: the consoles, tables, byte sizes, opening the
catalog a command works on, and reading ``NAME@REF`` (through the one resolver,
:mod:`catalog.releases.resolve`).

Import-light on purpose (rich, the catalog contract, the warehouse): ``haina --help`` imports
every command group, and through them this module.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from catalog import store as store_mod
from catalog.audit import log as audit
from catalog.exceptions import CatalogNotFoundError
from catalog.releases import lifecycle
from catalog.releases import resolve as resolve_mod
from catalog.sql.backend import catalog_identity
from catalog.storage import uri as uri_mod
from catalog.store import Catalog, VersionRecord

if TYPE_CHECKING:  # both import Beam's filesystems; only annotations need them here
    from catalog.storage.warehouse import Warehouse
    from pipelines.recipe import Recipe

# Wide enough for file names and conversions when output is piped (logs, CI, cron mail).
_WIDTH = None if sys.stdout.isatty() else 132
console = Console(highlight=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, width=_WIDTH)

#: a command's handler: the parsed arguments and the console to print to; returns the exit code
Handler = Callable[[argparse.Namespace, Console], int]


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    """A rich table with a left-aligned title; ``None`` cells print empty."""
    out = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*["" if v is None else str(v) for v in row])
    return out


def human_bytes(n: float | None) -> str:
    """``1536`` -> ``"1.5 KiB"``; ``None`` -> ``""``."""
    if n is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def warn_to(out: Console) -> Callable[[str], None]:
    """A ``warn`` callback that prints ``warning: ...`` on ``out``."""
    return lambda message: out.print(f"[yellow]warning:[/] {escape(message)}")


# --- the catalog of a command ----------------------------------------------------------------
def open_catalog_for(args: argparse.Namespace, *, read_only: bool,
                     recipe: Recipe | None = None) -> tuple[Catalog, Warehouse]:
    """The existing catalog of every command but ``run``: none of them creates a warehouse
    folder, a catalog file or tables where there is none (only ``haina run`` does).

    ``read_only`` (the commands that only look): the database refuses writes and nothing is
    migrated; a catalog of an older Haina is an error naming the command that upgrades it."""
    # imported here: pipelines.driver imports Beam (seconds), and `haina --help` imports this
    from pipelines.driver import catalog_url, resolve_warehouse

    warehouse = resolve_warehouse(recipe, args.warehouse)
    url = catalog_url(recipe, warehouse, args.catalog)
    try:
        catalog = store_mod.open_catalog(url, create=False, read_only=read_only)
    except CatalogNotFoundError as err:
        raise no_catalog(err, warehouse.root) from err
    catalog.actor = args.actor or store_mod.default_actor()
    audit.use_warehouse(catalog, warehouse.root)
    return catalog, warehouse


def no_catalog(err: CatalogNotFoundError, root: str) -> CatalogNotFoundError:
    """Say where we looked, and which catalog the warehouse's runs used if it records one."""
    looked = err.reason
    if err.where and not err.where.startswith("sqlite"):  # a SQLite reason names the file
        looked += f" ({err.where})"
    if uri_mod.scheme(root) is None and not os.path.isdir(root):
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


# --- NAME@REF --------------------------------------------------------------------------------
def parse_ref(text: str, command: str = "show") -> resolve_mod.Reference:
    """``NAME@REF`` (a bare ``NAME`` is ``NAME@latest``), or an error naming the fix."""
    return resolve_mod.parse_reference(text, example=f"haina {command} demo@latest")


def resolve_ref(catalog: Catalog, ref: resolve_mod.Reference, *, warn: Callable[[str], None],
                allow_yanked: bool = True) -> VersionRecord:
    """The version ``ref`` names, as every command reads it: ``latest`` is the latest release
    (the latest draft, after a warning, while there is none). Inspecting a yanked version is
    allowed unless ``allow_yanked`` is False: that is how one finds out what was wrong."""
    return lifecycle.resolve(catalog, ref.name, ref.ref, allow_yanked=allow_yanked, warn=warn,
                             draft_fallback=True)
