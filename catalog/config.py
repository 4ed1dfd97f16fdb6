"""Typed, frozen output settings of a recipe (the ``output:`` section)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

#: the levels each codec accepts (pyarrow's Codec.minimum/maximum_compression_level; zstd's
#: negative "fast" levels are left out); codecs not listed take no level
COMPRESSION_LEVELS = {"zstd": (1, 22), "gzip": (1, 9)}


class OutputConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: hive partitioning of the data files by the UTC ``time``: one folder per date
    #: (``date=2024-01-31``), month (``month=2024-01``) or year (``year=2024``), or none. Long,
    #: sparse series (a bottle station sampled a few times a month) want month or year.
    partition_by: Literal["date", "month", "year", "none"] = "date"
    #: a data file is closed once its estimated compressed size reaches this many MiB
    target_file_mb: float = Field(default=128, gt=0)
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    #: the codec's level (see COMPRESSION_LEVELS); ignored by snappy and none unless given
    compression_level: int | None = 3
    row_group_rows: int = Field(default=1_000_000, gt=0)

    @field_validator("compression_level")
    @classmethod
    def _level_fits_codec(cls, level: int | None, info: ValidationInfo) -> int | None:
        # runs only on a level the recipe gives: the default suits every codec
        codec = info.data.get("compression")
        if level is None or codec is None:
            return level
        if codec not in COMPRESSION_LEVELS:
            raise ValueError(f"compression {codec!r} takes no level; remove compression_level "
                             f"or choose {' or '.join(COMPRESSION_LEVELS)}")
        low, high = COMPRESSION_LEVELS[codec]
        if not low <= level <= high:
            raise ValueError(f"{codec} accepts levels {low}..{high}")
        return level
