"""Channel-wise distillation (Shu et al., ICCV 2021)."""

from __future__ import annotations

from torch import Tensor, nn

from distill.losses._functional import channel_kl, resize_like
from distill.losses.base import LOSSES, Loss
from distill.outputs import PairView, TapInfo


@LOSSES.register("cwd")
class ChannelWiseDistillation(Loss):
    """Each channel's map becomes a distribution over h*w (softmax at tau);
    L = tau^2/(N*C) * sum_{n,c} KL(teacher || student)  [C: TorchDistiller CriterionCWD, norm
    'channel', divergence 'kl']. Defaults tau=4, weight 3 on logits. On a feature tap, a 1x1
    conv adapter maps the student's channels to the teacher's when they differ [C: CIRKD cwd.py].
    """

    default_weight = 3.0

    def __init__(self, tau: float = 4.0, feature: str = "logits") -> None:
        super().__init__()
        self.tau, self.feature = tau, feature
        self.needs = (feature,)
        self.adapter: nn.Module = nn.Identity()

    def setup(self, student_taps: dict[str, TapInfo], teacher_taps: dict[str, TapInfo] | None) -> None:
        if teacher_taps is None or self.feature == "logits":
            return
        s_ch, t_ch = student_taps[self.feature].channels, teacher_taps[self.feature].channels
        if s_ch != t_ch:
            self.adapter = nn.Conv2d(s_ch, t_ch, kernel_size=1, bias=False)

    def forward(self, pair: PairView) -> Tensor:
        s_map = self.adapter(pair.student.tap(self.feature))  # (N, C_t, h, w)
        t_map = resize_like(pair.teacher.tap(self.feature), s_map.shape[-2:])
        return channel_kl(s_map, t_map, self.tau)
