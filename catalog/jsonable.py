"""Values as strict JSON (RFC 8259): one conversion for every document and record Haina writes.

Results, stats and records reach JSON from several libraries at once: GE echoes NaN values, QC
stats are numpy arrays and scalars, records hold datetimes. ``json.dumps`` rejects some of these
and writes others as invalid JSON (``NaN``), so everything goes through :func:`jsonable` first.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Literal


def jsonable(value: Any, *, non_finite: Literal["null", "text"] = "null") -> Any:
    """``value`` with every part JSON can hold as itself, and the rest converted.

    numpy arrays and scalars become lists and Python numbers; mappings become dicts with string
    keys; tuples become lists; dates and datetimes ISO 8601 strings; NaN and infinities ``null``,
    or their text ("nan", "inf", "-inf") with ``non_finite="text"`` where a reader must tell
    them apart; anything else its ``str``.
    """
    if hasattr(value, "tolist"):  # numpy arrays and scalars (pandas' too)
        value = value.tolist()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, non_finite=non_finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, non_finite=non_finite) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if non_finite == "null" else str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
