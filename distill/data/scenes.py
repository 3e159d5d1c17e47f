"""Procedural street scenes: the pictures behind the embedded `synthetic` data set.

The scenes are built so that a segmenter has to learn shapes and boundaries, not a colour
lookup: every class gets a varied base colour plus texture, colours overlap across classes
(overcast sky vs grey facades vs grey cars, grass vs trees, white lane dashes vs lit windows),
and each image gets its own white balance, exposure, blur and sensor noise. Thin structures
(poles 1-3 px wide, 1 px wires, tree trunks, legs) and small objects (people, far cars) make
boundary quality matter, which is what BPKD-style methods are about.

Everything is numpy on one (H, W) canvas with the painter's algorithm; a 96x128 scene takes a
few milliseconds. Sizes scale with the canvas height; thin structures stay 1-3 px at any size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = ("sky", "ground", "road", "building", "vegetation", "pole", "vehicle", "person")
SKY, GROUND, ROAD, BUILDING, VEGETATION, POLE, VEHICLE, PERSON = range(len(CLASSES))

FACADES = ((0.72, 0.66, 0.55), (0.55, 0.30, 0.25), (0.60, 0.60, 0.62), (0.85, 0.83, 0.78), (0.45, 0.42, 0.40))
CAR_PAINTS = (
    (0.70, 0.10, 0.10), (0.15, 0.25, 0.60), (0.90, 0.90, 0.88), (0.08, 0.08, 0.09), (0.62, 0.63, 0.66), (0.85, 0.70, 0.15),
)  # fmt: skip


class Canvas:
    """An image (H, W, 3) in [0, 1] and its label map, painted back to front."""

    def __init__(self, height: int, width: int, rng: np.random.Generator) -> None:
        self.h, self.w, self.rng = height, width, rng
        self.yy, self.xx = np.ogrid[0:height, 0:width]  # (H, 1), (1, W): masks broadcast to (H, W)
        self.image = np.zeros((height, width, 3), np.float32)
        self.label = np.zeros((height, width), np.uint8)
        self.grain = rng.standard_normal((height, width)).astype(np.float32)  # fine texture
        self.blotch = make_smooth_noise(height, width, rng)  # coarse texture: stains, clouds, shadows

    def paint(self, where, cls: int, colour, grain: float = 0.04, blotch: float = 0.06) -> None:
        """Colour and label the pixels `where` (bool mask or index tuple); colour is (3,) or (H, W, 3)."""
        colour = np.asarray(colour, np.float32)
        if colour.ndim == 3:
            colour = colour[where]
        shade = 1.0 + grain * self.grain[where] + blotch * self.blotch[where]
        self.image[where] = colour * shade[..., None]
        self.label[where] = cls

    def jitter(self, colour, amount: float = 0.06) -> np.ndarray:
        return np.clip(np.asarray(colour) + self.rng.uniform(-amount, amount, 3), 0.0, 1.0)

    def box(self, top: float, bottom: float, left: float, right: float) -> np.ndarray:
        return (self.yy >= top) & (self.yy < bottom) & (self.xx >= left) & (self.xx < right)

    def ellipse(self, cy: float, cx: float, ry: float, rx: float, ragged: float = 0.0) -> np.ndarray:
        dist = ((self.yy - cy) / max(ry, 0.5)) ** 2 + ((self.xx - cx) / max(rx, 0.5)) ** 2
        return dist < 1.0 + ragged * self.grain if ragged else dist < 1.0


@dataclass
class Road:
    centre: np.ndarray  # (H,) road centre column per row
    half: np.ndarray  # (H,) half width per row; 0 above the horizon
    horizon: int


def make_smooth_noise(height: int, width: int, rng: np.random.Generator, cell: int = 12) -> np.ndarray:
    """(H, W) low-frequency noise: a coarse Gaussian grid, bilinearly upsampled."""
    gh, gw = height // cell + 2, width // cell + 2
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    ys, xs = np.linspace(0, gh - 1.001, height), np.linspace(0, gw - 1.001, width)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def draw_scene(height: int, width: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 (H, W, 3), label uint8 (H, W)) of one random street scene."""
    canvas = Canvas(height, width, rng)
    horizon = int(height * rng.uniform(0.35, 0.55))
    draw_sky(canvas, horizon)
    draw_ground(canvas, horizon)
    draw_buildings(canvas, horizon)
    road = draw_road(canvas, horizon)
    draw_trees(canvas, horizon)
    draw_traffic(canvas, road)
    draw_poles(canvas, horizon)
    return finish_image(canvas), canvas.label


def draw_sky(c: Canvas, horizon: int) -> None:
    t = np.clip(c.yy / max(horizon, 1), 0, 1)[..., None]  # (H, 1, 1): 0 at the top, 1 at the horizon
    if c.rng.random() < 0.3:  # overcast: as grey as many facades
        top = c.jitter((0.72, 0.74, 0.78), 0.08)
        bottom = np.clip(top + 0.06, 0, 1)
    else:
        top, bottom = c.jitter((0.35, 0.55, 0.85)), c.jitter((0.75, 0.85, 0.95))
    colour = np.broadcast_to(top + (bottom - top) * t, (c.h, c.w, 3))
    c.paint(np.ones((c.h, c.w), bool), SKY, colour, grain=0.01, blotch=0.08)


def draw_ground(c: Canvas, horizon: int) -> None:
    grassy = c.rng.random() < 0.35  # grass verges: green like trees, only the texture differs
    colour = c.jitter((0.42, 0.52, 0.30) if grassy else (0.58, 0.55, 0.50))
    ground = np.broadcast_to(c.yy >= horizon, (c.h, c.w))
    c.paint(ground, GROUND, colour, grain=0.05, blotch=0.08)
    if not grassy:  # paving joints
        joints = ground & ((((c.yy - horizon) % 5) == 0) | ((c.xx % 7) == 0))
        c.paint(joints, GROUND, colour * 0.8, grain=0.03)


def draw_buildings(c: Canvas, horizon: int) -> None:
    for _ in range(c.rng.integers(3, 8)):
        bw = int(c.rng.integers(max(4, c.w // 10), max(5, c.w // 3)))
        left = int(c.rng.integers(-bw // 2, c.w - bw // 2))
        top = max(0, int(horizon - c.rng.uniform(0.12, 0.45) * c.h))
        bottom = horizon + int(c.rng.integers(0, max(2, c.h // 24)))
        facade = c.box(top, bottom, left, left + bw)
        colour = c.jitter(FACADES[c.rng.integers(len(FACADES))])
        c.paint(facade, BUILDING, colour, grain=0.03, blotch=0.1)
        sx, sy = int(c.rng.integers(4, 8)), int(c.rng.integers(5, 9))
        ww, wh = int(c.rng.integers(1, sx - 1)), int(c.rng.integers(2, sy - 1))
        inner = facade & c.box(top + 2, bottom - 2, left + 2, left + bw - 2)
        windows = inner & (((c.xx - left) % sx) < ww) & (((c.yy - top) % sy) < wh)
        lit = ((c.xx // sx) * 7 + (c.yy // sy) * 13 + int(c.rng.integers(5))) % 5 == 0
        c.paint(windows & ~lit, BUILDING, c.jitter((0.15, 0.18, 0.25)), grain=0.02)
        c.paint(windows & lit, BUILDING, c.jitter((0.90, 0.85, 0.60)), grain=0.02)


def draw_road(c: Canvas, horizon: int) -> Road:
    rows = np.arange(c.h, dtype=np.float32)
    t = np.clip((rows - horizon) / max(c.h - horizon, 1), 0, 1)  # perspective: 0 at the horizon
    vanish, bottom = c.w * c.rng.uniform(0.3, 0.7), c.w * c.rng.uniform(0.3, 0.7)
    road = Road(centre=vanish + (bottom - vanish) * t, half=c.w * c.rng.uniform(0.3, 0.6) * t, horizon=horizon)
    offset = np.abs(c.xx - road.centre[:, None])
    surface = (c.yy > horizon) & (offset < road.half[:, None])
    c.paint(surface, ROAD, c.jitter((0.33, 0.33, 0.35)), grain=0.06, blotch=0.12)
    dashes = surface & (offset < np.maximum(0.6, 0.04 * road.half)[:, None]) & ((np.sqrt(t) * 12).astype(int) % 2 == 0)[:, None]
    c.paint(dashes, ROAD, c.jitter((0.85, 0.85, 0.80)), grain=0.03)
    return road


def draw_trees(c: Canvas, horizon: int) -> None:
    if c.rng.random() < 0.6:  # a hedge along the horizon with a wavy top
        height = c.h * c.rng.uniform(0.03, 0.08)
        top = horizon - height * (0.6 + 0.4 * np.sin(c.xx * c.rng.uniform(0.2, 0.6) + c.rng.uniform(0, 6)))
        hedge = (c.yy > top) & (c.yy < horizon + 2) & c.box(0, c.h, *sorted(c.rng.integers(0, c.w, 2)))
        c.paint(hedge, VEGETATION, c.jitter((0.2, 0.4, 0.15)), grain=0.15)
    for _ in range(c.rng.integers(1, 4)):
        base_x = c.rng.uniform(0, c.w)
        base_y = horizon + c.rng.uniform(0, (c.h - horizon) / 3)
        radius = c.h * c.rng.uniform(0.08, 0.18)
        crown_y = base_y - c.h * c.rng.uniform(0.05, 0.15) - radius * 0.6
        trunk_w = int(c.rng.integers(1, 4))
        trunk = c.box(crown_y, base_y, base_x, base_x + trunk_w)
        c.paint(trunk, VEGETATION, c.jitter((0.35, 0.25, 0.15)), grain=0.05)
        crown = np.zeros((c.h, c.w), bool)
        for _ in range(3):
            dy, dx = c.rng.uniform(-0.5, 0.5, 2) * radius
            ry, rx = radius * c.rng.uniform(0.6, 1.0, 2)
            crown |= c.ellipse(crown_y + dy, base_x + dx, ry, rx, ragged=0.15)
        green = c.jitter((0.22, 0.45, 0.15), 0.1)
        c.paint(crown, VEGETATION, green, grain=0.15, blotch=0.1)


def draw_traffic(c: Canvas, road: Road) -> None:
    """Cars on the road and people anywhere below the horizon, far to near so near ones occlude."""
    span = c.h - road.horizon
    cars = road.horizon + span * c.rng.uniform(0.15, 1.05, c.rng.integers(1, 4))
    people = road.horizon + 1 + (span - 1) * c.rng.uniform(0.05, 1.0, c.rng.integers(1, 6))
    for foot, draw in sorted([(f, draw_vehicle) for f in cars] + [(f, draw_person) for f in people], key=lambda p: p[0]):
        draw(c, road, foot)


def draw_vehicle(c: Canvas, road: Road, foot: float) -> None:
    row = min(int(foot), c.h - 1)
    scale = (foot - road.horizon) / (c.h - road.horizon)
    width = max(4.0, c.w * 0.35 * scale * c.rng.uniform(0.8, 1.2))
    height = width * c.rng.uniform(0.45, 0.6)
    left = road.centre[row] + c.rng.uniform(-0.7, 0.7) * road.half[row] - width / 2
    paint = c.jitter(CAR_PAINTS[c.rng.integers(len(CAR_PAINTS))], 0.05)
    body = c.box(foot - 0.6 * height, foot - 0.15 * height, left, left + width)
    cabin = c.box(foot - height, foot - 0.55 * height, left + 0.2 * width, left + 0.8 * width)
    c.paint(body | cabin, VEHICLE, paint, grain=0.02, blotch=0.05)
    glass = c.box(foot - height + 1, foot - 0.6 * height, left + 0.2 * width + 1, left + 0.8 * width - 1)
    c.paint(glass, VEHICLE, c.jitter((0.12, 0.14, 0.18)), grain=0.04)
    for wheel_x in (left + 0.2 * width, left + 0.8 * width):
        c.paint(c.ellipse(foot - 0.15 * height, wheel_x, 0.17 * height, 0.12 * width), VEHICLE, (0.05, 0.05, 0.05))


def draw_person(c: Canvas, road: Road, foot: float) -> None:
    scale = (foot - road.horizon) / (c.h - road.horizon)
    height = c.h * 0.35 * scale * c.rng.uniform(0.8, 1.2) + 5
    x = c.rng.uniform(0, c.w)
    head_r = max(1.0, 0.09 * height)
    torso_w, leg_w = max(2.0, 0.22 * height), max(1.0, round(0.07 * height))
    hip = foot - 0.45 * height
    clothes = c.rng.uniform(0.05, 0.95, 3)
    c.paint(c.ellipse(foot - height + head_r, x, head_r, head_r), PERSON, c.jitter((0.80, 0.62, 0.50), 0.15))
    c.paint(c.box(foot - height + 2 * head_r, hip, x - torso_w / 2, x + torso_w / 2), PERSON, clothes)
    legs = c.box(hip, foot, x - torso_w / 2, x - torso_w / 2 + leg_w) | c.box(hip, foot, x + torso_w / 2 - leg_w, x + torso_w / 2)
    c.paint(legs, PERSON, c.jitter(clothes * 0.5, 0.1))


def draw_poles(c: Canvas, horizon: int) -> None:
    """Poles 1-3 px wide, some with a lamp arm, joined by sagging 1 px wires."""
    tops = []
    for _ in range(c.rng.integers(1, 5)):
        x = int(c.rng.integers(0, c.w))
        width = int(c.rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
        top = max(0, int(horizon - c.h * c.rng.uniform(0.15, 0.4)))
        bottom = int(horizon + (c.h - horizon) * c.rng.uniform(0.05, 0.5))
        metal = c.jitter((0.38, 0.38, 0.40), 0.12)
        c.paint(c.box(top, bottom, x, x + width), POLE, metal, grain=0.03)
        if c.rng.random() < 0.5:
            reach = int(c.rng.integers(3, 11)) * (1 if c.rng.random() < 0.5 else -1)
            c.paint(c.box(top, top + 1, min(x, x + reach), max(x, x + reach) + 1), POLE, metal, grain=0.03)
        tops.append((x, top))
    tops.sort()
    if len(tops) == 1 and c.rng.random() < 0.7:  # a lone pole still carries a wire off the frame
        tops.append((c.w - 1 if tops[0][0] < c.w // 2 else 0, int(tops[0][1] + c.rng.integers(-3, 4))))
        tops.sort()
    for (x1, y1), (x2, y2) in zip(tops, tops[1:]):
        xs = np.arange(x1, x2 + 1)
        s = (xs - x1) / max(x2 - x1, 1)
        ys = np.round(y1 + (y2 - y1) * s + c.rng.uniform(2, 8) * 4 * s * (1 - s)).astype(int)
        keep = (ys >= 0) & (ys < c.h)
        c.paint((ys[keep], xs[keep]), POLE, c.jitter((0.15, 0.15, 0.15), 0.05), grain=0.02, blotch=0.0)


def finish_image(c: Canvas) -> np.ndarray:
    """Camera effects, per image: white balance, exposure, slight blur, sensor noise -> uint8."""
    image = c.image * c.rng.uniform(0.85, 1.15, 3).astype(np.float32) * np.float32(c.rng.uniform(0.8, 1.2))
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    blur = 0.5 * image + 0.125 * (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:])
    blur += c.rng.normal(0.0, c.rng.uniform(0.01, 0.04), blur.shape).astype(np.float32)
    return (np.clip(blur, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
