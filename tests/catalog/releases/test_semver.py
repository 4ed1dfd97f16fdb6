"""catalog.releases.semver and the bump proposal of catalog.releases.lifecycle.plan_release on real Parquet versions."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from catalog.releases import lifecycle as rel
from catalog.releases import semver as sv
from catalog.releases.diff import DatasetDiff, PartitionDiff, SchemaDiff
from catalog.releases.semver import Bump, SemVer
from catalog.store import open_catalog
from tests.catalog.releases.release_support import DATASET, day_table, make_version, schema


# --- parsing and ordering ----------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("1.0.0", SemVer(1, 0, 0)), ("v2.10.3", SemVer(2, 10, 3)), (" 0.1.0 ", SemVer(0, 1, 0)),
])
def test_parse(text, expected):
    assert sv.parse(text) == expected


@pytest.mark.parametrize("text", ["1.0", "1.0.0.0", "01.0.0", "1.0.0-rc1", "latest", "", "a.b.c"])
def test_parse_refuses_non_semver(text):
    with pytest.raises(sv.SemverError, match="not a semantic version"):
        sv.parse(text)


def test_ordering_is_numeric_not_lexical():
    assert sv.parse("1.10.0") > sv.parse("1.9.0")
    assert max(map(sv.parse, ["1.10.0", "1.2.0", "1.9.1"])) == SemVer(1, 10, 0)


@pytest.mark.parametrize("level, expected", [
    (Bump.PATCH, SemVer(1, 4, 3)), (Bump.MINOR, SemVer(1, 5, 0)), (Bump.MAJOR, SemVer(2, 0, 0))])
def test_bumped(level, expected):
    assert SemVer(1, 4, 2).bumped(level) == expected


@pytest.mark.parametrize("new, level", [("1.0.1", Bump.PATCH), ("1.1.0", Bump.MINOR),
                                        ("1.3.7", Bump.MINOR), ("3.0.0", Bump.MAJOR)])
def test_level_of(new, level):
    assert sv.level_of(SemVer(1, 0, 0), sv.parse(new)) == level


@pytest.mark.parametrize("new", ["1.0.0", "0.9.9"])
def test_level_of_refuses_going_back(new):
    with pytest.raises(sv.SemverError, match="does not come after the previous release 1.0.0"):
        sv.level_of(SemVer(1, 0, 0), sv.parse(new))


# --- required bump from a difference ------------------------------------------------------------
def _diff(schema=None, partitions=(), notes=()) -> DatasetDiff:
    return DatasetDiff(dataset="d", a="v1", b="v2", schema=schema or SchemaDiff(),
                       partitions=tuple(partitions),
                       files_added=(), files_removed=(), drift=(), key_columns=(),
                       patch_notes=tuple(notes))


P = "date=2025-07-02"


@pytest.mark.parametrize("diff, level, reason", [
    (_diff(), Bump.PATCH, "same records and schema"),
    (_diff(notes=("1 file(s) differ only in footer metadata",)), Bump.PATCH, "footer"),
    (_diff(partitions=[PartitionDiff(P, 0, 5, added=5, method="added")]), Bump.MINOR,
     f"5 rows were added in partition {P}"),
    (_diff(SchemaDiff(added=("split",))), Bump.MINOR, "column 'split' was added"),
    (_diff(partitions=[PartitionDiff(P, 12, 12, changed=12, method="compared")]), Bump.MAJOR,
     f"12 rows of partition {P} changed"),
    (_diff(partitions=[PartitionDiff(P, 5, 4, removed=1, method="compared")]), Bump.MAJOR,
     f"1 rows of partition {P} were removed"),
    (_diff(SchemaDiff(removed=("x",), added=("y",))), Bump.MAJOR, "column 'x' was removed"),
    (_diff(partitions=[PartitionDiff(P, 9, 9, changed=3, changed_columns={"split": 3},
                                     method="compared")]),
     Bump.MAJOR, f"split assignment of 3 rows of partition {P} changed"),
])
def test_required_bump(diff, level, reason):
    got, reasons = sv.required_bump(diff)
    assert got == level
    assert reason in reasons[0]


def test_understated_request_is_refused_with_the_reason():
    diff = _diff(partitions=[PartitionDiff(P, 20, 20, changed=12, method="compared")])
    proposal = sv.propose(SemVer(1, 0, 0), diff)
    assert proposal.version == SemVer(2, 0, 0)
    with pytest.raises(sv.BumpTooSmallError) as err:
        sv.check_requested(SemVer(1, 0, 0), SemVer(1, 0, 1), proposal)
    assert err.value.reason == (f"1.0.1 is a PATCH, but 12 rows of partition {P} changed: "
                                f"needs MAJOR (2.0.0)")
    assert err.value.required == "2.0.0"
    sv.check_requested(SemVer(1, 0, 0), SemVer(3, 0, 0), proposal)  # overstating is allowed


def test_first_release_defaults_to_1_0_0_and_may_start_elsewhere():
    assert sv.propose(None, None).version == SemVer(1, 0, 0)
    sv.check_requested(None, SemVer(0, 1, 0), sv.propose(None, None))


# --- plan_release on real files ----------------------------------------------------------------
@pytest.fixture
def cat(tmp_path):
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield catalog
    catalog.close()


def _released_first(cat, tmp_path):
    make_version(cat, tmp_path, "v1", {"date=2025-07-01": day_table(1), P: day_table(2)})
    record, plan = rel.release(cat, DATASET, "v1")
    assert (record.semver, plan.proposal.reason) == ("1.0.0", "first release")


def _edit_temperature(table: pa.Table, rows) -> pa.Table:
    values = table["sea_water_temperature"].to_numpy().copy()
    values[list(rows)] += 1.0
    return table.set_column(5, table.schema.field(5), pa.array(values, pa.float32()))


@pytest.mark.parametrize("label, partitions, level, version", [
    ("same records, new footers", {"date=2025-07-01": day_table(1), P: day_table(2)},
     Bump.PATCH, "1.0.1"),
    ("a day added", {"date=2025-07-01": day_table(1), P: day_table(2), "date=2025-07-03":
                     day_table(3)}, Bump.MINOR, "1.1.0"),
    ("rows changed", {"date=2025-07-01": day_table(1), P: _edit_temperature(day_table(2),
                                                                          range(12))},
     Bump.MAJOR, "2.0.0"),
    ("a day removed", {"date=2025-07-01": day_table(1)}, Bump.MAJOR, "2.0.0"),
    ("split column added", {p: day_table(d, sch=schema(extra=(pa.field("split", pa.string()),)))
                            for p, d in (("date=2025-07-01", 1), (P, 2))}, Bump.MINOR, "1.1.0"),
    ("retyped", {p: day_table(d, sch=schema(temp_type=pa.float64()))
                 for p, d in (("date=2025-07-01", 1), (P, 2))}, Bump.MAJOR, "2.0.0"),
])
def test_proposal_from_the_actual_difference(cat, tmp_path, label, partitions, level, version):
    _released_first(cat, tmp_path)
    make_version(cat, tmp_path, "v2", partitions)
    plan = rel.plan_release(cat, DATASET, "v2")
    assert (plan.proposal.level, str(plan.semver)) == (level, version), plan.proposal.reasons


def test_split_reassignment_needs_major(cat, tmp_path):
    sch = schema(extra=(pa.field("split", pa.string()),))
    make_version(cat, tmp_path, "v1", {P: day_table(2, sch=sch)})
    rel.release(cat, DATASET, "v1")
    moved = day_table(2, sch=sch)
    split = np.array(moved["split"].to_pylist(), dtype=object)
    split[[1, 2, 3]] = "test"  # three rows move from train to test
    index = moved.schema.get_field_index("split")
    moved = moved.set_column(index, moved.schema.field(index), pa.array(split))
    make_version(cat, tmp_path, "v2", {P: moved})
    with pytest.raises(sv.BumpTooSmallError, match=rf"1.1.0 is a MINOR, but split assignment of 3 "
                                                   rf"rows of partition {P} changed: needs MAJOR"):
        rel.plan_release(cat, DATASET, "v2", requested="1.1.0")


def test_requested_version_checked_against_the_data(cat, tmp_path):
    _released_first(cat, tmp_path)
    make_version(cat, tmp_path, "v2", {"date=2025-07-01": day_table(1),
                                       P: _edit_temperature(day_table(2), range(12))})
    with pytest.raises(sv.BumpTooSmallError) as err:
        rel.release(cat, DATASET, "v2", requested="1.0.1")
    assert str(err.value).startswith("release after 1.0.0: 1.0.1 is a PATCH, but 12 rows of "
                                     f"partition {P} changed (sea_water_temperature 12): needs "
                                     "MAJOR (2.0.0)")
    assert cat.version(DATASET, "v2").state == "draft"  # nothing recorded
    with pytest.raises(sv.SemverError, match="does not come after"):
        rel.release(cat, DATASET, "v2", requested="1.0.0")
    record, _ = rel.release(cat, DATASET, "v2", requested="2.0.0", notes="recalibrated")
    assert (record.semver, record.bump, record.previous, record.notes) == (
        "2.0.0", "MAJOR", "1.0.0", "recalibrated")
