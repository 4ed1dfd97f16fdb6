"""Delimited text (CSV-like) station data (kind ``delimited``): a declarative description of one
layout -- delimiter, quoting, comments, header and units lines, time columns -- read by the
shared station text reader, :mod:`connectors.text.reader`.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from connectors import integrity
from connectors.base import ChunkResult, ChunkSpec, Connector, SourcePlan
from connectors.config import VariableMapping
from connectors.exceptions import UnreadableSourceError
from connectors.text.config import StationConfig, TimeSpec
from connectors.text.layout import TextLayout, head_lines, split_names, units_from_names
from connectors.text.lines import plan_chunks
from connectors.text.reader import TablePlan, check_time_text, make_table_plan, read_text_chunk


class DelimitedConfig(StationConfig):
    """A declarative description of one delimited text layout (see ``examples/recipes``)."""

    kind: Literal["delimited"]
    delimiter: str = Field(
        default=",",
        description="one character, or 'whitespace' for runs of blanks (fixed-width-ish tables)",
        examples=["whitespace"])
    quote_char: str | None = Field(
        default='"',
        description="quoted fields must start right after the delimiter (blanks around numbers "
                    "are fine)",
        examples=["'"])
    comment: str | None = Field(
        default=None,
        description="lines starting with this prefix are skipped wherever they are",
        examples=["#"])
    skip_lines: int = Field(
        default=0, ge=0,
        description="physical lines skipped before the header (a preamble without a comment "
                    "prefix)",
        examples=[2])
    header: bool = Field(
        default=True,
        description="the first (non-comment) line holds column names; else give `column_names`")
    units_line: bool = Field(
        default=False,
        description="the line after the header holds units (ERDDAP .csv style)")
    column_names: list[str] | None = Field(
        default=None,
        description="every column's name, where the file has no header line (header: false)",
        examples=[["time", "temp", "salt"]])
    time: TimeSpec = Field(
        description="where the time is and how to read it (keys below)",
        examples=[{"columns": "time", "format": "iso"}])
    station_id_column: str | None = Field(
        default=None,
        description="the column holding the station id",
        examples=["station"])
    latitude_column: str | None = Field(
        default=None,
        description="the column holding the latitude (degrees north)",
        examples=["latitude"])
    longitude_column: str | None = Field(
        default=None,
        description="the column holding the longitude (degrees east)",
        examples=["longitude"])
    depth_column: str | None = Field(
        default=None,
        description="the column holding the depth (metres, positive down)",
        examples=["depth"])

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        if value != "whitespace" and len(value) != 1:
            raise ValueError("expected one character (e.g. ',' or '\\t') or 'whitespace'")
        return value

    @field_validator("quote_char")
    @classmethod
    def _quote(cls, value):
        if value is not None and len(value) != 1:
            raise ValueError("expected one character, e.g. \"'\", or null for no quoting")
        return value

    @model_validator(mode="after")
    def _names(self):
        if not self.header and not self.column_names:
            raise ValueError("header: false needs column_names: [...] listing every column")
        return self


def delimited_layout(config: DelimitedConfig, uri: str) -> TextLayout:
    """Read the head of the file and work out names, units and where the data start."""
    integrity.check_text(uri, config.encoding)
    delimiter = None if config.delimiter == "whitespace" else config.delimiter
    quote = None if delimiter is None else config.quote_char
    wanted = config.skip_lines + int(config.header) + int(config.units_line)
    lines = head_lines(uri, wanted + 1000)
    meta = [(off, end, raw) for off, end, raw in lines[config.skip_lines:]
            if raw.strip() and not (config.comment and raw.startswith(config.comment.encode()))]
    needed = int(config.header) + int(config.units_line)
    if len(meta) < needed:
        raise UnreadableSourceError(
            f"expected {needed} header line(s) after {config.skip_lines} skipped line(s), found "
            f"{len(meta)}", source=uri, fix="check skip_lines, comment, header and units_line")
    decode = lambda raw: raw.decode(config.encoding, "replace")  # noqa: E731
    names = split_names(decode(meta[0][2]), delimiter, quote) if config.header else []
    names, units = units_from_names(names)
    if config.units_line:
        units = [u or None for u in split_names(decode(meta[1][2]), delimiter, quote)]
    if config.column_names:
        names = list(config.column_names)
        units = units if len(units) == len(names) else [None] * len(names)
    data_start = _data_start(lines, config, meta, needed)
    return TextLayout(tuple(names), tuple(units), data_start, delimiter, quote, config.comment,
                      config.encoding, tuple(config.missing_values))


def _data_start(lines, config: DelimitedConfig, meta, needed: int) -> int:
    if needed:
        return meta[needed - 1][1]
    if config.skip_lines and len(lines) >= config.skip_lines:
        return lines[config.skip_lines - 1][1]
    return 0


def default_variables(layout: TextLayout, used: set[str]) -> dict[str, VariableMapping]:
    """When the recipe lists none: every other column that the header gives units for."""
    return {name: VariableMapping() for name, units in zip(layout.names, layout.units, strict=False)
            if name not in used and units}


class DelimitedText(Connector):
    """Generic delimited text: CSV, TSV, whitespace tables, quoted or not, with a header."""

    kind = "delimited"
    config_model = DelimitedConfig

    def table_plan(self, config: DelimitedConfig, uri: str) -> TablePlan:
        layout = delimited_layout(config, uri)
        coords = {"station_id": config.station_id_column, "latitude": config.latitude_column,
                  "longitude": config.longitude_column, "depth": config.depth_column}
        used = set(config.time.columns) | {v for v in coords.values() if v}
        variables = config.variables or default_variables(layout, used)
        return make_table_plan(layout, config, uri, config.time, variables, coords)

    def plan(self, config: DelimitedConfig, uri: str, sha256: str, size: int) -> SourcePlan:
        plan = self.table_plan(config, uri)
        check_time_text(plan, uri)
        chunks = plan_chunks(0, uri, sha256, size, plan.layout.data_start, config.chunk_bytes)
        return SourcePlan(uri, sha256, size, plan.schema, plan.columns, chunks,
                          {"station_id": config.station_id})

    def read(self, config: DelimitedConfig, chunk: ChunkSpec, plan_schema: pa.Schema
             ) -> ChunkResult:
        plan = dataclasses.replace(self.table_plan(config, chunk.uri), schema=plan_schema)
        return read_text_chunk(plan, config, chunk, config.station_id)
