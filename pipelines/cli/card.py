"""``haina card NAME@VERSION``: write a version's dataset card and Croissant JSON-LD.

Declares arguments only (argparse, no heavy imports); the work is in
:func:`pipelines.cli.card.cmd_card`.
"""
from __future__ import annotations

import importlib

from rich.console import Console

from catalog.documents import card, croissant
from pipelines.cli.commands import _catalog, _split_ref


def register(sub) -> None:
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
    p.set_defaults(handler="pipelines.cli.card:cmd_card")


def _release_module():
    """``catalog.releases.lifecycle`` when this build has releases, else None."""
    try:
        return importlib.import_module("catalog.releases.lifecycle")
    except ModuleNotFoundError as err:
        if err.name != "catalog.releases.lifecycle":
            raise
        return None


def resolve_version(catalog, name: str, ref: str):
    """A version id, ``latest``, or (with releases) a semver, to a VersionRecord."""
    release = _release_module()
    if release is not None:
        return release.resolve(catalog, name, ref)
    return catalog.version(name, ref)


def release_label(catalog, version, requested: str | None) -> str | None:
    if requested:
        return requested
    release = _release_module()
    record = release.release_of(catalog, version.version_id) if release is not None else None
    return record.semver if record is not None else None


def cmd_card(args, console: Console) -> int:
    name, ref = _split_ref(args.ref)
    catalog, _ = _catalog(args)
    version = resolve_version(catalog, name, ref)
    semver = release_label(catalog, version, args.release)
    md_path, html_path = card.write_card(catalog, version, args.out, release=semver,
                                         changelog=args.changelog)
    console.print(f"card: {md_path}\ncard: {html_path}")
    if not args.no_croissant:
        path = croissant.write_croissant(catalog, version, release=semver)
        console.print(f"croissant: {path}")
    return 0
