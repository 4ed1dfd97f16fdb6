"""Dataset schema union: order, types, and which fields may be null."""
from __future__ import annotations

import pyarrow as pa
import pytest

from pipelines.exceptions import RunError
from pipelines.schemas import union


def field(name, type_=None, nullable=True):
    return pa.field(name, pa.float64() if type_ is None else type_, nullable=nullable)


def test_a_field_stays_required_only_when_every_schema_requires_it():
    flag = field("t_qc", pa.uint8(), nullable=False)
    a = pa.schema([field("t"), flag, field("source_file", pa.string())])
    b = pa.schema([field("t"), flag, field("extra")])
    c = pa.schema([field("t"), field("t_qc", pa.uint8())])  # an older version: nullable flags
    assert not union([a, b]).field("t_qc").nullable
    assert union([a, b, c]).field("t_qc").nullable
    # a source without the column contributes nulls, so it cannot be required
    assert union([a, pa.schema([field("t")])]).field("t_qc").nullable
    assert union([a, b]).names == ["t", "t_qc", "extra", "source_file"]


def test_a_type_conflict_is_an_error_naming_the_column():
    with pytest.raises(RunError, match="column 't' has type double in one source and float"):
        union([pa.schema([field("t")]), pa.schema([field("t", pa.float32())])])
