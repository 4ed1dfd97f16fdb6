"""catalog.storage.uri: one join, one relative_to, one test of "remote", for every kind of path."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.storage import uri


@pytest.mark.parametrize("location, scheme, remote", [
    ("/data/w", None, False),
    ("relative/x.nc", None, False),
    ("file:///data/w", "file", False),
    ("FILE:///data/w", "file", False),
    ("gs://bucket/w", "gs", True),
    ("s3://bucket/w/", "s3", True),
    ("hdfs://host:8020/w", "hdfs", True),
    ("az+fs://x/y", "az+fs", True),
    ("data/a://b", None, False),  # "://" after a slash is not a scheme
    ("", None, False),
])
def test_scheme_and_is_remote(location, scheme, remote):
    assert uri.scheme(location) == scheme
    assert uri.is_remote(location) is remote
    assert uri.is_local(location) is not remote


@pytest.mark.parametrize("base, parts, expected", [
    ("/w", ("datasets", "sst"), "/w/datasets/sst"),
    ("/w/", ("datasets",), "/w/datasets"),
    ("/w//", ("a/b",), "/w/a/b"),
    ("/", ("a",), "/a"),
    ("rel", ("a", "b"), "rel/a/b"),
    ("", ("a", "b"), "a/b"),
    ("/w", ("a//b/./c/",), "/w/a/b/c"),
    ("/w", (), "/w"),
    ("/w/", ("", "."), "/w"),
    ("file:///w", ("x.parquet",), "file:///w/x.parquet"),
    ("file:///", ("w",), "file:///w"),
    ("gs://bucket/w", ("datasets", "sst/versions"), "gs://bucket/w/datasets/sst/versions"),
    ("gs://bucket/w/", ("manifest.json",), "gs://bucket/w/manifest.json"),
    ("gs://bucket", ("x",), "gs://bucket/x"),
    ("s3://bucket/a b", ("date=2024-01-01", "part-0.parquet"),
     "s3://bucket/a b/date=2024-01-01/part-0.parquet"),
])
def test_join(base, parts, expected):
    assert uri.join(base, *parts) == expected


@pytest.mark.parametrize("part, message", [
    ("/etc/passwd", "is not a relative path"),
    ("gs://other/x", "is not a relative path"),
    ("../x", "climbs out of its root"),
    ("a/../../x", "climbs out of its root"),
    ("a/..", "climbs out of its root"),
])
def test_join_refuses_a_part_that_leaves_the_base(part, message):
    """The one decision: os.path.join would have dropped the base for '/etc/passwd', a string
    concatenation kept '..'; both name a file outside the version folder."""
    with pytest.raises(uri.UnsafePathError, match=message):
        uri.join("/w", part)


@pytest.mark.parametrize("root, location, expected", [
    ("/w", "/w/data/x.parquet", "data/x.parquet"),
    ("/w/", "/w/data//x.parquet", "data/x.parquet"),
    ("/w", "/w", ""),
    ("/w", "/w/", ""),
    ("rel", "rel/a", "a"),
    ("file:///w", "file:///w/a/b", "a/b"),
    ("gs://bucket/w", "gs://bucket/w/a", "a"),
    ("gs://bucket/w/", "gs://bucket/w/a/b/", "a/b"),
    ("gs://bucket", "gs://bucket/a", "a"),
])
def test_relative_to(root, location, expected):
    assert uri.relative_to(root, location) == expected


@pytest.mark.parametrize("root, location", [
    ("/w", "/other/x"),
    ("/w", "/wx/y"),  # a prefix of the name is not a parent folder
    ("/w", "w/x"),  # relative vs absolute
    ("gs://bucket/w", "gs://other/w/x"),
    ("gs://bucket/w", "s3://bucket/w/x"),
    ("gs://bucket/w", "/bucket/w/x"),
    ("/w", "/w/../etc"),
])
def test_relative_to_refuses_a_location_outside_the_root(root, location):
    with pytest.raises(uri.UnsafePathError):
        uri.relative_to(root, location)


@pytest.mark.parametrize("location, expected", [
    ("/data/x.nc", "/data/x.nc"),
    ("relative/x.nc", "relative/x.nc"),
    ("file:///data/x.nc", "/data/x.nc"),
    ("file://localhost/data/x.nc", "/data/x.nc"),
    ("file:///data/a%20b.nc", "/data/a b.nc"),
])
def test_local_path(location, expected):
    assert uri.local_path(location) == expected


@pytest.mark.parametrize("location", ["gs://bucket/x", "s3://b/x", "file://otherhost/x"])
def test_a_remote_uri_has_no_local_path(location):
    with pytest.raises(uri.UnsafePathError, match="is not a local path"):
        uri.local_path(location)


# --- properties ------------------------------------------------------------------------------
_SEGMENT = st.text(st.characters(codec="ascii", exclude_characters="/\x00"), min_size=1,
                   max_size=8).filter(lambda s: s not in (".", ".."))
_REL = st.lists(_SEGMENT, min_size=0, max_size=5).map("/".join)
_ROOT = st.sampled_from(["/w", "/w/", "/", "rel/dir", "file:///w", "gs://bucket",
                         "gs://bucket/w/", "s3://b/deep/w"])


@given(_ROOT, _REL)
def test_join_then_relative_to_round_trips(root, rel):
    joined = uri.join(root, rel)
    assert uri.relative_to(root, joined) == rel
    assert uri.scheme(joined) == uri.scheme(root)


@given(_ROOT, st.lists(_REL, max_size=4))
def test_join_of_parts_is_join_of_their_posix_concatenation(root, parts):
    assert uri.join(root, *parts) == uri.join(root, "/".join(p for p in parts if p))


@given(_ROOT, _REL, _REL)
def test_a_copied_tree_still_means_itself(root, rel, under):
    """A path stored relative to its root names the same file under any other root."""
    stored = uri.relative_to(root, uri.join(root, under, rel))
    assert uri.join("/copy", stored) == uri.join(uri.join("/copy", under), rel)
