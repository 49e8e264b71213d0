"""Femoral head segmentation networks, one per file, and their registry.

Every network maps ``(B, 1, S, S)`` normalised intensities to a
:class:`~grading.engine.networks.unet.SegmentationOutput` whose ``logits`` are
``(B, C, S, S)``: ``C`` = 1, binary femoral-head logits (head = labels 1 + 2), or
``C`` = 3 (``out_channels=3``), background / viable head / necrosis logits for a
softmax (the learned necrosis output). :func:`head_logit` gives the head's logit of
either.

Names (``onfh train --model``, ``onfh benchmark``):

- ``ours``: :class:`ONFHNet` with pixel-level (deep) and geometric supervision;
- ``ours-no-geom`` / ``ours-no-ds``: the two ablations;
- ``unet``: the plain U-Net of the same width;
- ``linknet``: LinkNet with a ResNet-18-style encoder.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from grading.engine.networks.linknet import LinkNet
from grading.engine.networks.onfh_net import SDF_TAU_PX, ONFHNet, SegmentationLoss
from grading.engine.networks.unet import (
    DEFAULT_CHANNELS,
    NECROSIS_CLASSES,
    SegmentationOutput,
    UNet,
    head_logit,
)

MODEL_NAMES: tuple[str, ...] = ("ours", "unet", "linknet", "ours-no-geom", "ours-no-ds")


def build_network(name: str, **config: Any) -> nn.Module:
    """A freshly initialised network by registry name (see the module docstring).

    ``config``: ``channels`` for the U-Net family, ``width`` for LinkNet, and
    ``out_channels`` (1 or 3) for all.
    """
    if name == "ours":
        return ONFHNet(**config)
    if name == "ours-no-geom":
        return ONFHNet(geometric=False, **config)
    if name == "ours-no-ds":
        return ONFHNet(deep_supervision=False, **config)
    if name == "unet":
        return UNet(**config)
    if name == "linknet":
        return LinkNet(**config)
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")


def has_geometric_path(model: nn.Module) -> bool:
    """Whether the network regresses a signed distance map (needs an SDF target)."""
    return isinstance(model, ONFHNet) and model.geometric


__all__ = [
    "DEFAULT_CHANNELS",
    "MODEL_NAMES",
    "NECROSIS_CLASSES",
    "SDF_TAU_PX",
    "LinkNet",
    "ONFHNet",
    "SegmentationLoss",
    "SegmentationOutput",
    "UNet",
    "build_network",
    "has_geometric_path",
    "head_logit",
]
