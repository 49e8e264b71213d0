"""ONFH-Net (ours): a U-Net with the paper's two extra, independent supervision paths.

1. **Pixel-level supervision** (``deep_supervision=True``): auxiliary 1x1 heads on the
   decoder at 1/2, 1/4 and 1/8 of the input resolution, each trained with its own
   Dice + cross-entropy loss against the down-sampled head mask (MONAI
   :class:`~monai.losses.DeepSupervisionLoss`). Training only: they cost nothing at
   inference.
2. **Geometric supervision** (``geometric=True``): a separate head on the 1/2-resolution
   decoder features regresses the tanh-normalised signed distance to the femoral head
   boundary, ``tanh(d / tau)`` with ``d`` in input pixels (positive inside), smooth-L1
   loss. The signed distance is smooth, so it is predicted at half resolution and
   up-sampled bilinearly; it locates the boundary to a fraction of a pixel, which is
   what matters when the mask is resized back to the image grid. At inference it is
   fused with the segmentation logits, ``logits = a * seg + b * sdf + c`` (three learned
   scalars, trained with their own Dice + cross-entropy loss). The fusion starts as the
   plain segmentation (``a, b, c = 1, 0, 0``) and learns how much distance to add.

Both switches off gives exactly the plain :class:`~grading.engine.networks.unet.UNet`
(same backbone, same width). ``fuse_geometry`` switches the fusion off at inference
only (ablation on one set of weights).

``out_channels`` 1: the network segments the whole femoral head (labels 1 + 2,
binary; the weights before 2026-12-07). ``out_channels`` 3: background, viable head
and necrosis (softmax), the learned necrosis output; every supervision path then
predicts the three classes, the signed distance stays that of the head boundary, and
the fusion adds it to the two head classes' logits (``logits = a * seg + (b * sdf +
c) * [0, 1, 1]``), which moves the head-against-background log-odds exactly as the
binary fusion does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.losses.dice import DiceCELoss
from monai.losses.ds_loss import DeepSupervisionLoss
from torch import nn

from grading.engine.networks.unet import (
    DEFAULT_CHANNELS,
    NECROSIS_CLASSES,
    SegmentationOutput,
    UNetBackbone,
    conv3,
    head_logit,
)

SDF_TAU_PX = 8.0
"""Signed distances are normalised as ``tanh(d / SDF_TAU_PX)``, ``d`` in input pixels."""

DEEP_SUPERVISION_LEVELS = 3


class ONFHNet(nn.Module):
    """U-Net + pixel-level (deep) supervision + geometric (signed distance) supervision.

    ``forward(x)``: ``x`` ``(B, 1, S, S)`` normalised intensities ->
    :class:`SegmentationOutput` (``logits`` ``(B, 1, S, S)``; ``deep`` only in train mode).
    """

    def __init__(
        self,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        *,
        deep_supervision: bool = True,
        geometric: bool = True,
        out_channels: int = 1,
    ) -> None:
        super().__init__()
        if out_channels not in (1, NECROSIS_CLASSES):
            raise ValueError(f"out_channels must be 1 or {NECROSIS_CLASSES}")
        self.out_channels = int(out_channels)
        k_out = self.out_channels
        self.backbone = UNetBackbone(channels)
        c = self.backbone.channels
        self.deep_supervision = deep_supervision
        self.geometric = geometric
        self.fuse_geometry = geometric
        self.head = nn.Conv2d(c[0], k_out, kernel_size=1)
        levels = min(DEEP_SUPERVISION_LEVELS, len(c) - 2)
        self.deep_heads = (
            nn.ModuleList(nn.Conv2d(c[k], k_out, kernel_size=1) for k in range(1, levels + 1))
            if deep_supervision
            else nn.ModuleList()
        )
        if geometric:
            self.sdf_head: nn.Module | None = nn.Sequential(
                conv3(c[1], c[1]), nn.Conv2d(c[1], 1, kernel_size=1), nn.Tanh()
            )
            # logits = a * seg + b * sdf + c, starting as the plain segmentation (b = 0):
            # the distance head is untrained at first, and a fused mask that follows it
            # from step 0 (b = 4 until 2026-11-28) learned markedly more slowly
            # (docs/benchmarks.md, Engine)
            self.fusion = nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))
        else:
            self.sdf_head = None
            self.register_parameter("fusion", None)

    @property
    def stride(self) -> int:
        return self.backbone.stride

    def forward(self, x: torch.Tensor) -> SegmentationOutput:
        features = self.backbone(x)
        seg = self.head(features[0])
        deep: tuple[torch.Tensor, ...] = ()
        if self.training and self.deep_supervision:
            deep = tuple(h(features[k + 1]) for k, h in enumerate(self.deep_heads))
        sdf = None
        logits = seg
        if self.sdf_head is not None:
            sdf_half = self.sdf_head(features[1])
            sdf = F.interpolate(sdf_half, size=seg.shape[-2:], mode="bilinear", align_corners=False)
            if self.fuse_geometry:
                a, b, c = self.fusion[0], self.fusion[1], self.fusion[2]
                shift = b * sdf + c
                if self.out_channels == 1:
                    logits = a * seg + shift
                else:
                    logits = a * seg + torch.cat([torch.zeros_like(shift), shift, shift], dim=1)
        return SegmentationOutput(logits=logits, seg_logits=seg, deep=deep, sdf=sdf)


class SegmentationLoss(nn.Module):
    """The loss of every network here, one term per supervision path.

    ``forward(out, target, sdf_target)``: ``target`` ``(B, 1, S, S)`` float head mask
    (0..1, may be soft) for a binary network, or ``(B, 3, S, S)`` soft one-hot
    background / viable head / necrosis for a 3-class one (each pixel's three sum to 1);
    ``sdf_target`` ``(B, 1, S, S)`` in ``tanh(d / SDF_TAU_PX)`` units or None. Returns
    ``(total, parts)`` where ``parts`` names each path's loss: ``final`` (Dice + CE on
    ``logits``), ``seg`` (the segmentation head's own Dice + CE when the final logits
    are fused), ``deep`` (deep supervision), ``geometric`` (smooth-L1 on the signed
    distance). A 3-class term is the softmax Dice + CE of the three classes plus the
    sigmoid Dice + CE of the head (:func:`head_logit` against viable + necrosis), so the
    head keeps the weight it had in the binary loss.
    """

    def __init__(self, *, geometric_weight: float = 1.0, deep_weight: float = 0.5) -> None:
        super().__init__()
        self.dice_ce = DiceCELoss(sigmoid=True, batch=True)
        self.dice_ce_classes = DiceCELoss(softmax=True, batch=True)
        self.deep_loss = DeepSupervisionLoss(DiceCELoss(sigmoid=True, batch=True))
        self.geometric_weight = geometric_weight
        self.deep_weight = deep_weight

    def term(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Dice + CE of ``(B, C, s, s)`` logits against a ``(B, C, s, s)`` soft target."""
        logits = logits.float()
        if logits.shape[1] == 1:
            binary: torch.Tensor = self.dice_ce(logits, target)
            return binary
        head = target[:, 1:].sum(dim=1, keepdim=True)
        classes: torch.Tensor = self.dice_ce_classes(logits, target)
        head_term: torch.Tensor = self.dice_ce(head_logit(logits), head)
        return classes + head_term

    def forward(
        self,
        out: SegmentationOutput,
        target: torch.Tensor,
        sdf_target: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if out.logits.shape[1] != target.shape[1]:
            raise ValueError(
                f"{out.logits.shape[1]}-channel logits need a {out.logits.shape[1]}-channel "
                f"target, got {target.shape[1]}"
            )
        parts: dict[str, torch.Tensor] = {"final": self.term(out.logits, target)}
        if out.logits is not out.seg_logits:
            parts["seg"] = self.term(out.seg_logits, target)
        if out.deep:
            # area-downsampled soft targets (DeepSupervisionLoss would use nearest)
            targets = [
                F.adaptive_avg_pool2d(target, (int(d.shape[-2]), int(d.shape[-1])))
                for d in out.deep
            ]
            parts["deep"] = self.deep_weight * sum(
                (
                    w * self.term(d, t)
                    for w, d, t in zip(
                        self.deep_loss.get_weights(len(out.deep)), out.deep, targets, strict=True
                    )
                ),
                torch.zeros((), device=target.device),
            )
        if out.sdf is not None:
            if sdf_target is None:
                raise ValueError("a network with a geometric path needs sdf_target")
            parts["geometric"] = self.geometric_weight * F.smooth_l1_loss(
                out.sdf.float(), sdf_target, beta=0.1
            )
        total = sum(parts.values(), torch.zeros((), device=target.device))
        return total, parts
