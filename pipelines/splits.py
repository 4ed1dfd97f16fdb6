"""Leakage-free train/validation/test splits: a pure function of a group key, a seed and fractions.

A row's split depends only on its *group* (a platform, a station, a vessel, a block of time or a
lat/lon tile), so no group ever straddles two splits, and a group keeps its split when new data
arrive in a later version. The group is hashed with SHA-256 on canonical bytes, which are the same
on every machine and Python version (Python's ``hash()`` is salted per process; Arrow's hash
kernels are not a stable contract).

Cost: only the *unique* keys of a chunk go through Python (``hashlib``); rows are mapped to their
key's split with the dictionary indices, vectorised. A chunk of a million AIS positions from 3 000
vessels costs 3 000 hashes.

Recipe form::

    splits:
      by: platform_id          # a column, or "time_block" (with block: 7d), or "tile" (tile_degrees: 1.0)
      fractions: {train: 0.8, validation: 0.1, test: 0.1}
      seed: 42
"""
from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.exceptions import RecipeError

#: the column the split is written to
SPLIT_COLUMN = "split"
#: grouping modes that are not column names
TIME_BLOCK, TILE = "time_block", "tile"
#: canonical text of a missing key: rows without a key form one group of their own
NULL_KEY = "\x00null"
#: version of the hashing scheme; part of the hashed bytes so a future scheme cannot collide
SCHEME = "haina-split-v1"
_FIELD_SEP = "\x1f"  # ASCII unit separator: cannot occur in a seed or a split name
_BLOCK = re.compile(r"^([1-9][0-9]*)(s|min|h|d|w|M|Y)$")
_FIXED_UNIT_US = {"s": 1_000_000, "min": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000,
                  "w": 7 * 86_400_000_000}
_MONTHS_PER = {"M": 1, "Y": 12}
_SPLIT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")


class SplitConfig(BaseModel):
    """The recipe's ``splits:`` section, validated once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: a column name, or ``time_block`` / ``tile``
    by: str = Field(min_length=1)
    #: block length for ``by: time_block``: N followed by s, min, h, d, w, M (months) or Y (years)
    block: str | None = None
    #: tile edge in degrees for ``by: tile``
    tile_degrees: float | None = Field(default=None, gt=0, le=180)
    #: split name -> fraction of groups; fractions sum to 1
    fractions: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.8, "validation": 0.1, "test": 0.1})
    seed: int = Field(default=0, ge=0)

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        bad_names = [n for n in value if not _SPLIT_NAME.match(n)]
        if bad_names:
            raise ValueError(f"split names {bad_names} must be identifiers like train, validation")
        if not 2 <= len(value) <= 127:
            raise ValueError("give between 2 and 127 splits, e.g. {train: 0.8, test: 0.2}")
        bad = {n: f for n, f in value.items() if not (0 <= f <= 1) or math.isnan(f)}
        if bad:
            raise ValueError(f"every fraction must be in [0, 1]; not {', '.join(sorted(bad))}")
        total = math.fsum(value.values())
        if abs(total - 1) > 1e-9:
            raise ValueError(f"fractions must sum to 1, they sum to {total!r}")
        return value

    @model_validator(mode="after")
    def _mode_options(self) -> SplitConfig:
        if self.by == TIME_BLOCK and (self.block is None or not _BLOCK.match(self.block)):
            raise ValueError(f"by: time_block needs block: N<unit> with unit s, min, h, d, w, M "
                             f"or Y, e.g. 7d or 1M (got block: {self.block!r})")
        if self.by != TIME_BLOCK and self.block is not None:
            raise ValueError(f"block: {self.block!r} is only used with by: time_block")
        if self.by == TILE and self.tile_degrees is None:
            raise ValueError("by: tile needs tile_degrees, e.g. tile_degrees: 1.0")
        if self.by != TILE and self.tile_degrees is not None:
            raise ValueError("tile_degrees is only used with by: tile")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """Split names in canonical (sorted) order: the dictionary of the split column.

        Sorted, not as written in YAML, so reordering the recipe's keys changes nothing.
        """
        return tuple(sorted(self.fractions))


# --- keys ------------------------------------------------------------------------------------
def _require(table: pa.Table, column: str, config: SplitConfig) -> pa.Array:
    if column not in table.column_names:
        raise RecipeError(
            f"splits.by: {config.by!r} needs column {column!r}, which the data lack (columns: "
            f"{', '.join(table.column_names)}). Fix: set splits.by to one of those columns, "
            f"'time_block' or 'tile'")
    array = table.column(column).combine_chunks()
    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


def key_columns(config: SplitConfig) -> tuple[str, ...]:
    """The columns a row's group key is made of."""
    if config.by == TIME_BLOCK:
        return ("time",)
    if config.by == TILE:
        return ("latitude", "longitude")
    return (config.by,)


def check_columns(schema: pa.Schema, config: SplitConfig | None, where: str = "") -> None:
    """Refuse, while planning, a ``splits.by`` the dataset's columns cannot serve.

    The same condition as :func:`_require` at run time, checked before any data is read, so
    the error comes from the recipe rather than from inside the pipeline. ``where`` prefixes
    the message (the recipe file).
    """
    if config is None:
        return
    columns = [name for name in schema.names if name != SPLIT_COLUMN]
    lacking = [name for name in key_columns(config) if name not in columns]
    if lacking:
        raise RecipeError(
            f"{where}splits.by: {config.by!r} needs column {', '.join(map(repr, lacking))}, "
            f"which the dataset lacks (columns: {', '.join(columns)}). Fix: set splits.by to "
            f"one of those columns, 'time_block' or 'tile'")
    if config.by == TIME_BLOCK and not pa.types.is_timestamp(schema.field("time").type):
        raise RecipeError(f"{where}splits.by: time_block needs a timestamp 'time' column, got "
                          f"{schema.field('time').type}. Fix: convert time in the connector, or "
                          f"split by a column")


def _time_ticks_us(table: pa.Table, config: SplitConfig) -> pa.Array:
    time = _require(table, "time", config)
    if not pa.types.is_timestamp(time.type):
        raise RecipeError(f"splits.by: time_block needs a timestamp 'time' column, got "
                          f"{time.type}. Fix: convert time in the connector, or split by a column")
    # to microseconds since the epoch: the canonical unit, so keys do not depend on the unit
    return pc.cast(pc.cast(time, pa.timestamp("us", time.type.tz)), pa.int64())


def time_block_keys(table: pa.Table, config: SplitConfig) -> pa.Array:
    """Block numbers ``floor(time / block)``; blocks are aligned to 1970-01-01T00:00Z (weeks
    therefore start on Thursdays) and calendar blocks (M, Y) to January 1970."""
    ticks = _time_ticks_us(table, config)
    match = _BLOCK.match(config.block or "")
    if match is None:  # SplitConfig validated it: only a config built around the model gets here
        raise RecipeError(f"splits.block: {config.block!r} is not a block length. Fix: give N "
                          f"followed by s, min, h, d, w, M or Y, e.g. 'block: 7d'")
    count, unit = int(match.group(1)), match.group(2)
    values = pc.fill_null(ticks, 0).to_numpy()
    if unit in _FIXED_UNIT_US:
        blocks = np.floor_divide(values, count * _FIXED_UNIT_US[unit])
    else:
        months = values.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
        blocks = np.floor_divide(months, count * _MONTHS_PER[unit])
    return pa.array(blocks, pa.int64(), mask=pc.is_null(ticks).to_numpy(zero_copy_only=False))


def _tile_index(table: pa.Table, column: str, config: SplitConfig) -> tuple[np.ndarray, np.ndarray]:
    values = pc.cast(_require(table, column, config), pa.float64())
    valid = pc.is_valid(values).to_numpy(zero_copy_only=False) & ~np.isnan(
        pc.fill_null(values, 0.0).to_numpy())
    index = np.floor(pc.fill_null(values, 0.0).to_numpy() / config.tile_degrees)
    return np.where(valid, index, 0).astype(np.int64), valid


def tile_keys(table: pa.Table, config: SplitConfig) -> pa.Array:
    """``"i,j"`` with ``i = floor(lat / d)``, ``j = floor(lon / d)``; null where either is missing.

    The two indices are packed into one int64 for the dictionary encoding, then only the unique
    packed values are turned into text.
    """
    i, valid_i = _tile_index(table, "latitude", config)
    j, valid_j = _tile_index(table, "longitude", config)
    valid = valid_i & valid_j
    if not valid.any():
        return pa.nulls(table.num_rows, pa.string())
    i0, j0 = i[valid].min(), j[valid].min()
    width = int(j[valid].max() - j0) + 1
    packed = pa.array((i - i0) * width + (j - j0), pa.int64(), mask=~valid)
    encoded = pc.dictionary_encode(packed, null_encoding="encode")
    present = pc.is_valid(encoded.dictionary).to_numpy(zero_copy_only=False)
    codes = pc.fill_null(encoded.dictionary, 0).to_numpy()
    text = [f"{a},{b}" if ok else None for a, b, ok in
            zip((codes // width + i0).tolist(), (codes % width + j0).tolist(), present.tolist(),
                strict=True)]
    return pa.DictionaryArray.from_arrays(encoded.indices, pa.array(text, pa.string()))


def group_keys(table: pa.Table, config: SplitConfig) -> pa.Array:
    """The group key of every row (any Arrow type; null = no key)."""
    if config.by == TIME_BLOCK:
        return time_block_keys(table, config)
    if config.by == TILE:
        return tile_keys(table, config)
    return _require(table, config.by, config)


# --- hashing ---------------------------------------------------------------------------------
def canonical_key(value: Any) -> str:
    """Canonical text of one key. Integers and strings give the same text for ``123`` and
    ``"123"``, so a key column retyped between versions (MMSI as int or string) keeps its
    groups; floats use Python's shortest round-trip repr, stable since Python 3.1."""
    if value is None:
        return NULL_KEY
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def unit_interval(keys: Sequence[Any], seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per key: the first 8 bytes of SHA-256 of the canonical bytes."""
    prefix = f"{SCHEME}{_FIELD_SEP}{seed}{_FIELD_SEP}".encode()
    digests = b"".join(hashlib.sha256(prefix + canonical_key(k).encode("utf-8")).digest()[:8]
                       for k in keys)
    words = np.frombuffer(digests, dtype=">u8").astype(np.float64)
    # 2**64 in float64 is exact; the largest word rounds to 1.0, so clamp below 1
    return np.minimum(words / 2.0**64, np.nextafter(1.0, 0.0))


def bucket(u: np.ndarray, config: SplitConfig) -> np.ndarray:
    """Index into ``config.names`` for each u: cumulative fractions in canonical order."""
    names = config.names
    edges = np.cumsum([config.fractions[n] for n in names])
    codes = np.searchsorted(edges, u, side="right")
    # a sum of fractions just below 1 must not leave u near 1 outside every split: the last
    # split with a non-zero fraction takes it
    last = max(i for i, n in enumerate(names) if config.fractions[n] > 0)
    return np.minimum(codes, last).astype(np.int8)


def assign_splits(table: pa.Table, config: SplitConfig) -> pa.DictionaryArray:
    """The split of every row, as ``dictionary<int8, string>`` over ``config.names``.

    Vectorised: the key column is dictionary-encoded, only its unique values are hashed, and the
    rows take their key's split through the dictionary indices.
    """
    keys = group_keys(table, config)
    if not pa.types.is_dictionary(keys.type):
        keys = pc.dictionary_encode(keys, null_encoding="encode")
    unique_codes = bucket(unit_interval(keys.dictionary.to_pylist(), config.seed), config)
    # null_encoding="encode" made missing keys a dictionary entry, so no index is null
    codes = unique_codes[keys.indices.to_numpy(zero_copy_only=False).astype(np.intp)]
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()),
                                          pa.array(config.names, pa.string()))


# --- integration helpers ---------------------------------------------------------------------
def split_field(config: SplitConfig) -> pa.Field:
    """The ``split`` column's field, with the metadata of an id column (so quality suites treat
    it as an identifier, and the writer dictionary-encodes it)."""
    metadata = {b"haina.role": b"id", b"haina.long_name": b"training split (" +
                config.by.encode() + b")"}
    return pa.field(SPLIT_COLUMN, pa.dictionary(pa.int8(), pa.string()), metadata=metadata)


def with_split_field(schema: pa.Schema, config: SplitConfig | None) -> pa.Schema:
    """The dataset schema with the ``split`` column placed just before ``source_file``."""
    if config is None:
        return schema
    if SPLIT_COLUMN in schema.names:
        schema = schema.remove(schema.get_field_index(SPLIT_COLUMN))
    at = schema.get_field_index("source_file")
    return schema.insert(at if at >= 0 else len(schema), split_field(config))


def add_split_column(table: pa.Table, config: SplitConfig) -> pa.Table:
    """``table`` with its ``split`` column filled: in place when the column exists (nulls from
    conforming to the dataset schema, which keeps the table in that schema's column order),
    else inserted before ``source_file``."""
    splits = assign_splits(table, config)
    at = table.schema.get_field_index(SPLIT_COLUMN)
    if at >= 0:
        return table.set_column(at, split_field(config), splits)
    at = table.schema.get_field_index("source_file")
    return table.add_column(at if at >= 0 else table.num_columns, split_field(config), splits)


def split_counts(splits: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """Rows per split (vectorised ``value_counts``)."""
    if isinstance(splits, pa.ChunkedArray):
        splits = splits.combine_chunks() if splits.num_chunks else pa.array([], pa.string())
    if pa.types.is_dictionary(splits.type):
        splits = splits.dictionary_decode()
    return {item["values"].as_py(): item["counts"].as_py() for item in pc.value_counts(splits)}


def merge_counts(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Add up per-chunk counts (associative and commutative, as a Beam combiner needs)."""
    total: dict[str, int] = {}
    for part in counts:
        for name, n in part.items():
            total[name] = total.get(name, 0) + int(n)
    return total


def split_fractions(counts: Mapping[str, int]) -> dict[str, float]:
    """Achieved fraction of each split (0.0 for every split when there are no rows)."""
    total = sum(counts.values())
    return {name: (n / total if total else 0.0) for name, n in sorted(counts.items())}


def manifest_entry(config: SplitConfig, row_counts: Mapping[str, int],
                   group_counts: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The ``splits`` section of a version's manifest: what was asked and what was achieved."""
    rows = {name: int(row_counts.get(name, 0)) for name in config.names}
    entry: dict[str, Any] = {
        "column": SPLIT_COLUMN, "scheme": SCHEME, "by": config.by, "seed": config.seed,
        "fractions": {n: config.fractions[n] for n in config.names},
        "rows": rows, "achieved": split_fractions(rows),
    }
    if config.block is not None:
        entry["block"] = config.block
    if config.tile_degrees is not None:
        entry["tile_degrees"] = config.tile_degrees
    if group_counts is not None:
        entry["groups"] = {n: int(group_counts.get(n, 0)) for n in config.names}
    return entry


def group_counts(table: pa.Table, config: SplitConfig) -> dict[str, int]:
    """Distinct groups per split in ``table`` (for the manifest and for tests)."""
    keys = group_keys(table, config)
    if pa.types.is_dictionary(keys.type):
        keys = keys.dictionary_decode()
    pairs = pa.table({"key": keys, "split": assign_splits(table, config).dictionary_decode()})
    distinct = pairs.group_by(["key", "split"], use_threads=False).aggregate([])
    return split_counts(distinct.column("split"))


def count_splits_in_files(paths: Sequence[str]) -> dict[str, int]:
    """Rows per split in written Parquet files, reading only the ``split`` column."""
    return merge_counts(split_counts(pq.read_table(p, columns=[SPLIT_COLUMN])[SPLIT_COLUMN])
                        for p in paths)
