"""The SVG plots of the validation report: binning arithmetic against a brute-force oracle, and
the drawn geometry (bar heights, threshold positions) against numbers computed here."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.documents import report_plots as plots
from catalog.documents import svg


def _rects(svg: str) -> list[dict]:
    return [dict(re.findall(r"(\w+)='([^']*)'", m)) for m in re.findall(r"<rect ([^>]*)>", svg)]


@pytest.mark.parametrize("low, high, expected", [
    (0, 10, [0, 2, 4, 6, 8, 10]),
    (5, 25, [5, 10, 15, 20, 25]),
    (-2.5, 40, [0, 10, 20, 30, 40]),
    (30, 38, [30, 32, 34, 36, 38]),
    (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (3, 3, [3]),  # empty range: a single tick, no division by zero
])
def test_nice_ticks(low, high, expected):
    assert svg.nice_ticks(low, high, 5).tolist() == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(offsets=st.lists(st.integers(0, 3000), min_size=1, max_size=60, unique=True),
       max_bars=st.integers(1, 200))
def test_bin_days_matches_a_per_day_oracle(offsets, max_bars):
    days = np.datetime64("2007-01-01") + np.array(sorted(offsets))
    counts = np.arange(days.size * 5, dtype=np.int64).reshape(days.size, 5)
    starts, width, sums = plots.bin_days(days, counts, max_bars)
    assert len(starts) <= max_bars and sums.sum() == counts.sum()
    for day, row in zip(days, counts, strict=True):  # oracle: each day lands in the bin that covers it
        (i,) = np.flatnonzero((starts <= day) & (day < starts + width))
        assert (sums[i] >= row).all()
    expected = np.zeros_like(sums)
    for day, row in zip(days, counts, strict=True):
        expected[int((day - days[0]).astype(int)) // width] += row
    np.testing.assert_array_equal(sums, expected)


def test_flag_fraction_bars_stack_to_the_daily_fractions():
    daily = {"2024-01-02": {"1": 30, "3": 10}, "2024-01-01": {"1": 8, "4": 2, "9": 0}}
    svg = plots.flag_fraction_svg(daily, title="temp", width=400, height=200)
    plot_h = 200 - plots._MARGIN["top"] - plots._MARGIN["bottom"]
    bars = [r for r in _rects(svg) if r.get("width") and float(r["height"]) > 10
            and float(r["y"]) >= plots._MARGIN["top"] - 0.01]
    by_colour = {}
    for r in bars:
        by_colour.setdefault(r["fill"], []).append(float(r["height"]) / plot_h)
    # day 1: 80 % good, 20 % fail; day 2: 75 % good, 25 % suspect (sorted by day, not dict order)
    assert by_colour[plots.FLAG_COLOURS["1"]] == pytest.approx([0.8, 0.75], abs=1e-3)
    assert by_colour[plots.FLAG_COLOURS["4"]] == pytest.approx([0.2], abs=1e-3)
    assert by_colour[plots.FLAG_COLOURS["3"]] == pytest.approx([0.25], abs=1e-3)
    assert "2024-01-01: 10 values; good 8, fail 2" in svg
    assert "one bar per day" in svg and "<script" not in svg


def test_long_records_are_binned_and_gaps_stay_empty():
    daily = {"2000-01-01": {"1": 5}, "2009-12-31": {"4": 5}}
    svg = plots.flag_fraction_svg(daily, max_bars=100)
    assert "one bar per 37-day bin" in svg  # 3652 days / 100 bars, rounded up
    drawn = [r for r in _rects(svg) if r["fill"] in (plots.FLAG_COLOURS["1"],
                                                     plots.FLAG_COLOURS["4"])
             and float(r["y"]) >= plots._MARGIN["top"]]  # not the legend
    assert len(drawn) == 2  # the empty bins between are not drawn


def test_histogram_bars_and_threshold_lines():
    hist = {"edges": [0, 10, 20, 30, 40], "counts": [5, 10, 0, 2], "under": 3, "over": 7,
            "thresholds": {"fail_min": 0, "fail_max": 100, "suspect_min": 10,
                           "suspect_max": None}}
    width, height = 452, 230
    svg = plots.histogram_svg(hist, title="x", units="degC", width=width, height=height)
    left, plot_w = plots._MARGIN["left"], width - plots._MARGIN["left"] - plots._MARGIN["right"]
    bars = [r for r in _rects(svg) if r["fill"] == "#4c6ef5"]
    assert [float(r["x"]) for r in bars] == pytest.approx([left, left + plot_w / 4,
                                                           left + 3 * plot_w / 4], abs=0.01)
    heights = [float(r["height"]) for r in bars]
    assert heights[1] / heights[0] == pytest.approx(2, abs=1e-3)  # linear: 10 / 5
    lines = dict(re.findall(r"<line x1='([\d.]+)'[^>]*stroke-dasharray[^>]*><title>(\w+) =", svg))
    positions = {name: float(x) for x, name in lines.items()}
    assert positions == pytest.approx({"fail_min": left, "suspect_min": left + plot_w / 4,
                                       "fail_max": left + plot_w}, abs=0.1)
    assert "fail max 100 ▶" in svg  # off scale: drawn on the edge, labelled with its value
    assert "suspect_max" not in svg  # None means no threshold, 0 (fail_min) is a threshold
    assert "3 below the binned range" in svg and "7 above" in svg


def test_histogram_switches_to_log_scale_for_outliers():
    svg = plots.histogram_svg({"edges": [0, 1, 2], "counts": [10000, 3]})
    assert "log scale" in svg
    heights = [float(r["height"]) for r in _rects(svg) if r["fill"] == "#4c6ef5"]
    assert heights[1] / heights[0] == pytest.approx(np.log10(4) / np.log10(10001), abs=1e-3)


@pytest.mark.parametrize("hist", [{}, {"edges": [0], "counts": []},
                                  {"edges": [0, 1], "counts": [1, 2]}])
def test_unusable_histograms_draw_nothing(hist):
    assert plots.histogram_svg(hist) == ""


def test_flag_bar_shares():
    svg = plots.flag_bar_svg({"1": 75, "4": 25}, width=200)
    widths = {r["fill"]: float(r["width"]) for r in _rects(svg)}
    assert widths == {plots.FLAG_COLOURS["1"]: 150.0, plots.FLAG_COLOURS["4"]: 50.0}
    assert plots.flag_bar_svg({}) == ""


def test_series_bars_span_each_bins_values_and_flagged_values_are_marked():
    # 60-minute bins (level 6 would be 64; level 0 with minute ids keeps the arithmetic plain)
    series = {"level": 0, "bins": {
        "0": [10, 1.0, 3.0, 0, 0, None, None],
        "1": [10, 2.0, 4.0, 1, 0, 4.0, 4.0],
        "3": [5, 0.0, 9.0, 0, 2, 0.0, 9.0]}}   # bin 2 is a gap in the record
    width, height = 400, 240
    svg = plots.series_svg(series, title="temp", width=width, height=height)
    left, top = plots._MARGIN["left"], plots._MARGIN["top"] + 14
    plot_w = width - left - plots._MARGIN["right"]
    plot_h = height - top - plots._MARGIN["bottom"]
    bars = [r for r in _rects(svg) if r["fill"] == "#74c0fc" and float(r["y"]) > top - 1]
    assert len(bars) == 3  # the gap is not drawn
    # values 0..9 over the plot height; the last bin starts at minute 3 of a 4-minute span
    spans = sorted((float(r["y"]), float(r["height"])) for r in bars)
    assert spans[0] == pytest.approx((top, plot_h), abs=0.01)          # 0 to 9
    assert float(bars[2]["x"]) == pytest.approx(left + plot_w * 3 / 4, abs=0.01)
    circles = re.findall(r"<circle cx='([^']*)' cy='([^']*)' r='3' fill='([^']*)'>", svg)
    fills = sorted(c[2] for c in circles)
    assert fills == sorted([plots.FLAG_COLOURS["3"], plots.FLAG_COLOURS["4"],
                            plots.FLAG_COLOURS["4"]])
    suspect = [c for c in circles if c[2] == plots.FLAG_COLOURS["3"]][0]
    assert float(suspect[1]) == pytest.approx(top + plot_h * (1 - 4 / 9), abs=0.01)
    assert "1 suspect" in svg and "2 fail" in svg and "<script" not in svg


def test_series_of_nothing_draws_nothing():
    assert plots.series_svg({}) == ""
    assert plots.series_svg({"level": 3, "bins": {"5": [0, None, None, 0, 1, None, None]}}) == ""
