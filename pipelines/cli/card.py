"""``haina card NAME@VERSION``: write a version's dataset card and Croissant JSON-LD.

The card renders charts from the data (pandas, pyarrow): :mod:`catalog.documents` is imported
inside the handler, so ``haina --help`` does not pay for it.
"""
from __future__ import annotations

import argparse

from rich.console import Console

from catalog.releases import lifecycle
from catalog.store import Catalog, VersionRecord
from pipelines.cli.common import err_console, open_catalog_for, parse_ref, resolve_ref, warn_to


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("card", help="write the dataset card (Markdown + HTML) and Croissant "
                       "JSON-LD of NAME@VERSION")
    p.add_argument("ref", help="NAME@VERSION; VERSION is a version id, a released semver, or "
                   "'latest'")
    p.add_argument("--out", metavar="DIR", help="folder for CARD.md and card.html (default: the "
                   "version folder)")
    p.add_argument("--release", metavar="SEMVER", help="label the card with this release "
                   "(default: the version's release in the catalog, if any)")
    p.add_argument("--change", action="append", dest="changelog", metavar="TEXT",
                   help="a change since the previous release (repeatable)")
    p.add_argument("--no-croissant", action="store_true",
                   help="do not write croissant.json into the version folder")
    p.set_defaults(handler=cmd_card)


def release_label(catalog: Catalog, version: VersionRecord, requested: str | None) -> str | None:
    """The semver the card names: the one asked for, else the version's release, if any."""
    if requested:
        return requested
    record = lifecycle.release_of(catalog, version.version_id)
    return record.semver if record is not None else None


def cmd_card(args: argparse.Namespace, console: Console) -> int:
    from catalog.documents import croissant
    from catalog.documents.card import writer as card  # pandas and charts: kept off --help

    ref = parse_ref(args.ref, "card")
    catalog, _ = open_catalog_for(args, read_only=False)
    version = resolve_ref(catalog, ref, warn=warn_to(err_console), allow_yanked=False)
    semver = release_label(catalog, version, args.release)
    md_path, html_path = card.write_card(catalog, version, args.out, release=semver,
                                         changelog=args.changelog)
    console.print(f"card: {md_path}\ncard: {html_path}")
    if not args.no_croissant:
        path = croissant.write_croissant(catalog, version, release=semver)
        console.print(f"croissant: {path}")
    return 0
