"""Recipe keys of the station text kinds: where the time is (:class:`TimeSpec`), and the keys
every station kind shares (:class:`StationConfig`: station position, chunking, missing tokens).
"""
from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from connectors import cf_time
from connectors.config import Frozen, SourceConfig, TextEncoding
from connectors.exceptions import UnreadableSourceError
from connectors.text.times import check_timezone

#: files under this size are read as one chunk
DEFAULT_CHUNK_BYTES = 64 * 2**20


class TimeSpec(Frozen):
    """Where the time is and how to read it."""

    columns: list[str] = Field(
        min_length=1,
        description="one column, or several joined with a space before parsing (e.g. [YY, MM, "
                    "DD, hh, mm])",
        examples=[["YY", "MM", "DD", "hh", "mm"]])
    format: str = Field(
        default="iso",
        description="'iso' (ISO 8601; an explicit offset wins over `timezone`) or a strptime "
                    "format",
        examples=["%Y %m %d %H %M"])
    timezone: str = Field(
        default="UTC",
        description="IANA zone of times written without an offset",
        examples=["Asia/Shanghai"])
    units: str | None = Field(
        default=None,
        description="numeric times: CF '<unit> since <epoch>' (a local epoch carries its "
                    "offset); replaces `format`",
        examples=["days since 1700-01-01"])
    calendar: str = Field(
        default="standard",
        description="CF calendar of numeric times (standard, proleptic_gregorian, julian, "
                    "noleap, 360_day...)",
        examples=["360_day"])

    @field_validator("columns", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _numeric(self):
        if self.units is None:
            if self.calendar != "standard":
                raise ValueError("calendar applies to numeric times only; add units: "
                                 "'<unit> since <epoch>' or remove calendar")
            return self
        try:
            cf_time.parse_units(self.units)
            cf_time.normalise_calendar(self.calendar)
        except UnreadableSourceError as err:
            raise ValueError(err.reason) from err
        if len(self.columns) != 1 or self.format != "iso" or self.timezone != "UTC":
            raise ValueError(
                f"units {self.units!r} decode one numeric column: give one column, no format "
                "and no timezone (write a local epoch's offset in units, e.g. "
                "'hours since 2001-08-15 00:00 -08:00')")
        return self


class StationConfig(SourceConfig):
    """Keys shared by the station kinds: where the station is, and how to chunk."""

    station_id: str | None = Field(
        default=None,
        description="a literal station id, for files that carry none",
        examples=["46050"])
    latitude: float | None = Field(
        default=None, ge=-90, le=90,
        description="the station's latitude in degrees north, for files without a latitude "
                    "column",
        examples=[44.669])
    longitude: float | None = Field(
        default=None, ge=-180, le=360,
        description="the station's longitude in degrees east (0-360 is shifted to -180..180), "
                    "for files without a longitude column",
        examples=[-124.546])
    depth: float | None = Field(
        default=None,
        description="the sensor depth in metres, positive down, for files without a depth column",
        examples=[1.5])
    sort_by_time: bool = Field(
        default=True,
        description="output rows ascending in time within each chunk (stable: equal times keep "
                    "file order)")
    chunk_bytes: int = Field(
        default=DEFAULT_CHUNK_BYTES, ge=4096,
        description="bytes of text per chunk; chunks end on line boundaries",
        examples=[8388608])
    missing_values: list[str] = Field(
        default_factory=lambda: ["", "NaN", "nan", "NA", "N/A"],
        description="tokens read as missing (null) in every column; NaN values become null too",
        examples=[["", "NaN", "-"]])
    fill_values: list[float] = Field(
        default_factory=list,
        description="numeric sentinels read as missing, e.g. [-999, 9999]",
        examples=[[-999, 9999]])
    encoding: TextEncoding = "utf-8"
