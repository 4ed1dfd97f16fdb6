"""Recipes: one YAML file per dataset, parsed once into typed, frozen models.

Errors name the file, the key path (``sources[0].variables.temp.units``), the bad value and what
is accepted. Source entries are validated by the model of the connector kind they name.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import connectors
from catalog.config import OutputConfig
from connectors.config import SourceConfig
from connectors.exceptions import ConnectorError
from expectations.config import QualityConfig
from pipelines.exceptions import RecipeError

_SPDX = re.compile(r"^(LicenseRef-[A-Za-z0-9.-]+|[A-Za-z0-9][A-Za-z0-9.+-]*)$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Owner(_Frozen):
    name: str = Field(min_length=1)
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")


class TimeCoverage(_Frozen):
    start: dt.datetime
    end: dt.datetime

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value

    @model_validator(mode="after")
    def _ordered(self):
        if self.end < self.start:
            raise ValueError(f"end {self.end.isoformat()} is before start {self.start.isoformat()}")
        return self


class Coverage(_Frozen):
    """What the dataset declares it covers; validation checks the data against it."""

    time: TimeCoverage | None = None
    #: [west, south, east, north] in degrees, longitudes in [-180, 180]
    bbox: tuple[float, float, float, float] | None = None
    depth: tuple[float, float] | None = None

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, value):
        if value is None:
            return value
        west, south, east, north = value
        if not (-90 <= south <= north <= 90 and -180 <= west <= 180 and -180 <= east <= 180):
            raise ValueError("expected [west, south, east, north] with -90<=south<=north<=90, "
                             "longitudes in [-180, 180]")
        return value


class Recipe(_Frozen):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,62}$")
    title: str = Field(min_length=1)
    description: str = ""
    #: an SPDX licence identifier (https://spdx.org/licenses/), e.g. CC-BY-4.0
    licence: str
    owner: Owner
    attribution: str | None = None
    classification: Literal["public", "internal", "confidential", "restricted"] = "public"
    coverage: Coverage = Coverage()
    sources: tuple[Any, ...] = Field(min_length=1)
    quality: QualityConfig = QualityConfig()
    output: OutputConfig = OutputConfig()
    #: warehouse folder (relative to the recipe) or None for $HAINA_WAREHOUSE / ./warehouse
    warehouse: str | None = None
    #: catalog URL; None means SQLite inside the warehouse
    catalog: str | None = None

    # Set by load(); not part of the YAML.
    path: Path | None = Field(default=None, exclude=True)
    sha256: str | None = Field(default=None, exclude=True)

    @field_validator("licence")
    @classmethod
    def _spdx(cls, value: str) -> str:
        if not _SPDX.match(value):
            raise ValueError("expected an SPDX licence identifier such as CC-BY-4.0, CC0-1.0, "
                             "ODbL-1.0 or LicenseRef-<name>")
        return value

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def source_configs(self) -> tuple[SourceConfig, ...]:
        return self.sources


def _location(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _format_errors(path: Path | str, err: ValidationError, prefix: tuple = ()) -> str:
    lines = [f"{path}: recipe is not valid ({err.error_count()} problem(s)):"]
    for item in err.errors():
        loc = _location(prefix + tuple(p for p in item["loc"] if not _is_union_tag(p)))
        value = item.get("input")
        shown = "" if item["type"] == "missing" else f" (got {value!r})"
        lines.append(f"  - {loc}: {item['msg']}{shown}")
    return "\n".join(lines)


def _is_union_tag(part) -> bool:
    return isinstance(part, str) and part.startswith("function-")


def _parse_sources(path, raw_sources) -> tuple[SourceConfig, ...]:
    if not isinstance(raw_sources, list) or not raw_sources:
        raise RecipeError(f"{path}: sources: expected a non-empty list of source entries "
                          f"(got {raw_sources!r})")
    parsed = []
    for i, raw in enumerate(raw_sources):
        if not isinstance(raw, dict):
            raise RecipeError(f"{path}: sources[{i}]: expected a mapping (got {raw!r})")
        kind = raw.get("kind")
        try:
            model = connectors.get(kind).config_model
        except ConnectorError as err:
            raise RecipeError(f"{path}: sources[{i}].kind: unknown source kind {kind!r}; "
                              f"accepted: {', '.join(connectors.kinds())}") from err
        try:
            parsed.append(model.model_validate(raw))
        except ValidationError as err:
            raise RecipeError(_format_errors(path, err, ("sources", i))) from err
    return tuple(parsed)


def parse(text: str, path: Path | str = "<recipe>") -> Recipe:
    """Parse recipe YAML text; ``path`` is used in messages and to resolve relative paths."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: expected a mapping of recipe keys at the top level "
                          f"(got {type(raw).__name__})")
    sources = _parse_sources(path, raw.get("sources"))
    try:
        recipe = Recipe.model_validate({**raw, "sources": sources})
    except ValidationError as err:
        raise RecipeError(_format_errors(path, err)) from err
    resolved = Path(path).resolve() if path != "<recipe>" else None
    return recipe.model_copy(update={
        "path": resolved,
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    })


def load(path: str | os.PathLike) -> Recipe:
    """Read and parse a recipe file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise RecipeError(f"{path}: recipe file not found. Fix: check the path, e.g. "
                          f"`haina check recipes/demo.yaml`") from err
    except (OSError, UnicodeDecodeError) as err:
        raise RecipeError(f"{path}: cannot read recipe: {err}") from err
    return parse(text, path)
