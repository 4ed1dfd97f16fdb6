"""The reference of every source kind's recipe keys, generated from the connectors' config models.

Each row is read from the pydantic model a kind registers (:attr:`Connector.config_model`): the
key, its type annotation rendered for people, its default, its ``Field(description=...)`` and an
example (``Field(examples=[...])``, else one derived from the type). Nested models (``time:``,
``variables:``, ``columns:``) add dotted rows. ``haina kinds [KIND]`` prints these rows and
``docs/connectors.md`` is this module's Markdown, so neither can drift from the code:

    python -m connectors.reference > docs/connectors.md      (or: make docs)
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import types
import typing

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

import connectors

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean",
            type(None): "null"}


@dataclasses.dataclass(frozen=True)
class Key:
    """One recipe key of a kind: ``name`` is dotted for keys of nested mappings."""

    name: str
    type: str
    default: str
    description: str
    example: str


def summary(kind: str) -> str:
    """One line saying what a kind reads: the first line of its connector's docstring."""
    doc = inspect.getdoc(type(connectors.get(kind))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def keys(kind: str) -> list[Key]:
    """Every recipe key of ``kind``, in the model's order, nested keys after their parent."""
    model = connectors.get(kind).config_model
    rows = [Key("kind", "string", "required", "selects this connector", f"kind: {kind}")]
    omit = {"kind", *model.reference_omit}
    return rows + [row for name, field in model.model_fields.items() if name not in omit
                   for row in _rows(name, field)]


def _rows(name: str, field: FieldInfo) -> list[Key]:
    row = Key(name, type_label(field.annotation), _default(field), field.description or "",
              _example(name.rpartition(".")[2], field))
    nested, path = _nested(field.annotation, name)
    if nested is None:
        return [row]
    return [row, *(r for sub, f in nested.model_fields.items() for r in _rows(f"{path}.{sub}", f))]


def _nested(annotation, name: str) -> tuple[type[BaseModel] | None, str]:
    """The model nested in a key (``time: TimeSpec``, ``dict[str, VariableMapping]``), if any."""
    for arg in _options(annotation):
        if _is_model(arg):
            return arg, name
        if typing.get_origin(arg) is dict and _is_model(typing.get_args(arg)[1]):
            return typing.get_args(arg)[1], f"{name}.<{_singular(name)}>"
    return None, name


def _singular(name: str) -> str:
    return {"variables": "variable", "columns": "column"}.get(name, "key")


def _is_model(arg) -> bool:
    return isinstance(arg, type) and issubclass(arg, BaseModel)


def _options(annotation) -> tuple:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def type_label(annotation) -> str:
    """``str | list[str]`` -> ``string or list of string``; Literals list their values."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_label(a) for a in args)
    if origin is typing.Annotated:
        return type_label(args[0])
    if origin is typing.Literal:
        return "one of " + ", ".join(_yaml(a) for a in args)
    if origin in (list, tuple):
        return f"list of {type_label(args[0])}"
    if origin is dict:
        return f"mapping of {type_label(args[0])} to {type_label(args[1])}"
    if _is_model(annotation):
        return "mapping (keys below)"
    return _SCALARS.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return _yaml(field.get_default(call_default_factory=True))
    if field.default is PydanticUndefined:
        return "required"
    return _yaml(field.default)


def _example(name: str, field: FieldInfo) -> str:
    if field.examples:
        return f"{name}: {_yaml(field.examples[0])}"
    options = [a for a in _options(field.annotation) if a is not type(None)]
    literal = next((a for a in options if typing.get_origin(a) is typing.Literal), None)
    if literal is not None:
        values = [v for v in typing.get_args(literal) if v != field.default]
        return f"{name}: {_yaml(values[0] if values else field.default)}"
    if options == [bool]:
        return f"{name}: {_yaml(not field.default)}"
    return ""


def _yaml(value) -> str:
    """A value as it is written in a recipe (YAML flow style)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if _plain(value) else json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _plain(text: str) -> bool:
    """Whether YAML reads ``text`` unquoted, in a flow list or mapping too, as this string."""
    if not text or any(c in text for c in ",[]{}#") or text.strip() != text:
        return False
    try:
        return yaml.safe_load(text) == text
    except yaml.YAMLError:
        return False


# --------------------------------------------------------------------------------- Markdown


def _cell(text: str, code: bool = False) -> str:
    text = text.replace("|", "\\|")
    return f"`{text}`" if code and text else text


def markdown() -> str:
    """docs/connectors.md: a section per kind with a table of every key."""
    lines = ["<!-- Generated by `python -m connectors.reference > docs/connectors.md` (make docs)",
             "     from the connectors' config models; do not edit by hand. -->",
             "# Connector keys", "",
             "Every key a recipe's `sources[]` entry accepts, per `kind`. `haina kinds` lists the "
             "kinds and `haina kinds KIND` prints the same table in the terminal.", ""]
    lines += [f"- [`{kind}`](#{kind.replace('_', '_')}): {summary(kind)}"
              for kind in connectors.kinds()]
    for kind in connectors.kinds():
        lines += ["", f"## {kind}", "", summary(kind), "",
                  "| key | type | default | description | example |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {_cell(k.name, True)} | {_cell(k.type)} | {_cell(k.default, True)} | "
                  f"{_cell(k.description)} | {_cell(k.example, True)} |" for k in keys(kind)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
