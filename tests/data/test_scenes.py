"""distill/data/scenes.py: the procedural scenes have what the synthetic task promises."""

from __future__ import annotations

import numpy as np

from distill.data.scenes import CLASSES, POLE, draw_scene


def draw(index: int, size=(96, 128)):
    return draw_scene(*size, np.random.default_rng([0, 0, index]))


def test_every_class_appears_in_a_few_scenes():
    present = set()
    for index in range(4):
        present |= set(np.unique(draw(index)[1]).tolist())
    assert len(CLASSES) >= 7
    assert present >= set(range(7)), f"missing: {[CLASSES[c] for c in set(range(len(CLASSES))) - present]}"


def test_thin_structures_exist():
    """Pole pixels whose left and right neighbours are both non-pole form 1 px wide structures."""
    one_px, runs = 0, []
    for index in range(6):
        pole = draw(index)[1] == POLE  # (H, W)
        inner = pole[:, 1:-1] & ~pole[:, :-2] & ~pole[:, 2:]
        one_px += int(inner.sum())
        for row in pole:  # horizontal run lengths of pole pixels in every row
            edges = np.flatnonzero(np.diff(np.r_[0, row.astype(np.int8), 0]))
            runs += (edges[1::2] - edges[::2]).tolist()
    assert one_px > 20
    assert sum(1 <= r <= 3 for r in runs) > 0.5 * len(runs)  # mostly thin, wires make a few long runs


def test_colour_lookup_does_not_solve_the_task():
    """A per-colour majority vote (16 levels per channel) fit on 12 scenes scores well below 0.7 mIoU on 6 others."""
    def pixels(indices):
        scenes = [draw(i, (48, 64)) for i in indices]
        colours = np.concatenate([img.reshape(-1, 3) // 16 for img, _ in scenes]).astype(int) @ np.array([256, 16, 1])
        return colours, np.concatenate([lab.ravel() for _, lab in scenes])

    colours, labels = pixels(range(12))
    votes = np.zeros((4096, len(CLASSES)))
    np.add.at(votes, (colours, labels), 1)
    test_colours, test_labels = pixels(range(100, 106))
    pred = votes.argmax(1)[test_colours]
    ious = [((pred == c) & (test_labels == c)).sum() / max(((pred == c) | (test_labels == c)).sum(), 1) for c in range(len(CLASSES))]
    assert np.mean(ious) < 0.7


def test_other_sizes_work():
    image, label = draw(3, (40, 200))
    assert image.shape == (40, 200, 3) and image.dtype == np.uint8
    assert label.shape == (40, 200) and label.max() < len(CLASSES)
