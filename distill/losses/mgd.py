"""MGD: multi-granularity distillation for lightweight semi-supervised segmentation
(Qin et al., ECCV 2022, arXiv 2208.10169; methods.md section 2).

A student learns from a few labels and many unlabeled images through two complementary frozen
teachers, a deep one (T_D) and a wide one (T_W), at three granularities: pixel (consistency with
each teacher's hard pseudo-labels, on the labeled view and on the CutMix-mixed unlabeled view),
image (L1 between class-wise global averages of the logits, T_D on the mixed image) and region
(MSE between 7x7 region-affinity matrices of the decoder features, T_W on the mixed image).
A recipe lists each term as its own entry with its `view:` and `teacher:`, so each is weighed and
logged alone; the total is L = CE + sum of the entries (recipes/mgd.yaml).

Sources: the paper's readable text names the three losses and the two teachers [P: Abstract,
Fig. 1]; every formula, pairing and default below is [C: JayQine/MGD-SSSS
exp.city/city8.resnet18_deeplabv3plus/train.py, config.py]. Logits are upsampled bilinearly to
the input size before use [C]; with align_corners=False as everywhere in this project [I] (the
official networks use True). The official code's all-reduce / world-size scaling is not copied
(methods.md pitfall 1). The means are per-process means of equal slices of the global batch, which
DDP's gradient average turns into the global mean; the image-level sum is scaled by the process
count, so its gradient is that of the sum over the whole recipe batch under any process count [I]. The engine runs the teachers
frozen in eval mode (BatchNorm on running statistics) [I]; the official code leaves them in train mode.
Teachers are trained on the labeled partition with CE (their cards' train: blocks) where MGD uses CPS [I].
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from distill.batch import MIX_MASK
from distill.errors import DistillError
from distill.losses.base import LOSSES, Loss, world_size
from distill.models.base import class_map
from distill.outputs import STUDENT, PairView, Read


def input_size(pair: PairView, logits: Tensor) -> tuple[int, int]:
    """(H, W) of the loss's view's image; a view without an image batch (unit tests) keeps the logits' size."""
    image = pair.batch.view(pair.view_name).image
    return tuple(image.shape[-2:]) if image.dim() == 4 else tuple(logits.shape[-2:])


def upsample(logits: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def mix(first: Tensor, second: Tensor, mask: Tensor) -> Tensor:
    """(1 - M) * first + M * second, M (N, 1, H, W) in {0, 1}: how images and logits are mixed."""
    return (1 - mask) * first + mask * second


def region_affinity(feats: Tensor, grid: int, eps: float = 1e-6) -> Tensor:
    """(N, C, h, w) -> (N, g*g, g*g) cosine similarities of the g x g average-pooled region vectors.

    A_jk = q_j . q_k / ((|q_j| + eps)(|q_k| + eps)), norms over channels. eps is ours [I]: the
    official code divides without one, and a post-ReLU region can be all zero.
    """
    q = F.adaptive_avg_pool2d(feats, grid).flatten(2)  # (N, C, g*g)
    q = q / (q.norm(dim=1, keepdim=True) + eps)
    return q.transpose(1, 2) @ q


@LOSSES.register("mgd.pixel")
class PixelConsistency(Loss):
    """L_pix = CE(up(z_S(x)), y_T), y_T = argmax_c up(z_T(x)): hard pseudo-labels, no threshold [C].

    On the labeled view x_l the teacher reads x_l itself. With `mixed_from: [a, b]` the view is a
    CutMix view (batch transform `cutmix`): the teacher reads the two unlabeled source views and
    y_T = argmax_c ((1 - M) up(z_T(a)) + M up(z_T(b))), M the view's extras["mix_mask"], the mask
    that mixed the images. MGD uses four entries, weight 1 each: {labeled, mixed} x {T_W, T_D}.
    CE is the mean over all N*H*W pixels: pseudo-labels cover padded crop areas too (pitfall 2).
    The reverse CPS terms (teacher learning from the student) carry no gradient to a frozen
    teacher and are left out.
    """

    default_weight = 1.0

    def __init__(self, mixed_from: tuple[str, ...] = ()) -> None:
        super().__init__()
        if len(mixed_from) not in (0, 2):
            raise DistillError(None, "mgd.pixel.mixed_from", "the two source views of the mixed view, like "
                               "[unlabeled0, unlabeled1]", got=list(mixed_from))
        self.mixed_from = tuple(mixed_from)

    def reads(self) -> list[Read]:
        if not self.mixed_from:
            return super().reads()
        return [Read(STUDENT, self.view, "logits")] + [Read(self.teacher_name, v, "logits") for v in self.mixed_from]

    def pseudo_labels(self, pair: PairView, size: tuple[int, int]) -> Tensor:
        """(N, H, W) argmax of the teacher's (mixed) logits at input size."""
        if not self.mixed_from:
            return class_map(upsample(pair.teacher.logits, size))
        first, second = (upsample(pair.output(pair.teacher_name, v).logits, size) for v in self.mixed_from)
        extras = pair.batch.view(pair.view_name).extras
        if MIX_MASK not in extras:
            raise DistillError(None, f"mgd.pixel view {pair.view_name!r}", "a view made by the cutmix batch transform",
                               got="<a view without a mix mask>")
        return class_map(mix(first, second, extras[MIX_MASK]))

    def forward(self, pair: PairView) -> Tensor:
        size = input_size(pair, pair.student.logits)
        s_logits = upsample(pair.student.logits, size)  # (N, C, H, W)
        return F.cross_entropy(s_logits, self.pseudo_labels(pair, size))


@LOSSES.register("mgd.image")
class SemanticSensitive(Loss):
    """L_img = lambda_1 * sum_{n,c} | GAP(up(z_S))_{n,c} - GAP(up(z_TD))_{n,c} |   [C]

    GAP = global average over H*W of the logits upsampled to input size; L1 **summed** over the
    batch and the classes, not averaged, so its scale grows with N and C (pitfall 4). In MGD it
    reads the deep teacher run on the mixed image itself (`view: mixed`, `teacher: deep`), not
    the mixed pseudo-label logits. lambda_1 is the weight: 0.001 (Cityscapes R18) [C]; 0.002 for
    VOC R18 and 0.0005 for VOC MobileNetV2. The sum is over the global batch (data.batch_size): each
    process sums its slice and multiplies by the process count, which DDP's gradient average undoes [I].
    """

    default_weight = 0.001

    def __init__(self) -> None:
        super().__init__()

    def forward(self, pair: PairView) -> Tensor:
        size = input_size(pair, pair.student.logits)
        s_gap = upsample(pair.student.logits, size).mean(dim=(2, 3))  # (N, C)
        t_gap = upsample(pair.teacher.logits, size).mean(dim=(2, 3))
        return (s_gap - t_gap).abs().sum() * world_size()


@LOSSES.register("mgd.region")
class ContentAware(Loss):
    """L_reg = lambda_2 * mean_{n,j,k} (A^S_jk - A^TW_jk)^2, A = region_affinity(f, grid)   [C]

    f is the decoder feature the classifier reads (tap `head`: 256 channels at 1/4 resolution in
    MGD's DeepLabV3+) on the mixed image, pooled to grid x grid = 7 x 7 regions; student and wide
    teacher affinities are both 49 x 49, so their channel counts need not match and no adapter is
    made (pitfall 3). lambda_2 is the weight: 100 (R18) [C]; 50 for VOC MobileNetV2.
    """

    needs = ("head",)
    default_weight = 100.0

    def __init__(self, grid: int = 7, feature: str = "head") -> None:
        super().__init__()
        if grid < 1:
            raise DistillError(None, "mgd.region.grid", "a grid size >= 1", got=grid)
        self.grid, self.feature = grid, feature
        self.needs = (feature,)

    def forward(self, pair: PairView) -> Tensor:
        s_affinity = region_affinity(pair.student.tap(self.feature), self.grid)  # (N, g*g, g*g)
        t_affinity = region_affinity(pair.teacher.tap(self.feature), self.grid)
        return F.mse_loss(s_affinity, t_affinity)
