"""Channel-wise distillation (Shu et al., ICCV 2021; methods.md 5.2)."""

from __future__ import annotations

from torch import Tensor, nn

from distill.losses._functional import channel_kl, resize_like
from distill.losses.base import LOSSES, Loss
from distill.outputs import PairView, TapInfo


@LOSSES.register("cwd")
class ChannelWiseDistillation(Loss):
    """L_CWD = tau^2/(N*C) * sum_{n,c} KL(softmax_s(z_T[n,c]/tau) || softmax_s(z_S[n,c]/tau))

    softmax_s is over the h*w positions of one channel [C: TorchDistiller SemSeg-distill
    CriterionCWD, norm 'channel', divergence 'kl']. Defaults tau = 4, weight 3 on logits [C:
    exp_cwd.sh]; on a feature tap the recipes use weight 50. There a 1x1 conv (no bias) maps the
    student's C_s channels to the teacher's C_t when they differ, created in `setup` and trained
    with the student [C: winycg/CIRKD losses/cwd.py]. A teacher map of another size is resized
    bilinearly to the student's (methods.md section 0). mmrazor's variant is tau = 1, weight 5.
    """

    default_weight = 3.0

    def __init__(self, tau: float = 4.0, feature: str = "logits") -> None:
        super().__init__()
        self.tau, self.feature = tau, feature
        self.needs = (feature,)
        self.adapter: nn.Module = nn.Identity()

    def setup(self, student_taps: dict[str, TapInfo], teacher_taps: dict[str, TapInfo] | None) -> None:
        if teacher_taps is None or self.feature == "logits":
            return  # logits share the class list (checked at recipe pre-flight)
        s_ch, t_ch = student_taps[self.feature].channels, teacher_taps[self.feature].channels
        if s_ch != t_ch:
            self.adapter = nn.Conv2d(s_ch, t_ch, kernel_size=1, bias=False)

    def forward(self, pair: PairView) -> Tensor:
        s_map = self.adapter(pair.student.tap(self.feature))  # (N, C_t, h, w)
        t_map = resize_like(pair.teacher.tap(self.feature), s_map.shape[-2:])  # (N, C_t, h, w)
        return channel_kl(s_map, t_map, self.tau)
