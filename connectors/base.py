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
from typing import Any, ClassVar, Sequence

import pyarrow as pa


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
    """What planning one source file found: its output schema and the chunks to read."""

    uri: str
    sha256: str
    size: int
    schema: pa.Schema
    columns: tuple[ColumnInfo, ...]
    chunks: tuple[ChunkSpec, ...]
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ChunkResult:
    """The output of reading one chunk.

    Accounting identity, checked by the pipeline: ``rows_in == table.num_rows + rows_dropped +
    quarantine.num_rows``. ``rows_dropped`` is only for cells that carry no observation at all
    (grid fill and land cells); anything that was a record and could not be used goes to
    ``quarantine`` with a reason.
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
    config_model: ClassVar[type]

    @abc.abstractmethod
    def plan(self, config: Any, uri: str, sha256: str, size: int) -> SourcePlan:
        """Open metadata only, check the recipe against it, and list the chunks."""

    @abc.abstractmethod
    def read(self, config: Any, chunk: ChunkSpec, plan_schema: pa.Schema) -> ChunkResult:
        """Read one chunk into a table with exactly ``plan_schema``."""

    def check_source(self, config: Any, plans: Sequence[SourcePlan]) -> None:
        """Checks across the files of one recipe source, once each is planned (e.g. no grid
        time step in two files); raise a :class:`ConnectorError`. Default: none."""

    def release(self) -> None:
        """Close what ``read`` keeps open between chunks; called when a worker is done."""


#: Schema of quarantined records: every record a connector reads but cannot use lands here.
QUARANTINE_SCHEMA = pa.schema([
    pa.field("reason", pa.string(), nullable=False),   # stable code, e.g. "bad_checksum"
    pa.field("detail", pa.string()),                   # human-readable: what and why
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("position", pa.int64()),                  # line number (1-based) or record index
    pa.field("raw", pa.string()),                      # the offending text, when there is one
])


def quarantine_table(reasons, details, source_file: str, positions, raws) -> pa.Table:
    """Build a quarantine table from equal-length sequences (vectorised; no per-row work)."""
    n = len(reasons)
    return pa.table({
        "reason": pa.array(reasons, pa.string()),
        "detail": pa.array(details, pa.string()),
        "source_file": pa.array([source_file] * n, pa.string()),
        "position": pa.array(positions, pa.int64()),
        "raw": pa.array(raws, pa.string()),
    }, schema=QUARANTINE_SCHEMA)
