"""Which runs yield nothing to commit, and how the message says why (pipelines.empty_sources)."""
from __future__ import annotations

import pyarrow as pa
import pytest

from connectors.base import SourcePlan
from pipelines.empty_sources import check_not_empty
from pipelines.exceptions import EmptySourceError
from pipelines.recipe import parse

RECIPE = parse("""
name: t1
title: t
licence: CC0-1.0
owner: {name: tests}
sources: [{kind: ais_nmea, uri: '*.nmea'}]
""", "recipe.yaml")


def _plan(uri: str, size: int) -> tuple[int, SourcePlan]:
    return 0, SourcePlan(uri=uri, sha256="a" * 64, size=size, schema=pa.schema([]), columns=(),
                         chunks=())


def _counts(rows_in=0, out=0, dropped=0, reasons=None) -> dict:
    reasons = reasons or {}
    return {"rows_in": rows_in, "rows_out": out, "rows_dropped": dropped,
            "rows_quarantined": sum(reasons.values()), "quarantine_reasons": reasons}


@pytest.mark.parametrize("plans, sources, carried, message", [
    ([_plan("a", 10)], {"a": _counts(5, 0, 0, {"x": 1, "y": 3, "z": 1, "w": 2})}, 0,
     "a (10 bytes, kind ais_nmea): 5 records read, none kept: 7 quarantined (y 3, w 2, x 1)"),
    ([_plan("a", 10)], {"a": _counts(4, 0, 4)}, 0, "4 dropped as fill/missing values"),
    ([_plan("a", 10)], {"a": _counts()}, 0, "a (10 bytes, kind ais_nmea) holds no records"),
    ([_plan("a", 0)], {"a": _counts()}, 0, "a (0 bytes, kind ais_nmea) is empty"),
    # a good file does not excuse a file with bytes that yields nothing
    ([_plan("a", 10), _plan("b", 10)], {"a": _counts(1, 1), "b": _counts(2, 0, 2)}, 0,
     "no rows to commit: b (10 bytes"),
    ([], {}, 0, "no rows to commit: no source file is left to read"),
])
def test_nothing_to_commit_fails_naming_why(plans, sources, carried, message):
    with pytest.raises(EmptySourceError, match="allow_empty: true") as raised:
        check_not_empty(RECIPE, plans, sources, carried)
    assert message in str(raised.value)


@pytest.mark.parametrize("plans, sources, carried", [
    ([_plan("a", 10)], {"a": _counts(1, 1)}, 0),
    ([_plan("a", 0)], {"a": _counts()}, 5),  # an empty new file beside carried rows
    ([], {}, 5),
])
def test_rows_to_commit_pass(plans, sources, carried):
    check_not_empty(RECIPE, plans, sources, carried)
