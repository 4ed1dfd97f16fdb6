"""Incremental, idempotent runs: only new and changed sources are read; the rest is carried."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import netCDF4
import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pytest
from examples.qingdao_demo import generate

from catalog import store
from catalog.storage.manifest import (
    DatasetSection,
    FileEntry,
    Manifest,
    RunSection,
    SourceEntry,
    VersionSection,
)
from catalog.storage.verify import verify_folder, verify_version
from pipelines import incremental
from pipelines import recipe as recipe_mod
from pipelines.driver import Runner
from pipelines.exceptions import RunError
from pipelines.incremental import IncrementalConfig, Source
from tests.pipelines.conftest import demo_recipe

SHA = {name: name[0] * 64 for name in ("a", "b", "c", "d")}


def _previous(sources: dict[str, str], recipe_sha="r") -> Manifest:
    return Manifest(
        dataset=DatasetSection("d"), version=VersionSection("v1"),
        run=RunSection(recipe_sha256=recipe_sha),
        sources=tuple(SourceEntry(u, s, 1, "k") for u, s in sources.items()),
        files=tuple(FileEntry(f"data/{u}.parquet", source_sha256=s, partition="p")
                    for u, s in sources.items()))


@pytest.mark.parametrize("now, previous, recipe_sha, expect", [
    ({"x": "a"}, None, "r", {"process": ["x"], "full": "no previous version"}),
    ({"x": "a", "y": "b"}, {"x": "a", "y": "b"}, "r",
     {"process": [], "unchanged": ["x", "y"], "reuse": ["x", "y"], "nothing": True}),
    ({"x": "a", "y": "c"}, {"x": "a", "y": "b"}, "r",
     {"process": ["y"], "changed": ["y"], "unchanged": ["x"], "reuse": ["x"]}),
    ({"x": "a", "z": "d"}, {"x": "a"}, "r",
     {"process": ["z"], "new": ["z"], "unchanged": ["x"], "reuse": ["x"]}),
    ({"x": "a"}, {"x": "a", "y": "b"}, "r",
     {"process": [], "removed": ["y"], "unchanged": ["x"], "reuse": ["x", "y"], "nothing": True}),
    ({"x": "a"}, {"x": "a"}, "changed", {"process": ["x"], "full": "the recipe changed since v1"}),
])
def test_delta(now, previous, recipe_sha, expect):
    sources = [Source(0, uri, SHA[sha], 1) for uri, sha in now.items()]
    prev = _previous({u: SHA[s] for u, s in previous.items()}) if previous else None
    d = incremental.delta(sources, prev, recipe_sha, IncrementalConfig())
    assert [s.uri for s in d.process] == expect["process"]
    assert d.full_reason == expect.get("full")
    for key in ("new", "changed", "unchanged", "removed"):
        assert list(getattr(d, key)) == expect.get(key, [])
    assert sorted(f.path for f in d.reuse) == [f"data/{u}.parquet" for u in expect.get("reuse", [])]
    assert d.nothing_to_do == expect.get("nothing", False)


def test_delta_drops_removed_sources_when_asked():
    prev = _previous({"x": SHA["a"], "y": SHA["b"]})
    d = incremental.delta([Source(0, "x", SHA["a"], 1)], prev, "r",
                          IncrementalConfig(removed_sources="drop"))
    assert [f.path for f in d.reuse] == ["data/x.parquet"]
    assert not d.nothing_to_do  # dropping y's rows makes a new version


@pytest.mark.parametrize("process, carried, unique, copies", [
    ({"x": "a", "y": "b"}, {}, ["x", "y"], []),
    ({"x": "a", "y": "a", "z": "a"}, {}, ["x"], [("y", "x"), ("z", "x")]),
    ({"y": "a", "z": "b"}, {"x": "a"}, ["z"], [("y", "x")]),
])
def test_same_content_is_ingested_once(process, carried, unique, copies):
    sources = [Source(0, uri, SHA[sha], 1) for uri, sha in process.items()]
    kept, left_out = incremental.same_content(
        sources, [SourceEntry(u, SHA[s]) for u, s in carried.items()])
    assert [s.uri for s in kept] == unique
    assert [(s.uri, original) for s, original in left_out] == copies


def test_two_entries_on_one_file_are_two_sources_not_copies():
    """A staggered grid: entries 0 and 1 read one file. Both are read, both are compared with
    the previous version by (entry, file); a second file with the same bytes in entry 1 is a copy
    of entry 1's file only."""
    sources = [Source(0, "roms.nc", SHA["a"], 1), Source(1, "roms.nc", SHA["a"], 1),
               Source(1, "roms_copy.nc", SHA["a"], 1)]
    kept, left_out = incremental.same_content(sources, [])
    assert [(s.index, s.uri) for s in kept] == [(0, "roms.nc"), (1, "roms.nc")]
    assert [(s.key, original) for s, original in left_out] == [("roms_copy.nc#1", "roms.nc")]

    prev = _previous({"roms.nc": SHA["a"]})
    prev = dataclasses.replace(prev, sources=prev.sources + (
        dataclasses.replace(prev.sources[0], source_index=1),))
    d = incremental.delta(sources[:2], prev, "r", IncrementalConfig())
    assert (d.unchanged, d.new, d.nothing_to_do) == (("roms.nc", "roms.nc#1"), (), True)
    d = incremental.delta(sources[:2], _previous({"roms.nc": SHA["a"]}), "r",
                          IncrementalConfig())
    assert [s.key for s in d.process] == ["roms.nc#1"] and d.new == ("roms.nc#1",)


def _run(recipe: Path, **kwargs):
    return Runner(recipe_mod.load(recipe), **kwargs).run()


def _rows_by_source(version) -> dict[str, int]:
    files = [f"{version.path}/{f.path}" for f in store.open_catalog(
        f"sqlite:///{Path(version.path).parents[3]}/catalog.db").files(version.version_id)
        if f.partition != "quarantine"]
    table = pads.dataset(files, format="parquet").to_table(columns=["source_file"])
    counts = table.column("source_file").value_counts()
    return {Path(c["values"].as_py()).name: c["counts"].as_py() for c in counts}


@pytest.mark.slow
def test_add_change_and_rerun(tmp_path, tmp_warehouse):
    sources = tmp_path / "sources"
    generate(sources, days=2)
    recipe = demo_recipe(tmp_path)
    catalog = store.open_catalog(f"sqlite:///{tmp_warehouse}/catalog.db")

    first = _run(recipe)
    v1 = catalog.version("demo-test", first.version_id)

    again = _run(recipe)  # nothing new
    assert again.status == "no_change" and "nothing new" in again.message
    assert [v.version_id for v in catalog.versions("demo-test")] == [first.version_id]
    assert catalog.run(again.run_id).status == "no_change"

    generate(tmp_path / "more", days=3)  # same first two days, plus day three
    os.replace(tmp_path / "more" / "qingdao_coastal_20250703.nc",
               sources / "qingdao_coastal_20250703.nc")
    second = _run(recipe)
    v2 = catalog.version("demo-test", second.version_id)
    assert second.counts["source_files"] == 1, "only the new file was read"
    old_files = {f.path: f for f in catalog.files(v1.version_id)}
    new_files = {f.path: f for f in catalog.files(v2.version_id)}
    assert set(old_files) < set(new_files)
    for path, f in old_files.items():  # carried by reference: the same bytes, the same inode
        assert new_files[path].sha256 == f.sha256
        assert os.stat(f"{v1.path}/{path}").st_ino == os.stat(f"{v2.path}/{path}").st_ino
    report = verify_version(catalog, "demo-test", v2.version_id)  # carried files trace back
    assert report.ok, [m.text for m in report.mismatches]
    assert verify_folder(v2.path).ok, "the version folder alone verifies: links are real files"
    per_source = _rows_by_source(v2)
    assert per_source == {**_rows_by_source(v1), "qingdao_coastal_20250703.nc": per_source[
        "qingdao_coastal_20250703.nc"]}

    changed = sources / "qingdao_coastal_20250702.nc"
    with netCDF4.Dataset(changed, "a") as nc:  # blank out one time step of day two
        for name in ("thetao", "so", "uo", "vo"):
            nc[name][1] = np.ma.masked_all(nc[name].shape[1:])
    third = _run(recipe)
    v3 = catalog.version("demo-test", third.version_id)
    assert third.counts["source_files"] == 1
    before, after = _rows_by_source(v2), _rows_by_source(v3)
    day2 = "qingdao_coastal_20250702.nc"
    assert after[day2] == before[day2] * 3 // 4, "day two's rows were replaced, not added"
    assert {k: v for k, v in after.items() if k != day2} == \
        {k: v for k, v in before.items() if k != day2}
    assert v3.rows == sum(after.values())

    # idempotent: processing everything again gives files with the same rows and encoding
    fourth = _run(recipe, full=True)
    v4 = catalog.version("demo-test", fourth.version_id)
    content = lambda v: sorted(f.content_sha256 for f in catalog.files(v.version_id))  # noqa: E731
    assert content(v4) == content(v3)


@pytest.mark.slow
def test_schema_drift_fails_or_widens(tmp_path, tmp_warehouse):
    generate(tmp_path / "sources", days=2)
    with netCDF4.Dataset(tmp_path / "sources" / "qingdao_coastal_20250702.nc", "a") as nc:
        extra = nc.createVariable("zos", "f4", ("time", "depth", "latitude", "longitude"))
        extra.setncatts({"standard_name": "sea_surface_height_above_geoid", "units": "m"})
        extra[:] = 0.25
    recipe = demo_recipe(tmp_path)
    with pytest.raises(RunError, match=r"schema drift in sources\[0\].*new column "
                                       r"'sea_surface_height_above_geoid'.*schema_drift: widen"):
        _run(recipe)
    widened = demo_recipe(tmp_path, name="demo-widen",
                          extra="schema_drift: widen")
    outcome = _run(widened)
    version = store.open_catalog(f"sqlite:///{tmp_warehouse}/catalog.db").version(
        "demo-widen", outcome.version_id)
    table = pads.dataset(f"{version.path}/data", format="parquet").to_table()
    ssh = table.column("sea_surface_height_above_geoid")
    assert ssh.null_count > 0 and pc.max(ssh).as_py() == pytest.approx(0.25)
