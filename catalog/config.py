"""Typed, frozen output settings of a recipe (the ``output:`` section)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OutputConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: hive partitioning of the data files by the UTC ``time``: one folder per date
    #: (``date=2024-01-31``), month (``month=2024-01``) or year (``year=2024``), or none. Long,
    #: sparse series (a bottle station sampled a few times a month) want month or year.
    partition_by: Literal["date", "month", "year", "none"] = "date"
    #: a data file is closed once its estimated compressed size reaches this many MiB
    target_file_mb: float = Field(default=128, gt=0)
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    compression_level: int | None = Field(default=3, ge=1, le=22)
    row_group_rows: int = Field(default=1_000_000, gt=0)
