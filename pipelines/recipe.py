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
from expectations.quality_config import QualityConfig
from pipelines.exceptions import RecipeError
from pipelines.incremental import IncrementalConfig
from pipelines.splits import SplitConfig

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
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value

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
    incremental: IncrementalConfig = IncrementalConfig()
    #: commit a version even when sources with bytes yield no rows (else the run fails, exit 2)
    allow_empty: bool = False
    #: files whose columns differ from the rest (or from the last version): fail, or widen
    schema_drift: Literal["fail", "widen"] = "fail"
    #: leakage-free train/validation/test assignment (pipelines.splits); None: no split column
    splits: SplitConfig | None = None
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


def _format_errors(path: Path | str, err: ValidationError, prefix: tuple = (),
                   model: type[BaseModel] | None = None) -> str:
    """One line per bad key: where, what was wrong, the value given, and what is accepted.

    pydantic reports each branch of a union (``int | Literal["auto"]``) as its own error with a
    branch tag in the location; those are folded into one line per key. A single problem is
    one line (``FILE: recipe is not valid: KEY: ...``); several are a list under a header line.
    """
    lines: dict[str, list[str]] = {}
    values: dict[str, object] = {}
    for item in err.errors():
        loc = tuple(p for p in item["loc"] if not _is_union_tag(p))
        where = _location(prefix + loc)
        # "Value error, " is pydantic's prefix for a validator's own message: noise here
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden" and model is not None:
            accepted = _accepted_keys(model, loc[:-1])
            if accepted:
                message = f"unknown key; accepted keys here: {', '.join(accepted)}"
        if message not in lines.setdefault(where, []):
            lines[where].append(message)
        if item["type"] != "missing":
            values[where] = item.get("input")
    problems = [f"{where}: {' or '.join(messages)}"
                + (f" (got {values[where]!r})" if where in values else "")
                for where, messages in lines.items()]
    if len(problems) == 1:
        return f"{path}: recipe is not valid: {problems[0]}"
    return "\n  - ".join([f"{path}: recipe is not valid ({len(problems)} problems):", *problems])


def _is_union_tag(part) -> bool:
    # branch tags look like "constrained-int", "literal['auto']", "function-after[...]", "int"
    return isinstance(part, str) and (not part.isidentifier() or part in _TYPE_TAGS)


_TYPE_TAGS = {"int", "str", "float", "bool", "list", "dict", "tuple", "none", "is-instance"}


def _accepted_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys a model accepts at ``loc`` (field names, list indexes and mapping keys)."""
    annotation: object = model
    for part in loc:
        current = _model_of(annotation)
        if current is not None and isinstance(part, str) and part in current.model_fields:
            annotation = current.model_fields[part].annotation
        elif _is_container(annotation):
            annotation = _value_type(annotation)  # a list index or a mapping key
        else:
            return []
    current = _model_of(annotation)
    if current is None:
        return []
    return sorted(n for n, f in current.model_fields.items() if not f.exclude)


def _is_container(annotation) -> bool:
    return getattr(annotation, "__origin__", None) in (dict, list, tuple)


def _value_type(annotation):
    args = getattr(annotation, "__args__", ())
    return args[-1] if args else None


def _model_of(annotation):
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if _is_container(annotation):
        return None
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _parse_sources(path, raw_sources) -> tuple[SourceConfig, ...]:
    if not isinstance(raw_sources, list) or not raw_sources:
        raise RecipeError(f"{path}: sources: expected a non-empty list of source entries "
                          f"(got {raw_sources!r})")
    parsed = []
    for i, raw in enumerate(raw_sources):
        if not isinstance(raw, dict):
            raise RecipeError(f"{path}: sources[{i}]: expected a mapping (got {raw!r})")
        kind = raw.get("kind")
        if not isinstance(kind, str):
            given = f"got {kind!r}" if "kind" in raw else "missing"
            raise RecipeError(f"{path}: sources[{i}].kind: expected the name of one source kind "
                              f"({given}); accepted: {', '.join(connectors.kinds())}")
        try:
            model = connectors.get(kind).config_model
        except ConnectorError as err:
            raise RecipeError(f"{path}: sources[{i}].kind: unknown source kind {kind!r}; "
                              f"accepted: {', '.join(connectors.kinds())}") from err
        if not issubclass(model, SourceConfig):
            raise RecipeError(f"{path}: sources[{i}].kind: the {kind!r} connector declares "
                              f"config_model {model!r}, not a SourceConfig subclass. Fix: the "
                              f"connector's config_model must derive from "
                              f"connectors.config.SourceConfig")
        try:
            parsed.append(model.model_validate(raw))
        except ValidationError as err:
            raise RecipeError(_format_errors(path, err, ("sources", i), model)) from err
    return tuple(parsed)


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A YAML mapping names the same key twice (PyYAML would silently keep the last one)."""

    def __init__(self, key: object, first: yaml.Mark, again: yaml.Mark) -> None:
        super().__init__(problem=f"key {key!r} appears twice in one mapping", problem_mark=again)
        self.key, self.first, self.again = key, first, again


class _RecipeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping.

    Merge keys (``<<: *defaults``) may still be overridden: only keys written out in the
    mapping itself are compared.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:
                    continue  # an unhashable key: the base constructor reports it
                if first is not key_node.start_mark:
                    raise DuplicateKeyError(key, first, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _yaml_error(path: Path | str, err: yaml.YAMLError) -> str:
    """One line: file, line and column, and what is wrong there."""
    if isinstance(err, DuplicateKeyError):
        return (f"{path}: line {err.again.line + 1}, column {err.again.column + 1}: key "
                f"{err.key!r} is given twice in the same mapping (first at line "
                f"{err.first.line + 1}, column {err.first.column + 1}). Fix: keep one of them")
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = " ".join(str(getattr(err, "problem", None) or err).split())
    context = getattr(err, "context", None)
    return f"{path}: {where}not valid YAML: {problem}" + (f" ({context})" if context else "")


def parse(text: str, path: Path | str = "<recipe>") -> Recipe:
    """Parse recipe YAML text; ``path`` is used in messages and to resolve relative paths."""
    try:
        raw = yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise RecipeError(_yaml_error(path, err)) from err
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: expected a mapping of recipe keys at the top level "
                          f"(got {type(raw).__name__})")
    sources = _parse_sources(path, raw.get("sources"))
    try:
        recipe = Recipe.model_validate({**raw, "sources": sources})
    except ValidationError as err:
        raise RecipeError(_format_errors(path, err, model=Recipe)) from err
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
