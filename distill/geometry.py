"""What the training transform did to a sample's geometry, and how to do the same to a map.

`TrainTransform` (distill.data.transforms) records, per sample, a float32 vector of RECORD
fields (whole numbers, exact in float32): the source image size, the rescaled size, the
bottom/right padding, the crop's corner and size, whether it flipped the crop and whether it
jittered the colours. `warp_to_crop` applies that geometry to a map computed on the
un-augmented source image (a cached teacher output), so the result sits on the output grid of
the augmented crop: what the teacher-output cache (distill.engine.cache) serves instead of
running the teacher.

Coordinates are continuous pixel coordinates (a pixel i covers [i, i + 1)), and a map of h rows
covers its image uniformly (row i is centred at (i + 0.5) * H / h), the convention of
F.interpolate with align_corners=False that the multi-scale merge and the losses' resizing use.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

RECORD = ("source_h", "source_w", "scaled_h", "scaled_w", "pad_bottom", "pad_right",
          "top", "left", "crop_h", "crop_w", "flip", "jitter")
FIELD = {name: i for i, name in enumerate(RECORD)}


def make_record(source: Sequence[int], scaled: Sequence[int], corner: Sequence[int], crop: Sequence[int],
                flip: bool, jitter: bool) -> Tensor:
    """The (len(RECORD),) float32 record of one sample; sizes are (H, W), corner (top, left)."""
    pad = (max(0, crop[0] - scaled[0]), max(0, crop[1] - scaled[1]))
    return torch.tensor([*source, *scaled, *pad, *corner, *crop, float(flip), float(jitter)], dtype=torch.float32)


def flip_records(records: Tensor) -> Tensor:
    """(N, len(RECORD)) records of the mirrored crops (the `hflip` batch transform's view)."""
    out = records.clone()
    out[:, FIELD["flip"]] = 1.0 - out[:, FIELD["flip"]]
    return out


def crop_grid(record: Tensor, out_size: tuple[int, int]) -> Tensor:
    """(1, ho, wo, 2) grid_sample coordinates (x, y in [-1, 1] over the rescaled image) of the
    centres of an (ho, wo) output grid over the crop, mapped back through flip, crop and pad."""
    g = dict(zip(RECORD, record.tolist()))
    ho, wo = out_size
    ys = (torch.arange(ho, dtype=torch.float64) + 0.5) * (g["crop_h"] / ho) + g["top"]
    xs = (torch.arange(wo, dtype=torch.float64) + 0.5) * (g["crop_w"] / wo)
    if g["flip"] > 0.5:
        xs = g["crop_w"] - xs  # the crop was mirrored after cropping
    xs = xs + g["left"]
    # The rescaled image spans [0, scaled] pixels, [-1, 1] for grid_sample (align_corners=False);
    # padding lies beyond 1 and takes the border value (padding_mode="border").
    gy, gx = 2.0 * ys / g["scaled_h"] - 1.0, 2.0 * xs / g["scaled_w"] - 1.0
    grid_y, grid_x = torch.meshgrid(gy, gx, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)[None].float()


def warp_to_crop(maps: Tensor, record: Tensor, out_size: tuple[int, int]) -> Tensor:
    """(C, h, w) map of the source image -> (C, ho, wo) on the crop's output grid.

    A downscaled sample's map is first resized as its image was (bilinear with antialias, by the
    same factor), so a per-pixel linear model's map is filtered exactly as its input was; an
    upscaled one needs no filter (bilinear upsampling and grid_sample's bilinear sampling
    coincide, clamped edges included). grid_sample then reads the output grid's centres:
    bilinear, align_corners=False. Output cells in the padding (outside the rescaled image,
    where the fresh teacher sees black pixels and the labels are IGNORE_INDEX) get the value at
    the nearest image edge.
    """
    g = dict(zip(RECORD, record.tolist()))
    x = maps[None].float()
    if g["scaled_h"] < g["source_h"] or g["scaled_w"] < g["source_w"]:
        h, w = maps.shape[-2:]
        size = (max(1, round(h * g["scaled_h"] / g["source_h"])), max(1, round(w * g["scaled_w"] / g["source_w"])))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    grid = crop_grid(record, out_size).to(x.device)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
