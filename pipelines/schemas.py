"""Dataset schemas: union of what the sources produce, and schema-drift detection.

Drift is a difference between files of the same recipe source, or between a run and the version
it extends: a new column, a missing column, a changed type or a changed unit. The recipe's
``schema_drift`` decides: ``fail`` (the default) stops the run with a message that names both
files and the changes; ``widen`` accepts new and missing columns (missing values are nulls).
A changed type or unit is never widened: the values would no longer mean the same thing.
"""
from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from pipelines.exceptions import RunError

UNITS = b"haina.units"


def _units(field: pa.Field) -> str | None:
    value = (field.metadata or {}).get(UNITS)
    return value.decode() if value else None


def drift(before: pa.Schema, after: pa.Schema) -> tuple[list[str], list[str]]:
    """(widenable changes, incompatible changes) from ``before`` to ``after``."""
    a, b = {f.name: f for f in before}, {f.name: f for f in after}
    widenable = [f"new column {n!r}" for n in b if n not in a]
    widenable += [f"missing column {n!r}" for n in a if n not in b]
    incompatible = [f"column {n!r} type {a[n].type} -> {b[n].type}"
                    for n in a if n in b and a[n].type != b[n].type]
    incompatible += [f"column {n!r} units {_units(a[n])!r} -> {_units(b[n])!r}"
                     for n in a if n in b and _units(a[n]) != _units(b[n])]
    return widenable, incompatible


def check_drift(before: pa.Schema, after: pa.Schema, policy: str, *, what: str) -> None:
    """Raise when ``after`` drifted from ``before`` in a way ``policy`` does not accept."""
    widenable, incompatible = drift(before, after)
    if incompatible:
        raise RunError(f"schema drift {what}: {'; '.join(incompatible)}. Fix: declare the units "
                       f"or dtype of the variable in the recipe so every file maps to the same "
                       f"column, or split the files into separate sources or datasets")
    if widenable and policy != "widen":
        raise RunError(f"schema drift {what}: {'; '.join(widenable)}. Fix: set "
                       f"`schema_drift: widen` in the recipe to accept it (missing values become "
                       f"nulls), or map the variables so every file has the same columns")


def union(schemas: Sequence[pa.Schema]) -> pa.Schema:
    """Union of schemas in first-seen order, keeping field metadata; ``source_file`` last.

    A field stays non-nullable (QC flags) only when every schema has it non-nullable; a field
    some schema lacks is nullable (those rows will hold nulls).
    """
    fields: dict[str, pa.Field] = {}
    required = {f.name for f in schemas[0] if not f.nullable} if schemas else set()
    for schema in schemas:
        required &= {f.name for f in schema if not f.nullable}
        for field in schema:
            if field.name not in fields:
                fields[field.name] = field
            elif fields[field.name].type != field.type:
                raise RunError(f"column {field.name!r} has type {fields[field.name].type} in one "
                               f"source and {field.type} in another. Fix: give the sources the "
                               f"same dtype for it in the recipe (variables: {{...: {{dtype: ...}}}})")
    fields = {name: f.with_nullable(name not in required) for name, f in fields.items()}
    ordered = [f for name, f in fields.items() if name != "source_file"]
    if "source_file" in fields:
        ordered.append(fields["source_file"])
    return pa.schema(ordered)


def source_schemas(n_sources: int, plans, policy: str) -> list[pa.Schema | None]:
    """One schema per recipe source: the union of its files', after checking their drift."""
    schemas: list[pa.Schema | None] = [None] * n_sources
    first: list[str | None] = [None] * n_sources
    for index, plan in plans:
        if schemas[index] is None:
            schemas[index], first[index] = plan.schema, plan.uri
            continue
        check_drift(schemas[index], plan.schema, policy,
                    what=f"in sources[{index}] between {first[index]} and {plan.uri}")
        schemas[index] = union([schemas[index], plan.schema])
    return schemas
