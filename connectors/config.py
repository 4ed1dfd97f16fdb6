"""Typed, frozen configuration of a recipe's ``sources[]`` entries.

Each connector kind owns a subclass of :class:`SourceConfig`; the recipe loader validates an entry
with the model of the kind it names, so unknown keys and bad values are reported with their path.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VariableMapping(Frozen):
    """How one source variable becomes one output column.

    ``name`` is the output column (default: the variable's CF ``standard_name``); ``standard_name``
    supplies one where the file has none; ``units`` overrides a wrong or missing units label in the
    file; ``dtype`` is the output float type.
    """

    name: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    standard_name: str | None = None
    units: str | None = None
    dtype: Literal["float32", "float64"] = "float32"


class SourceConfig(Frozen):
    """Keys shared by every source kind."""

    kind: str
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    #: one glob or a list of globs; relative paths are relative to the recipe file
    uri: str | list[str]
    #: source variable -> mapping; a bare string is the output column name
    variables: dict[str, VariableMapping] = Field(default_factory=dict)
    licence: str | None = None
    attribution: str | None = None

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
