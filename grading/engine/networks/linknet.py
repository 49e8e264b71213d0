"""LinkNet with a ResNet-18-style encoder (Chaurasia & Culurciello 2017): the paper's baseline.

Written from MONAI blocks (:class:`monai.networks.nets.resnet.ResNetBlock`,
:class:`monai.networks.blocks.Convolution`) and torch; randomly initialised, no
pretrained weights, no torchvision. Encoder: 7x7 stride-2 stem, 3x3 stride-2 max-pool,
four stages of two basic blocks (widths ``width * (1, 2, 4, 8)``, the last three
stride 2). Decoder blocks: 1x1 conv (m -> m/4), 3x3 stride-2 transposed conv (a plain 3x3 conv
in the first block, whose encoder stage does not down-sample either), 1x1 conv
(m/4 -> n), added to the encoder skip. Head: 3x3 stride-2 transposed conv, 3x3 conv,
2x2 stride-2 transposed conv to one logit channel.

Shapes: input ``(B, 1, S, S)``, ``S`` divisible by 32; output logits ``(B, C, S, S)``,
``C`` = ``out_channels`` (1 binary head, 3 background / viable head / necrosis).
"""

from __future__ import annotations

import torch
from monai.networks.blocks.convolutions import Convolution
from monai.networks.nets.resnet import ResNetBlock
from torch import nn

from grading.engine.networks.unet import SegmentationOutput


def _conv(
    in_c: int,
    out_c: int,
    kernel: int,
    stride: int = 1,
    *,
    transposed: bool = False,
    act: bool = True,
) -> Convolution:
    return Convolution(
        2,
        in_c,
        out_c,
        strides=stride,
        kernel_size=kernel,
        act="RELU" if act else None,
        norm="BATCH" if act else None,
        bias=not act,
        is_transposed=transposed,
        conv_only=not act,
        padding=(kernel - 1) // 2 if not transposed or kernel % 2 else 0,
        output_padding=(stride - 1) if transposed and kernel % 2 else 0,
    )


def _stage(in_c: int, out_c: int, stride: int) -> nn.Sequential:
    down: nn.Module | None = None
    if stride != 1 or in_c != out_c:
        down = nn.Sequential(
            nn.Conv2d(in_c, out_c, 1, stride=stride, bias=False), nn.BatchNorm2d(out_c)
        )
    return nn.Sequential(
        ResNetBlock(in_c, out_c, spatial_dims=2, stride=stride, downsample=down),
        ResNetBlock(out_c, out_c, spatial_dims=2),
    )


class _DecoderBlock(nn.Module):
    def __init__(self, in_c: int, out_c: int, *, upsample: bool = True) -> None:
        super().__init__()
        mid = max(in_c // 4, 1)
        self.block = nn.Sequential(
            _conv(in_c, mid, 1),
            _conv(mid, mid, 3, stride=2, transposed=True) if upsample else _conv(mid, mid, 3),
            _conv(mid, out_c, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.block(x)
        return out


class LinkNet(nn.Module):
    """LinkNet, ResNet-18-style encoder; ``width`` 64 is the original ResNet-18 width."""

    def __init__(self, width: int = 64, out_channels: int = 1) -> None:
        super().__init__()
        self.out_channels = int(out_channels)
        w = (width, 2 * width, 4 * width, 8 * width)
        self.stem = nn.Sequential(_conv(1, w[0], 7, stride=2), nn.MaxPool2d(3, 2, padding=1))
        self.encoder = nn.ModuleList(
            [
                _stage(w[0], w[0], 1),
                _stage(w[0], w[1], 2),
                _stage(w[1], w[2], 2),
                _stage(w[2], w[3], 2),
            ]
        )
        self.decoder = nn.ModuleList(
            [
                _DecoderBlock(w[0], w[0], upsample=False),
                _DecoderBlock(w[1], w[0]),
                _DecoderBlock(w[2], w[1]),
                _DecoderBlock(w[3], w[2]),
            ]
        )
        half = max(w[0] // 2, 1)
        self.head = nn.Sequential(
            _conv(w[0], half, 3, stride=2, transposed=True),
            _conv(half, half, 3),
            _conv(half, self.out_channels, 2, stride=2, transposed=True, act=False),
        )

    @property
    def stride(self) -> int:
        return 32

    def forward(self, x: torch.Tensor) -> SegmentationOutput:
        skips = []
        h = self.stem(x)
        for stage in self.encoder:
            h = stage(h)
            skips.append(h)
        d = self.decoder[3](skips[3]) + skips[2]
        d = self.decoder[2](d) + skips[1]
        d = self.decoder[1](d) + skips[0]
        d = self.decoder[0](d)
        logits = self.head(d)
        return SegmentationOutput(logits=logits, seg_logits=logits)
