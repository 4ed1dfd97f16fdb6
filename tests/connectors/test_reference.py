"""The key reference is generated from the config models: complete, readable, and the committed
docs/connectors.md is exactly what the code generates (so the two cannot drift)."""
from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml

import connectors
from connectors import reference
from connectors.config import SourceConfig, VariableMapping

DOCS = Path(__file__).resolve().parents[2] / "docs" / "connectors.md"


def test_committed_docs_are_what_the_models_generate():
    assert DOCS.read_text() == reference.markdown(), (
        "docs/connectors.md is stale: run `make docs` (python -m connectors.reference > "
        "docs/connectors.md) and commit it")


@pytest.mark.parametrize("kind", connectors.kinds())
def test_every_key_of_every_kind_is_listed_described_and_exemplified(kind):
    model = connectors.get(kind).config_model
    rows = reference.keys(kind)
    top = [r.name for r in rows if "." not in r.name]
    assert top == [n for n in model.model_fields if n not in model.reference_omit]
    for row in rows:
        assert row.description, f"{kind}.{row.name} has no Field(description=...)"
        assert row.example, f"{kind}.{row.name} has no example"
        assert row.example.startswith(row.name.rpartition(".")[2] + ": ")
        if "<" not in row.example:
            yaml.safe_load(row.example)  # written as a recipe line


def test_nested_keys_and_a_units_to_row():
    rows = {r.name: r for r in reference.keys("delimited")}
    assert rows["time"].default == "required" and rows["time.columns"].type == "list of string"
    units_to = rows["variables.<variable>.units_to"]
    assert units_to.type == "string or null" and units_to.default == "null"
    assert units_to.example == "units_to: S m-1"
    assert "variables" not in {r.name for r in reference.keys("ais_csv")}  # refused by AIS
    assert "columns.<column>.type" in {r.name for r in reference.keys("port_table")}


@pytest.mark.parametrize("annotation, label", [
    (str | None, "string or null"),
    (str | list[str], "string or list of string"),
    (typing.Literal["auto", "csv"], "one of auto, csv"),
    (dict[str, VariableMapping], "mapping of string to mapping (keys below)"),
    (tuple[str, ...], "list of string"),
    (typing.Annotated[int, "x"] | typing.Literal["auto"], "integer or one of auto"),
])
def test_type_labels(annotation, label):
    assert reference.type_label(annotation) == label


@pytest.mark.parametrize("value, text", [
    (None, "null"), (True, "true"), ("utf-8", "utf-8"), ("46050", '"46050"'), ("#", '"#"'),
    ("%Y-%m", '"%Y-%m"'), (["", "NaN"], '["", NaN]'), ({"a": [1, 2]}, "{a: [1, 2]}"),
])
def test_values_are_written_as_yaml_reads_them(value, text):
    assert reference._yaml(value) == text
    assert yaml.safe_load(text) == value


def test_shared_keys_come_from_source_config():
    names = [r.name for r in reference.keys("argo")]
    assert names[:4] == ["kind", *list(SourceConfig.model_fields)[1:4]]
