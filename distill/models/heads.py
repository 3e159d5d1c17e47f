"""Segmentation heads on top of a timm feature pyramid.

Each head takes the list of backbone features (strides 2..32, as timm's features_only gives
them) and returns `(head_feature, logits)`: the last feature before the classifier (the "head"
tap that feature losses read) and the class logits at the head's own stride.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distill.registry import Registry

HEADS: Registry[type[nn.Module]] = Registry("architecture")


def conv_bn_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def index_of_stride(strides: list[int], stride: int) -> int:
    """The deepest feature whose stride is `stride` (timm lists them shallow to deep)."""
    matches = [i for i, s in enumerate(strides) if s == stride]
    if not matches:
        raise ValueError(f"backbone has no stride-{stride} feature (strides {strides})")
    return matches[-1]


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (Chen et al. 2017): 1x1, three dilated 3x3, image pooling."""

    def __init__(self, cin: int, cout: int, rates: tuple[int, int, int]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [conv_bn_relu(cin, cout, 1)] + [conv_bn_relu(cin, cout, 3, r) for r in rates]
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.ReLU(inplace=True))
        self.project = nn.Sequential(conv_bn_relu(cout * 5, cout, 1), nn.Dropout(0.1))

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.pool(x).expand(-1, -1, *x.shape[-2:])
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))


@HEADS.register("deeplabv3plus")
class DeepLabV3PlusHead(nn.Module):
    """DeepLabV3+ (Chen et al., ECCV 2018): ASPP on the deepest feature, decoder with stride-4 features."""

    def __init__(self, channels: list[int], strides: list[int], num_classes: int, width: int, output_stride: int) -> None:
        super().__init__()
        rates = (6, 12, 18) if output_stride >= 16 else (12, 24, 36)
        self.low_index = index_of_stride(strides, 4)
        self.aspp = ASPP(channels[-1], width, rates)
        self.low = conv_bn_relu(channels[self.low_index], 48, 1)
        self.decoder = nn.Sequential(conv_bn_relu(width + 48, width, 3), conv_bn_relu(width, width, 3))
        self.classifier = nn.Conv2d(width, num_classes, 1)
        self.stride, self.width = 4, width

    def forward(self, feats: list[Tensor]) -> tuple[Tensor, Tensor]:
        low = self.low(feats[self.low_index])
        high = F.interpolate(self.aspp(feats[-1]), size=low.shape[-2:], mode="bilinear", align_corners=False)
        head = self.decoder(torch.cat([high, low], dim=1))
        return head, self.classifier(head)


@HEADS.register("lightplus")
class LightDeepLabV3PlusHead(nn.Module):
    """A light DeepLabV3+-style decoder for fast students: no ASPP. A 1x1 conv takes the deepest
    feature to `width` channels, it is upsampled to stride 4 and fused with a 32-channel 1x1
    projection of the stride-4 feature by one depthwise-separable 3x3 conv. At output stride 32
    on EfficientNet-Lite0 it adds about 0.5 GFLOPs at 360x480 to the encoder's 2.58 (a full 3x3
    fuse would add 4); the stride-4 skip keeps boundaries a stride-32 encoder alone would lose."""

    def __init__(self, channels: list[int], strides: list[int], num_classes: int, width: int, output_stride: int) -> None:
        super().__init__()
        self.low_index = index_of_stride(strides, 4)
        self.high = conv_bn_relu(channels[-1], width, 1)
        self.low = conv_bn_relu(channels[self.low_index], 32, 1)
        fused = width + 32  # one separable 3x3 fuse: a full 3x3 at stride 4 would cost more than the encoder
        self.fuse = nn.Sequential(nn.Conv2d(fused, fused, 3, padding=1, groups=fused, bias=False), nn.BatchNorm2d(fused),
                                  nn.ReLU(inplace=True), conv_bn_relu(fused, width, 1))
        self.classifier = nn.Conv2d(width, num_classes, 1)
        self.stride, self.width = 4, width

    def forward(self, feats: list[Tensor]) -> tuple[Tensor, Tensor]:
        low = self.low(feats[self.low_index])
        high = F.interpolate(self.high(feats[-1]), size=low.shape[-2:], mode="bilinear", align_corners=False)
        head = self.fuse(torch.cat([high, low], dim=1))
        return head, self.classifier(head)


@HEADS.register("lraspp")
class LiteRASPPHead(nn.Module):
    """Lite R-ASPP (Howard et al., MobileNetV3, ICCV 2019): a gated 1x1 branch plus stride-8 skip."""

    def __init__(self, channels: list[int], strides: list[int], num_classes: int, width: int, output_stride: int) -> None:
        super().__init__()
        self.low_index = index_of_stride(strides, 8)
        self.cbr = conv_bn_relu(channels[-1], width, 1)
        self.scale = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels[-1], width, 1, bias=False), nn.Sigmoid())
        self.low_classifier = nn.Conv2d(channels[self.low_index], num_classes, 1)
        self.high_classifier = nn.Conv2d(width, num_classes, 1)
        self.stride, self.width = 8, width

    def forward(self, feats: list[Tensor]) -> tuple[Tensor, Tensor]:
        low, high = feats[self.low_index], feats[-1]
        head = self.cbr(high) * self.scale(high)
        head = F.interpolate(head, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return head, self.low_classifier(low) + self.high_classifier(head)


@HEADS.register("fcn")
class FCNHead(nn.Module):
    """FCN-style head (Long et al., CVPR 2015, as in torchvision): 3x3 conv then a 1x1 classifier."""

    def __init__(self, channels: list[int], strides: list[int], num_classes: int, width: int, output_stride: int) -> None:
        super().__init__()
        self.block = nn.Sequential(conv_bn_relu(channels[-1], width, 3), nn.Dropout(0.1))
        self.classifier = nn.Conv2d(width, num_classes, 1)
        self.stride, self.width = strides[-1], width

    def forward(self, feats: list[Tensor]) -> tuple[Tensor, Tensor]:
        head = self.block(feats[-1])
        return head, self.classifier(head)


class AuxHead(nn.Module):
    """Auxiliary FCN head on the penultimate stage (PSPNet-style deep supervision), training only."""

    def __init__(self, cin: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        self.block = nn.Sequential(conv_bn_relu(cin, width, 3), nn.Dropout(0.1), nn.Conv2d(width, num_classes, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)
