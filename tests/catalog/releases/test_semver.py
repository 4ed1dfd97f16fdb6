"""catalog.releases.semver and the bump proposal of catalog.releases.lifecycle.plan_release on real Parquet versions."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

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


@pytest.mark.parametrize("text", ["1.0", "1.0.0.0", "01.0.0", "latest", "", "a.b.c", "1.0.0-",
                                  "1.0.0-01", "1.0.0+", "1.0.0-a..b", "1.0.0\n1.0.0", "١.0.0"])
def test_parse_refuses_non_semver(text):
    with pytest.raises(sv.SemverError, match="not a semantic version"):
        sv.parse(text)
    assert not sv.is_version(text) and not sv.is_semver(text)


@pytest.mark.parametrize("text", ["1.0.0-rc1", "1.0.0-rc.1", "1.0.0+build.5", "v2.0.0-beta+exp"])
def test_a_release_refuses_pre_release_and_build_tags(text):
    """``haina release --version`` took only MAJOR.MINOR.PATCH and still does: the tag is
    named, with the plain version to use instead."""
    base = text.lstrip("v").split("-")[0].split("+")[0]
    with pytest.raises(sv.SemverError, match=rf"carries a pre-release or build tag.*release as "
                                             rf"{base}"):
        sv.parse(text)
    assert sv.is_version(text) and not sv.is_semver(text)


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


# --- SemVer 2.0.0: parsing and precedence, against the spec's own examples ---------------------
#: semver.org item 11: "1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta <
#: 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0" and "1.0.0 < 2.0.0 < 2.1.0 < 2.1.1"
SPEC_ORDER = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
              "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1"]


def test_precedence_follows_the_spec_examples():
    parsed = [sv.parse_version(t) for t in SPEC_ORDER]
    assert all(a < b and b > a and a <= b and not b <= a for a, b in zip(parsed, parsed[1:],
                                                                          strict=False))
    shuffled = parsed[1::2] + parsed[::2]
    assert sorted(shuffled) == parsed and max(shuffled) == parsed[-1]


@pytest.mark.parametrize("text, expected", [
    ("1.0.0-alpha", SemVer(1, 0, 0, ("alpha",))),
    ("1.0.0-0.3.7", SemVer(1, 0, 0, ("0", "3", "7"))),
    ("1.0.0-x.7.z.92", SemVer(1, 0, 0, ("x", "7", "z", "92"))),
    ("1.0.0-x-y-z.--", SemVer(1, 0, 0, ("x-y-z", "--"))),
    ("1.0.0-alpha+001", SemVer(1, 0, 0, ("alpha",), ("001",))),
    ("1.0.0+20130313144700", SemVer(1, 0, 0, (), ("20130313144700",))),
    ("1.0.0-beta+exp.sha.5114f85", SemVer(1, 0, 0, ("beta",), ("exp", "sha", "5114f85"))),
    ("1.0.0+21AF26D3----117B344092BD", SemVer(1, 0, 0, (), ("21AF26D3----117B344092BD",))),
])
def test_parse_version_reads_the_spec_examples(text, expected):
    got = sv.parse_version(text)
    assert got == expected and got.build == expected.build and str(got) == text


def test_build_metadata_plays_no_part_in_precedence():
    a, b = sv.parse_version("1.0.0+a"), sv.parse_version("1.0.0+b")
    assert a == b and not a < b and not b < a and hash(a) == hash(b)
    assert sv.parse_version("1.0.0-rc.1+x") < sv.parse_version("1.0.0")


_NUMBER = st.integers(min_value=0, max_value=10**6)
_ALNUM = st.from_regex(r"[0-9]*[a-zA-Z-][0-9a-zA-Z-]*", fullmatch=True).filter(lambda s: len(s) < 9)
_IDENT = st.one_of(_NUMBER.map(str), _ALNUM)
_VERSION = st.builds(
    lambda major, minor, patch, pre, build: SemVer(major, minor, patch, tuple(pre), tuple(build)),
    _NUMBER, _NUMBER, _NUMBER, st.lists(_IDENT, max_size=3),
    st.lists(st.from_regex(r"[0-9a-zA-Z-]{1,6}", fullmatch=True), max_size=2))


def _spec_compare(a: SemVer, b: SemVer) -> int:
    """semver.org item 11 written out step by step: the oracle the sort key is checked against."""
    for x, y in ((a.major, b.major), (a.minor, b.minor), (a.patch, b.patch)):
        if x != y:
            return -1 if x < y else 1
    if not a.prerelease or not b.prerelease:
        return (not a.prerelease) - (not b.prerelease)  # a release sorts after its pre-releases
    for x, y in zip(a.prerelease, b.prerelease, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1  # numeric identifiers sort before alphanumeric
        return -1 if x < y else 1  # ASCII order
    return (len(a.prerelease) > len(b.prerelease)) - (len(a.prerelease) < len(b.prerelease))


@given(_VERSION)
def test_str_and_parse_round_trip(version):
    again = sv.parse_version(str(version))
    assert again == version and again.build == version.build
    assert sv.is_version(str(version)) and sv.is_semver(str(version)) == version.is_release


@given(_VERSION, _VERSION)
def test_ordering_agrees_with_the_spec_oracle(a, b):
    expected = _spec_compare(a, b)
    assert (a < b, a == b, a > b) == (expected < 0, expected == 0, expected > 0)


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
