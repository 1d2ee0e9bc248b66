"""The dependency-free SVG line chart reports embed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from facetrace.core.svg_chart import COLOURS, count_ticks, line_chart_svg

SVG = "{http://www.w3.org/2000/svg}"
pytestmark = pytest.mark.no_catalog


@pytest.mark.parametrize(
    ("peak", "ticks"),
    [(0, [0, 1]), (3, [0, 1, 2, 3]), (4, [0, 1, 2, 3, 4]), (7, [0, 2, 4, 6, 8]), (78, [0, 20, 40, 60, 80])],
)
def test_gridlines_are_few_whole_counts_reaching_the_peak(peak: int, ticks: list[int]) -> None:
    assert count_ticks(peak) == ticks


def test_one_line_and_legend_entry_per_series_with_a_point_per_month() -> None:
    series = {"alice (unit-a)": [0, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 7], "bob (unit-b)": [2] * 12}
    svg = ET.fromstring(line_chart_svg("Searches per month, 2026", list("JFMAMJJASOND"), series, "searches"))
    lines = svg.findall(f"{SVG}polyline")
    assert [line.get("stroke") for line in lines] == list(COLOURS[:2])
    assert all(len(line.get("points", "").split()) == 12 for line in lines)
    assert len(svg.findall(f"{SVG}circle")) == 24
    texts = [text.text for text in svg.iter(f"{SVG}text")]
    assert {"alice (unit-a)", "bob (unit-b)", "Searches per month, 2026", "searches", "8"} <= set(texts)
    # The highest count sits on the plot's top gridline (8 is the top: 7 rounded up to a step of 2).
    alice = lines[0].get("points", "").split()
    assert float(alice[-1].split(",")[1]) < float(alice[1].split(",")[1])


def test_text_is_escaped_and_no_inline_style_is_used() -> None:
    hostile = '<script>alert("x")</script> & co'
    document = line_chart_svg(hostile, ["J"], {hostile: [1]}, "searches")
    assert "<script>" not in document and "style" not in document
    svg = ET.fromstring(document)
    title = svg.find(f"{SVG}title")
    assert title is not None and title.text == hostile


def test_no_series_still_draws_the_axes() -> None:
    svg = ET.fromstring(line_chart_svg("Searches per month, 2026", list("JFMAMJJASOND"), {}, "searches"))
    assert svg.findall(f"{SVG}polyline") == []
    assert [text.text for text in svg.iter(f"{SVG}text")][-12:] == list("JFMAMJJASOND")
