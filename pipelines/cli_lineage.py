"""``haina lineage``: where a version came from, or where a source file went (argparse only)."""
from __future__ import annotations

import argparse

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
    p.set_defaults(handler="pipelines.lineage_commands:cmd_lineage")
