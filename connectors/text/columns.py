"""Well-formed lines to typed columns: pyarrow's CSV parser, numbers, missing tokens and fill
values, and each variable's unit conversion.
"""
from __future__ import annotations

import dataclasses
import io
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from connectors.base import ColumnInfo
from connectors.config import VariableMapping
from connectors.text.layout import TextLayout
from connectors.units import Conversion, canonical_name, canonical_units, column_conversion

_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(?i:nan|inf|infinity)$"


def parse_buffer(clean: bytes, layout: TextLayout, numeric: frozenset[int],
                 as_strings: bool = False) -> pa.Table:
    """Parse clean lines into columns ``c0..cN``; numeric columns float64 unless ``as_strings``.

    Times stay text here: pyarrow's timestamp parser, like its strptime, rolls impossible dates
    over (June 31 -> July 1) instead of failing, so :func:`parse_times` checks them.
    """
    names = [f"c{i}" for i in range(len(layout.names))]
    types = {n: (pa.float64() if i in numeric and not as_strings else pa.string())
             for i, n in enumerate(names)}
    if not clean:
        return pa.table({n: pa.array([], t) for n, t in types.items()})
    return pacsv.read_csv(
        io.BytesIO(clean),
        read_options=pacsv.ReadOptions(column_names=names, autogenerate_column_names=False),
        parse_options=pacsv.ParseOptions(
            delimiter=layout.delimiter or " ", quote_char=layout.quote_char or False,
            double_quote=True, newlines_in_values=False, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types=types, null_values=list(layout.missing), strings_can_be_null=True,
            quoted_strings_can_be_null=True),
    )


def to_float(strings: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Strings to float64; returns the values and a mask of cells that were not numbers."""
    text = pc.utf8_trim_whitespace(strings)
    ok = pc.match_substring_regex(text, _NUMBER)
    bad = pc.fill_null(pc.invert(ok), False)
    values = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.float64())
    return values, np.asarray(bad.to_numpy(zero_copy_only=False), bool)


def mask_missing(values: pa.Array, fill_values) -> pa.Array:
    """NaN and numeric sentinels become null."""
    missing = pc.is_nan(values)
    if not fill_values and not pc.any(missing).as_py():
        return values
    if fill_values:
        missing = pc.or_(missing, pc.is_in(values, pa.array(list(fill_values), pa.float64())))
    return pc.if_else(pc.fill_null(missing, False), pa.scalar(None, values.type), values)


@dataclasses.dataclass(frozen=True)
class VariablePlan:
    """One output variable: where it comes from, how it is converted, its output type."""

    source: str
    info: ColumnInfo
    conversion: Conversion
    dtype: str = "float32"


def output_name(source: str, mapping: VariableMapping) -> str:
    name = mapping.name or canonical_name(mapping.standard_name) or canonical_name(source)
    return name or (re.sub(r"[^a-z0-9]+", "_", source.lower()).strip("_") or "value")


def plan_variable(source: str, mapping: VariableMapping, file_units: str | None,
                  uri: str) -> VariablePlan:
    """Name, canonical units and the conversion of one source column."""
    name = output_name(source, mapping)
    canon = canonical_name(mapping.standard_name) or canonical_name(name)
    units = mapping.units or file_units
    conv = column_conversion(units, canonical_units(canon) if canon else None, mapping.units_to,
                             variable=source, source=uri)
    info = ColumnInfo(name=name, role="variable", units=conv.target_units or None,
                      standard_name=mapping.standard_name or canon, source_name=source,
                      source_units=units, conversion=conv.description)
    return VariablePlan(source, info, conv, mapping.dtype)


#: recipe keys that make a source column one of the connector's columns, where a kind has them


def convert_variable(values: pa.Array, plan: VariablePlan, fill_values) -> pa.Array:
    values = mask_missing(values, fill_values)
    array = values.to_numpy(zero_copy_only=False)
    converted = plan.conversion.apply(array.astype(np.float64, copy=False))
    return pa.array(converted, pa.float64(), mask=np.isnan(converted)).cast(plan.dtype)
