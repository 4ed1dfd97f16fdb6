"""``haina card NAME@VERSION``: write a version's dataset card and Croissant JSON-LD.

Declares arguments only (argparse, no heavy imports); the work is in
:func:`pipelines.card_commands.cmd_card`.
"""
from __future__ import annotations


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
    p.set_defaults(handler="pipelines.card_commands:cmd_card")
