"""Picture helpers for the HTML grid: fixed colours, error maps, even spacing, PNG data URIs."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from distill.report.samples import (IGNORE_COLOUR, MAX_WIDTH, PALETTE, WRONG_COLOUR, colourise, error_map,
                                    pick_indices, png_uri)


def test_colourise_uses_the_fixed_palette_and_white_for_unlabelled():
    labels = np.array([[0, 1], [255, 2]])
    colours = colourise(labels, num_classes=3)
    assert colours.dtype == np.uint8 and colours.shape == (2, 2, 3)
    assert [tuple(c) for c in colours.reshape(-1, 3)] == [PALETTE[0], PALETTE[1], IGNORE_COLOUR, PALETTE[2]]
    assert len(set(PALETTE)) == len(PALETTE)  # no two classes share a colour


def test_error_map_marks_wrong_labelled_pixels_only():
    image = np.zeros((1, 3, 3), dtype=np.uint8)
    truth = np.array([[1, 2, 255]])
    pred = np.array([[1, 0, 0]])
    out = error_map(image, pred, truth)
    assert tuple(out[0, 1]) == WRONG_COLOUR  # labelled and wrong
    assert tuple(out[0, 2]) == IGNORE_COLOUR  # unlabelled: never counted as an error
    assert tuple(out[0, 0]) == (150, 150, 150)  # right: the faded image (black faded to grey 150)


def test_pick_indices_spreads_over_the_split():
    assert pick_indices(100, 4) == [0, 33, 66, 99]
    assert pick_indices(3, 4) == [0, 1, 2]
    assert pick_indices(5, 1) == [0]
    assert pick_indices(0, 4) == []


def test_png_uri_round_trips_and_scales_large_pictures_down():
    pixels = np.zeros((10, 480, 3), dtype=np.uint8)
    pixels[:, 240:] = 255
    uri = png_uri(pixels, nearest=True)
    assert uri.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert image.size == (MAX_WIDTH, 5)
    assert set(np.asarray(image).reshape(-1).tolist()) == {0, 255}  # nearest: no blended colours
