"""``haina kinds [KIND]``: rich tables of :mod:`connectors.reference` (no catalog, no warehouse)."""
from __future__ import annotations

from rich.markup import escape

import connectors
from connectors import reference
from pipelines.cli import table


def cmd_kinds(args, console) -> int:
    if args.kind is None:
        console.print(table("source kinds (haina kinds KIND lists its keys)", ["kind", "reads"],
                            [(kind, escape(reference.summary(kind)))
                             for kind in connectors.kinds()]))
        return 0
    # escaped: rich would take `[time, temp]` in a default or an example for markup and drop it
    rows = [tuple(map(escape, (k.name, k.type, k.default, k.description, k.example)))
            for k in reference.keys(args.kind)]
    out = table(escape(f"kind {args.kind}: {reference.summary(args.kind)}"),
                ["key", "type", "default", "description", "example"], rows)
    for column in out.columns:  # wrap long keys and examples rather than cut them with "…"
        column.overflow = "fold"
    console.print(out)
    return 0
