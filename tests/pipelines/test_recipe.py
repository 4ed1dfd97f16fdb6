"""Recipe parsing: typed models, and errors that name the file, key path, bad value and fix."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pydantic
import pytest

from pipelines import recipe as recipe_mod
from pipelines.exceptions import RecipeError

GOOD = textwrap.dedent("""
    name: yellow-sea
    title: Yellow Sea grid
    licence: CC-BY-4.0
    owner: {name: Ocean team, email: team@example.org}
    coverage:
      time: {start: 2025-07-01, end: 2025-07-31}
      bbox: [119.5, 35.0, 121.7, 36.7]
    sources:
      - kind: netcdf_grid
        uri: data/*.nc
        variables: {temp: sea_water_temperature, salt: {units: PSU}}
        chunk_dim: time
        chunk_size: 2
    quality: {max_failing_fraction: 0.01}
    output: {target_file_mb: 32}
""")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_good_recipe_is_typed_and_frozen(tmp_path):
    recipe = recipe_mod.load(write(tmp_path, GOOD))
    source = recipe.sources[0]
    assert recipe.name == "yellow-sea"
    assert recipe.path == (tmp_path / "recipe.yaml").resolve()
    assert len(recipe.sha256) == 64
    assert source.kind == "netcdf_grid" and source.chunk_size == 2
    assert source.variables["temp"].name == "sea_water_temperature"
    assert source.variables["salt"].units == "PSU"
    assert recipe.coverage.time.start.tzinfo is not None
    assert recipe.quality.max_failing_fraction == 0.01
    assert recipe.output.target_file_mb == 32 and recipe.output.compression == "zstd"
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        recipe.name = "other"


@pytest.mark.parametrize("old, new, expected", [
    ("chunk_size: 2", "chunk_size: many", ["sources[0].chunk_size", "'many'"]),
    ("chunk_size: 2", "chunk_size: 2\n    colour: blue", ["sources[0].colour", "unknown key", "chunk_dim"]),
    ("licence: CC-BY-4.0", "licence: 'free for all'", ["licence", "SPDX", "'free for all'"]),
    ("name: yellow-sea", "name: Yellow Sea", ["name", "'Yellow Sea'"]),
    ("kind: netcdf_grid", "kind: hdf9", ["sources[0].kind", "'hdf9'", "netcdf_grid"]),
    ("max_failing_fraction: 0.01", "max_failing_fraction: 2", ["quality.max_failing_fraction", "2"]),
    ("target_file_mb: 32", "target_file_mb: 0", ["output.target_file_mb", "greater than 0"]),
    ("bbox: [119.5, 35.0, 121.7, 36.7]", "bbox: [119.5, 95.0, 121.7, 36.7]", ["coverage.bbox"]),
    ("end: 2025-07-31", "end: 2025-06-30", ["coverage.time", "before start"]),
    ("salt: {units: PSU}", "salt: {dtype: int8}", ["sources[0].variables.salt.dtype", "'int8'", "float32"]),
])
def test_errors_name_file_key_path_and_value(tmp_path, old, new, expected):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(RecipeError) as info:
        recipe_mod.load(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_missing_key_is_named(tmp_path):
    path = write(tmp_path, GOOD.replace("title: Yellow Sea grid\n", ""))
    with pytest.raises(RecipeError, match=r"title: Field required"):
        recipe_mod.load(path)


@pytest.mark.parametrize("text, fragment", [
    ("name: [unclosed", "not valid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
    (GOOD.replace("sources:", "sources_: "), "sources: expected a non-empty list"),
])
def test_not_a_recipe(tmp_path, text, fragment):
    with pytest.raises(RecipeError, match=fragment):
        recipe_mod.load(write(tmp_path, text))


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found. Fix"):
        recipe_mod.load(tmp_path / "nope.yaml")


def test_shipped_recipes_parse():
    root = Path(__file__).resolve().parents[2]
    paths = [root / "recipes" / "demo.yaml", *sorted((root / "tests" / "recipes").glob("*.yaml")),
             *sorted((root / "examples" / "recipes").glob("*.yaml"))]
    assert len(paths) >= 5
    for path in paths:
        assert recipe_mod.load(path).name


def test_duplicate_key_is_refused_with_both_lines(tmp_path):
    path = write(tmp_path, GOOD.replace("    chunk_size: 2\n", "    chunk_size: 2\n    chunk_size: 4\n"))
    with pytest.raises(RecipeError, match=r"line 15, column 5: key 'chunk_size' is given twice "
                                          r"in the same mapping \(first at line 14, column 5\)"):
        recipe_mod.load(path)


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    """Only keys written twice are refused: ``<<: *anchor`` followed by an override is fine."""
    text = GOOD.replace("owner: {name: Ocean team, email: team@example.org}",
                        "owner:\n  <<: {name: Defaults, email: team@example.org}\n"
                        "  name: Ocean team")
    owner = recipe_mod.load(write(tmp_path, text)).owner
    assert (owner.name, owner.email) == ("Ocean team", "team@example.org")


@pytest.mark.parametrize("output, level", [
    ("{compression: snappy}", 3), ("{compression: none}", 3),
    ("{compression: gzip, compression_level: 9}", 9), ("{compression: zstd, compression_level: 22}", 22),
    ("{compression: snappy, compression_level: null}", None),
])
def test_codec_levels_inside_the_range_load(tmp_path, output, level):
    """The default level (3) is not "given", so codecs without levels take it silently."""
    path = write(tmp_path, GOOD.replace("output: {target_file_mb: 32}", f"output: {output}"))
    assert recipe_mod.load(path).output.compression_level == level


def test_one_problem_is_one_line(tmp_path):
    path = write(tmp_path, GOOD.replace("chunk_size: 2", "chunk_size: many"))
    with pytest.raises(RecipeError) as info:
        recipe_mod.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: recipe is not valid: sources[0].chunk_size: ")
    assert message.endswith("(got 'many')")
