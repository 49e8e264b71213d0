"""Plain 2-D U-Net: the backbone of ours and the U-Net baseline of the benchmark.

Built from MONAI blocks (:class:`monai.networks.blocks.Convolution`). Encoder level 0
works at the input resolution; each further level halves it with a strided 3x3
convolution followed by a second 3x3 convolution. The decoder doubles the resolution
with a 2x2 transposed convolution, concatenates the skip and fuses with one 3x3
convolution. Batch norm + ReLU after every convolution (cheap at inference: no
per-image statistics).

Shapes: input ``(B, 1, S, S)`` with ``S`` divisible by ``2 ** (len(channels) - 1)``;
every output is ``(B, C, S, S)`` logits, ``C`` = ``out_channels``: 1 (binary femoral
head, the weights before 2026-12-07) or 3 (softmax background, viable head,
necrosis; :data:`NECROSIS_CLASSES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from monai.networks.blocks.convolutions import Convolution
from torch import nn

DEFAULT_CHANNELS: tuple[int, ...] = (8, 16, 32, 64, 128)

NECROSIS_CLASSES = 3
"""Output channels of a network with the learned necrosis output: background, viable
femoral head, necrosis (softmax over the three)."""


def head_logit(logits: torch.Tensor) -> torch.Tensor:
    """The femoral head's ``(B, 1, S, S)`` logit from ``(B, C, S, S)`` network logits.

    ``C`` = 1: the logits themselves. ``C`` = 3: ``log(p_viable + p_necrosis) - log(p_bg)``
    = ``logsumexp(l1, l2) - l0``, so its sigmoid is exactly the softmax head probability.
    """
    if logits.shape[1] == 1:
        return logits
    if logits.shape[1] != NECROSIS_CLASSES:
        raise ValueError(f"expected 1 or {NECROSIS_CLASSES} channels, got {logits.shape[1]}")
    return torch.logsumexp(logits[:, 1:], dim=1, keepdim=True) - logits[:, :1]


@dataclass
class SegmentationOutput:
    """What every network in this package returns.

    ``logits``: ``(B, C, S, S)`` final logits (fused with the geometric path when the
    network has one); ``C`` = 1 binary femoral head, ``C`` = 3 background / viable head /
    necrosis (:func:`head_logit` gives the head's logit either way). ``seg_logits``: the
    plain segmentation head's ``(B, C, S, S)`` logits (equal to ``logits`` without a
    geometric path).
    ``deep``: deep-supervision logits, finest first, ``(B, C, S / 2**k, S / 2**k)``
    for k = 1, 2, ... (empty without pixel-level supervision or in eval mode).
    ``sdf``: ``(B, 1, S, S)`` predicted tanh-normalised signed distance to the head
    boundary (positive inside), or None.
    """

    logits: torch.Tensor
    seg_logits: torch.Tensor
    deep: tuple[torch.Tensor, ...] = ()
    sdf: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


def conv3(in_channels: int, out_channels: int, stride: int = 1) -> Convolution:
    """3x3 convolution + batch norm + ReLU (MONAI block, "NDA" ordering)."""
    return Convolution(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=out_channels,
        strides=stride,
        kernel_size=3,
        act="RELU",
        norm="BATCH",
        bias=False,
    )


class UNetBackbone(nn.Module):
    """Encoder-decoder with skips; returns the decoder features at every scale.

    ``forward(x)`` with ``x`` ``(B, 1, S, S)`` returns a list of decoder features,
    finest first: item ``k`` is ``(B, channels[k], S / 2**k, S / 2**k)`` for
    ``k = 0 .. len(channels) - 2``.
    """

    def __init__(self, channels: Sequence[int] = DEFAULT_CHANNELS, in_channels: int = 1) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError("a U-Net needs at least two levels")
        self.channels = tuple(int(c) for c in channels)
        c = self.channels
        self.stem = nn.Sequential(conv3(in_channels, c[0]), conv3(c[0], c[0]))
        self.down = nn.ModuleList(
            nn.Sequential(conv3(c[i - 1], c[i], stride=2), conv3(c[i], c[i]))
            for i in range(1, len(c))
        )
        self.up = nn.ModuleList(
            Convolution(
                2,
                c[i],
                c[i - 1],
                strides=2,
                kernel_size=2,
                is_transposed=True,
                conv_only=True,
                padding=0,
                output_padding=0,
            )
            for i in range(1, len(c))
        )
        self.fuse = nn.ModuleList(conv3(2 * c[i - 1], c[i - 1]) for i in range(1, len(c)))

    @property
    def stride(self) -> int:
        """Input sides must be a multiple of this."""
        return int(2 ** (len(self.channels) - 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        h = skips.pop()
        decoded: list[torch.Tensor] = []
        for i in range(len(self.up) - 1, -1, -1):
            h = self.up[i](h)
            h = self.fuse[i](torch.cat([h, skips[i]], dim=1))
            decoded.append(h)
        decoded.reverse()
        return decoded


class UNet(nn.Module):
    """The plain U-Net baseline: backbone + one 1x1 segmentation head, one loss."""

    def __init__(self, channels: Sequence[int] = DEFAULT_CHANNELS, out_channels: int = 1) -> None:
        super().__init__()
        self.backbone = UNetBackbone(channels)
        self.out_channels = int(out_channels)
        self.head = nn.Conv2d(self.backbone.channels[0], self.out_channels, kernel_size=1)

    @property
    def stride(self) -> int:
        return self.backbone.stride

    def forward(self, x: torch.Tensor) -> SegmentationOutput:
        logits = self.head(self.backbone(x)[0])
        return SegmentationOutput(logits=logits, seg_logits=logits)
