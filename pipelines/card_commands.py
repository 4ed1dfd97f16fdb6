"""Implementation of ``haina card`` (arguments in :mod:`pipelines.cli_card`)."""
from __future__ import annotations

import importlib

from rich.console import Console

from catalog import card, croissant
from pipelines.commands import _catalog, _split_ref


def _release_module():
    """``catalog.release`` when this build has releases, else None."""
    try:
        return importlib.import_module("catalog.release")
    except ModuleNotFoundError as err:
        if err.name != "catalog.release":
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
