"""The connector contract: what every source kind implements.

A connector works in two steps, both pure functions of their inputs (no Beam, no shared state):

1. ``plan(config, uri)`` runs once per source file in the driver. It opens only metadata, checks the
   recipe against the file (variables present, units convertible, dimensions known) and returns a
   :class:`SourcePlan`: the output columns and the list of :class:`ChunkSpec` to read. Errors found
   here reach the user before any work starts.
2. ``read(config, chunk)`` runs on a worker for one chunk and returns a :class:`ChunkResult`: a
   ``pyarrow.Table`` in the connector's canonical schema, plus exact row accounting.

Chunk specs are the Beam elements that are shuffled between workers, so they must stay small,
immutable and picklable; the data itself never crosses a shuffle.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import pyarrow as pa

from connectors.config import SourceConfig
from connectors.exceptions import ColumnNameClashError

# the quarantine schema is part of the contract (ChunkResult.quarantine); re-exported here
from connectors.quarantine import QUARANTINE_SCHEMA, Quarantine, quarantine_table


@dataclasses.dataclass(frozen=True, order=True)
class ChunkSpec:
    """One unit of reading work: a slice of one source file along one dimension.

    ``source_index`` is the position of the source section in the recipe; ``uri`` the resolved file;
    ``dim``/``start``/``stop`` the slice (``dim`` is None for connectors that read whole files or
    record ranges, where ``start``/``stop`` are record offsets); ``ordinal`` the chunk's position in
    the file, used to name output files deterministically.
    """

    source_index: int
    uri: str
    sha256: str
    ordinal: int
    dim: str | None = None
    start: int = 0
    stop: int = -1


@dataclasses.dataclass(frozen=True)
class ColumnInfo:
    """Metadata of one output column, carried into the Arrow schema and the Parquet footer."""

    name: str
    role: str  # "coordinate", "variable", "flag", "id", "source"
    units: str | None = None
    standard_name: str | None = None
    long_name: str | None = None
    source_name: str | None = None
    source_units: str | None = None
    conversion: str | None = None

    def metadata(self) -> dict[bytes, bytes]:
        items = dataclasses.asdict(self)
        return {
            f"haina.{k}".encode(): str(v).encode()
            for k, v in items.items()
            if v is not None and k != "name"
        }


@dataclasses.dataclass(frozen=True)
class SourcePlan:
    """What planning one source file found: its output schema and the chunks to read.

    ``attributes`` carries what the file says about itself (title, licence, feature type) and
    what planning decided that a user may want to know: ``notes`` (one line each, e.g. which of
    two time variables was used) and ``<role>_candidates`` (the variables that could have been
    the ``time``/``depth``/... coordinate, the chosen one first).
    """

    uri: str
    sha256: str
    size: int
    schema: pa.Schema
    columns: tuple[ColumnInfo, ...]
    chunks: tuple[ChunkSpec, ...]
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        # every connector checks with a kind-specific hint first; this is the net for all kinds
        check_column_names(self.schema, self.uri)


def check_column_names(schema: pa.Schema, source: str | None = None, *,
                       hints: Mapping[str, str] | None = None) -> None:
    """Refuse an output schema that has a column name twice, naming the recipe key that did it.

    A variable mapped to ``depth`` (or ``time``, ``platform_id``, ``source_file``...) would give
    the table two fields of one name, which Parquet and the QC step cannot hold; found here, at
    plan time (``haina check``), it is one line naming the key and the fix instead of a crash
    in the middle of a run. ``hints`` maps a connector column to how the kind's recipe makes a
    variable that column instead (``"set depth_variable: {source}"``), for when the user meant it
    as the coordinate.
    """
    fields: dict[str, list[pa.Field]] = {}
    for field in schema:
        fields.setdefault(field.name, []).append(field)
    for name, same in fields.items():
        if len(same) > 1:
            raise ColumnNameClashError(_clash_message(name, same), source=source,
                                       fix=_clash_fix(name, same, hints or {}))


def _meta(field: pa.Field, key: str) -> str | None:
    value = (field.metadata or {}).get(f"haina.{key}".encode())
    return None if value is None else value.decode()


def _clash_message(name: str, same: list[pa.Field]) -> str:
    variables = [f for f in same if _meta(f, "role") == "variable"]
    others = [f for f in same if _meta(f, "role") != "variable"]
    sources = [_meta(f, "source_name") or "?" for f in variables]
    keys = " and ".join(f"sources[].variables.{s}" for s in sources)
    if not variables:
        return f"output column {name!r} occurs {len(same)} times"
    if not others:
        return (f"variables {' and '.join(map(repr, sources))} (recipe keys {keys}) are both "
                f"written as output column {name!r}")
    other = others[0]
    origin = _meta(other, "source_name")
    what = f"the connector's {_meta(other, 'role') or 'own'} column {name!r}" + (
        f" (from {origin!r})" if origin and origin not in sources else "")
    return (f"variable {sources[0]!r} (recipe key {keys}) is written as output column {name!r}, "
            f"which is already {what}")


def _clash_fix(name: str, same: list[pa.Field], hints: Mapping[str, str]) -> str:
    variables = [f for f in same if _meta(f, "role") == "variable"]
    source = _meta(variables[-1], "source_name") if variables else None
    if not source:
        return "give each column a distinct name in the recipe"
    fix = ("give it another output name in the recipe: variables: "
           f"{{{source}: {{name: <new name>}}}}")
    if name in hints:
        fix += f"; or, to use {source!r} as the {name} column itself, " + \
            hints[name].format(source=source)
    return fix


def padding(has_value: np.ndarray, located: np.ndarray | bool) -> np.ndarray:
    """The one rule, for every kind, of which rows are padding rather than observations.

    A row is padding when it has no value in any variable (NaN/fill; an infinite value *is* a
    value) **and** no coordinate that was sampled with it (``located`` False). Padding rows are
    dropped and counted in :attr:`ChunkResult.rows_dropped`; every other row is an observation,
    kept (missing values as null) or quarantined with a reason.

    * grids: the axes place a cell but nothing sampled it, so ``located`` is False and a cell
      with every variable missing (land, radar gaps, fill) is padding;
    * Argo: the level's pressure is a parameter itself, so a level with no parameter at all is
      padding (the rectangular ``N_LEVELS`` array pads short profiles);
    * DSG: ``located`` is whether any coordinate that varies along the observation dimensions
      (the 2-D depth of a trajectoryProfile, the time of an incomplete time series) is present:
      a fill-padded cell has neither a value nor such a coordinate;
    * text, AIS and port kinds: every record is a line someone wrote, never padding.
    """
    return ~np.asarray(has_value, dtype=bool) & ~np.asarray(located, dtype=bool)


@dataclasses.dataclass
class ChunkResult:
    """The output of reading one chunk.

    Accounting identity, checked by the pipeline: ``rows_in == table.num_rows + rows_dropped +
    quarantine.num_rows``. ``rows_dropped`` is only for padding, cells that carry no observation
    at all (:func:`padding`: grid fill and land cells, fill-padded levels of profiles); anything
    that was a record and could not be used goes to ``quarantine`` with a reason.
    """

    table: pa.Table
    rows_in: int
    rows_dropped: int = 0
    quarantine: pa.Table | None = None

    @property
    def rows_quarantined(self) -> int:
        return 0 if self.quarantine is None else self.quarantine.num_rows


class Connector(abc.ABC):
    """A source kind. Subclasses register themselves with :func:`connectors.register`."""

    kind: ClassVar[str]
    #: pydantic model of the recipe's ``sources[]`` entry for this kind
    config_model: ClassVar[type[SourceConfig]]

    @abc.abstractmethod
    def plan(self, config: Any, uri: str, sha256: str, size: int) -> SourcePlan:
        """Open metadata only, check the recipe against it, and list the chunks."""

    @abc.abstractmethod
    def read(self, config: Any, chunk: ChunkSpec, plan_schema: pa.Schema) -> ChunkResult:
        """Read one chunk into a table with exactly ``plan_schema``."""

    # optional hooks (B027): by default a kind has no cross-file checks and nothing to close
    def check_source(self, config: Any, plans: Sequence[SourcePlan]) -> None:  # noqa: B027
        """Checks across the files of one recipe source, once each is planned (e.g. no grid
        time step in two files); raise a :class:`ConnectorError`. Default: none."""

    def release(self) -> None:  # noqa: B027
        """Close what ``read`` keeps open between chunks; called when a worker is done."""


__all__ = [
    "QUARANTINE_SCHEMA", "ChunkResult", "ChunkSpec", "ColumnInfo", "Connector", "Quarantine",
    "SourcePlan", "check_column_names", "padding", "quarantine_table",
]
