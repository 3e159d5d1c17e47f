"""Chart helpers: tick choice, the Pareto front, and SVG that parses and carries its labels."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from distill.report.svg import Point, bars_svg, label_offsets, nice_ticks, pareto_front, scatter_svg

SVG = "{http://www.w3.org/2000/svg}"


def test_nice_ticks_cover_the_range_in_round_steps():
    assert nice_ticks(0, 23) == [0, 5, 10, 15, 20, 25]  # raw step 4.6 -> 5
    assert nice_ticks(0.0, 0.9) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(3, 3) == [2, 2.5, 3, 3.5, 4]  # a flat range is widened, not divided by zero


def test_pareto_front_keeps_models_nothing_beats_on_both_axes():
    points = [Point("a", 10, 60), Point("b", 11, 62), Point("c", 40, 70), Point("d", 12, 58), Point("e", 10, 59)]
    # d is slower and worse than b; e is as fast as a but worse; a, b, c each trade speed for accuracy
    assert pareto_front(points) == [0, 1, 2]


def test_point_labels_are_pushed_apart():
    assert label_offsets([100.0, 105.0, 300.0]) == [100.0, 114.0, 300.0]


def test_scatter_is_valid_svg_with_axes_labels_and_filled_front():
    svg = scatter_svg([Point("fast", 10, 60, 12), Point("slow & worse", 20, 50)], "latency, ms", "mIoU, %")
    root = ET.fromstring(svg)  # well-formed: the model name's & was escaped
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"latency, ms", "mIoU, %", "fast", "slow & worse", "Pareto front", "dominated"} <= set(texts)
    circles = [c for c in root.iter(f"{SVG}circle") if c.find(f"{SVG}title") is not None]
    fills = {c.find(f"{SVG}title").text.split(":")[0]: c.get("fill") for c in circles}
    assert fills["fast"] != "#fff" and fills["slow & worse"] == "#fff"  # front filled, dominated hollow


def test_bars_draw_one_bar_per_known_value_and_mark_missing():
    svg = bars_svg(["sky", "pole"], [("ce", [90.0, None]), ("kd", [80.0, 5.0])])
    root = ET.fromstring(svg)
    titles = [r.find(f"{SVG}title").text for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert titles == ["ce, sky: 90.00", "kd, sky: 80.00", "kd, pole: 5.00"]
    assert "n/a" in [t.text for t in root.iter(f"{SVG}text")]
