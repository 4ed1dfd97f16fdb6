"""Typed, frozen configuration of a recipe's ``sources[]`` entries.

Each connector kind owns a subclass of :class:`SourceConfig`; the recipe loader validates an entry
with the model of the kind it names, so unknown keys and bad values are reported with their path.
"""
from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from connectors.integrity import check_encoding_name

#: the ``encoding:`` key of every text kind: an ASCII-compatible Python codec
TextEncoding = Annotated[str, AfterValidator(check_encoding_name), Field(
    description="the file's text encoding (any ASCII-compatible Python codec: utf-8, latin-1, "
                "cp1252...); a line that does not decode (a Latin-1 vessel name in a UTF-8 "
                "file) is quarantined as `encoding`, not the whole file",
    examples=["latin-1"])]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VariableMapping(Frozen):
    """How one source variable becomes one output column.

    ``name`` is the output column (default: the variable's CF ``standard_name``); ``standard_name``
    supplies one where the file has none; ``units`` overrides a wrong or missing units label in the
    file; ``units_to`` converts a column that is not canonical to other units; ``dtype`` is the
    output float type.
    """

    name: str | None = Field(
        default=None, pattern=r"^[a-z][a-z0-9_]*$",
        description="output column name (default: the canonical name of the variable's CF "
                    "standard_name, else the variable name in lower case)",
        examples=["sea_water_temperature"])
    standard_name: str | None = Field(
        default=None, description="CF standard_name, where the file has none or a wrong one",
        examples=["sea_water_electrical_conductivity"])
    units: str | None = Field(
        default=None, description="the source's units, where the file's label is missing or "
                                  "wrong (udunits spelling)", examples=["mS cm-1"])
    units_to: str | None = Field(
        default=None, description="convert a column that is not canonical to these units (any "
                                  "udunits-convertible target; canonical columns always have "
                                  "their canonical units)", examples=["S m-1"])
    dtype: Literal["float32", "float64"] = Field(
        default="float32", description="output float type")


class SourceConfig(Frozen):
    """Keys shared by every source kind."""

    #: shared keys a kind refuses (e.g. ``variables`` of fixed-schema kinds): left out of its
    #: key reference (connectors.reference)
    reference_omit: ClassVar[tuple[str, ...]] = ()

    kind: str = Field(description="the source kind; `haina kinds` lists them",
                      examples=["netcdf_grid"])
    name: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.-]+$",
        description="a name for this source in lineage and reports (default: its position)",
        examples=["cmems-so"])
    #: one glob or a list of globs; relative paths are relative to the recipe file
    uri: str | list[str] = Field(
        description="one glob or a list of globs; relative paths are relative to the recipe "
                    "file", examples=["data/*.nc"])
    #: source variable -> mapping; a bare string is the output column name
    variables: dict[str, VariableMapping] = Field(
        default_factory=dict,
        description="source variable -> mapping (keys: name, standard_name, units, units_to, "
                    "dtype); a bare string is the output column name, a list keeps the names "
                    "(default: every data variable)",
        examples=[{"so": {"name": "sea_water_salinity"}}])
    licence: str | None = Field(default=None, description="licence of the source data",
                                examples=["CC-BY-4.0"])
    attribution: str | None = Field(default=None, description="credit line for the source",
                                    examples=["E.U. Copernicus Marine Service Information"])

    @field_validator("variables", mode="before")
    @classmethod
    def _expand_variables(cls, value):
        if value is None:
            return {}
        if isinstance(value, list):
            return {name: {} for name in value}
        if isinstance(value, dict):
            return {
                key: ({"name": spec} if isinstance(spec, str) else (spec or {}))
                for key, spec in value.items()
            }
        return value

    @field_validator("uri")
    @classmethod
    def _some_uri(cls, value: str | list[str]) -> str | list[str]:
        # an empty glob would match the recipe's own folder (''), or nothing at all ([])
        given = [value] if isinstance(value, str) else value
        if not given or any(not item.strip() for item in given):
            raise ValueError("expected a path or glob, or a non-empty list of them, "
                             "e.g. uri: data/*.nc")
        return value

    def uris(self) -> list[str]:
        return [self.uri] if isinstance(self.uri, str) else list(self.uri)
