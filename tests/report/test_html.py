"""The HTML report: self-contained (nothing fetched), complete, and not blank in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from distill.report.html import render_html
from distill.report.samples import PALETTE
from distill.report.svg import SERIES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def external_references(page: str) -> list[str]:
    """Anything a browser would fetch: src/href/url()/@import pointing off the page."""
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", page) + re.findall(r"url\(([^)]+)\)", page)
    refs += re.findall(r"@import\s+([^;]+)", page)
    return [r for r in refs if not r.startswith("data:") and not r.startswith("#")]


def test_page_is_self_contained_and_shows_table_and_charts(comparison):
    page = render_html(comparison)
    assert external_references(page) == []
    assert "<script" not in page and "<link" not in page
    assert page.count("<svg") == 2  # accuracy-vs-latency scatter and per-class bars
    assert '<td class="num best">70.00</td>' in page  # best mIoU
    assert "Pareto front" in page and "latency, ms (median; batch 1)" in page
    assert "cpu, 1 torch thread(s)" in page
    assert "Predictions on" not in page  # no data given: no picture grid


def test_page_without_latency_plots_against_gflops(comparison):
    comparison.setting = None
    for entry in comparison.entries:
        entry.latency = None
    page = render_html(comparison)
    assert ">GFLOPs</text>" in page and "latency: not measured (--repeats 0)" in page


def test_compare_with_data_embeds_a_picture_grid(html_report):
    page = html_report.read_text()
    assert external_references(page) == []
    assert "Predictions on synthetic val" in page
    # 4 val images x (image + truth + 2 models x (prediction + errors))
    assert page.count('src="data:image/png;base64,') == 4 * (2 + 2 * 2)
    assert "tiny_ce errors" in page and "tiny_kd errors" in page


def screenshot(page, tmp_path) -> np.ndarray:
    shot = tmp_path / "shot.png"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
               f"--screenshot={shot}", "--window-size=1280,2000", page.resolve().as_uri()]
    subprocess.run(command, capture_output=True, timeout=120, check=True)
    return np.asarray(Image.open(shot).convert("RGB"))


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium) to render the page")
def test_page_renders_in_headless_chromium(html_report, tmp_path):
    pixels = screenshot(html_report, tmp_path)
    assert pixels.shape[:2] == (2000, 1280)
    flat = pixels.reshape(-1, 3)
    non_white = (flat < 245).any(axis=1).mean()
    assert non_white > 0.15, f"only {non_white:.1%} of the page is not white"
    colours = {tuple(c) for c in flat[:: 7].tolist()}
    assert len(colours) > 200  # text, charts and photos, not a blank or error page
    drawn = {tuple(c): n for c, n in zip(*np.unique(flat, axis=0, return_counts=True))}
    series = tuple(int(SERIES[0][i:i + 2], 16) for i in (1, 3, 5))
    assert drawn.get(series, 0) > 100  # the first model's bars and marker were painted
    assert drawn.get(PALETTE[0], 0) > 1000  # class 0 ("sky") in the ground-truth pictures
