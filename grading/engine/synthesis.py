"""SynthSeg-style domain randomisation: training images synthesised from tissue maps.

Billot et al., "SynthSeg: Segmentation of brain MRI scans of any contrast and
resolution without retraining", Medical Image Analysis 2023. A network trained only
on one generator's look learns that look; trained on images whose every tissue has
a random intensity (so the order of tissue brightness changes too), seen through
random bias fields, resolutions, blur, noise and deformations, it must learn shape.

:func:`synthesise` turns a batch of phantom tissue maps
(:class:`~grading.engine.phantoms.tissues.TissueClass` per pixel, from
:func:`~grading.engine.phantoms.make_training_crops_with_tissue`) into images, all
steps batched torch operations on the whole batch (one call each, no per-image
Python loop), so a batch of 16 at 256x256 costs a few ms beside a 300 ms training
step. The steps, in order, and MONAI's per-image transform each one matches:

1. intensities: a random mean per tissue class and sample (uniform 0..1), a random
   within-class spread (Gaussian, before the blur: texture), with the anatomy tied
   where nothing in the image separates it (head marrow = femoral marrow, oedema =
   marrow darkened by up to 45 %) and the lesion kept visible (its band or its
   interior differs from marrow by at least :attr:`SynthesisConfig.lesion_contrast`);
   in a share of samples the band takes the interior's value (a lesion without a
   band) or the interior takes marrow's (fat-like interior);
2. deformation: a random affine (rotation, scale, shear, shift) plus a smooth
   elastic displacement (``Rand2DElastic`` / ``RandAffine``), applied to the image
   and, with the same grid, to the targets;
3. resolution: an anisotropic Gaussian blur per sample (``RandGaussianSmooth``),
   as a thicker slice or a coarser matrix would blur;
4. a smooth multiplicative bias field (``RandBiasField``);
5. Rician or Gaussian noise of random level (``RandRicianNoise``);
6. a random gamma (``RandAdjustContrast``);
7. the predictor's intensity normalisation.

Every step runs at the network input (the tissue maps are brought there by nearest
neighbour once per run; the blur gives the partial volume at tissue borders).

Targets: the soft head / necrosis maps and the signed distance of the crop, deformed
with the image. Deterministic for a given ``torch.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from grading.engine.phantoms.tissues import N_TISSUE_CLASSES
from grading.engine.phantoms.tissues import TissueClass as T
from grading.engine.predictor import normalise_intensity


@dataclass(frozen=True)
class SynthesisConfig:
    """Ranges of the randomisation (defaults chosen on the project's own phantoms only)."""

    texture_max: float = 0.08
    """Within-class spread of intensity, up to this (intensities are 0..1)."""
    lesion_contrast: float = 0.15
    """The lesion's band or interior differs from marrow by at least this."""
    bandless_share: float = 0.2
    """Share of samples whose lesion band takes the interior's intensity."""
    fat_like_share: float = 0.25
    """Share of samples whose lesion interior sits near marrow (fat-like)."""
    deform_share: float = 0.7
    rotation_deg: float = 15.0
    scale: tuple[float, float] = (0.88, 1.12)
    shear: float = 0.08
    shift: float = 0.06
    """Fraction of the half-width."""
    elastic: float = 0.025
    """Largest elastic displacement standard deviation, fraction of the half-width."""
    blur_min_px: float = 0.3
    """Smallest Gaussian sigma along each axis, input pixels (some partial volume always)."""
    blur_max_px: float = 1.2
    """Largest Gaussian sigma along each axis, input pixels (128 a window)."""
    bias_max: float = 0.45
    """Largest standard deviation of the log bias field."""
    noise_max: float = 0.08
    gamma_sd: float = 0.3
    """Standard deviation of log gamma."""


DEFAULT_SYNTHESIS = SynthesisConfig()


def _uniform(shape: tuple[int, ...], low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return torch.empty(shape).uniform_(low, high, generator=gen)


def class_intensities(b: int, gen: torch.Generator, cfg: SynthesisConfig) -> torch.Tensor:
    """``(b, N_TISSUE_CLASSES)`` random mean intensity of each tissue class, 0..1."""
    lut = _uniform((b, N_TISSUE_CLASSES), 0.0, 1.0, gen)
    # air stays dark in most samples (no signal outside the body); fat structures
    # share one value more often than not, as do the muscles and walls
    dark_air = torch.rand(b, generator=gen) < 0.8
    lut[:, T.AIR] = torch.where(dark_air, lut[:, T.AIR] * 0.1, lut[:, T.AIR])
    tie_fat = torch.rand(b, generator=gen) < 0.6
    lut[:, T.PULVINAR_FAT] = torch.where(tie_fat, lut[:, T.FAT], lut[:, T.PULVINAR_FAT])
    marrow = lut[:, T.FEMUR_MARROW]
    lut[:, T.HEAD_MARROW] = marrow
    lut[:, T.OEDEMA] = marrow * _uniform((b,), 0.55, 1.0, gen)
    # the lesion: interior anywhere, or near marrow (fat-like); band visible against
    # marrow unless the lesion is bandless, then the interior is
    fat_like = torch.rand(b, generator=gen) < cfg.fat_like_share
    near_marrow = (marrow * _uniform((b,), 0.85, 1.1, gen)).clamp(0.0, 1.0)
    interior = torch.where(fat_like, near_marrow, lut[:, T.LESION_INTERIOR])
    lut[:, T.LESION_FAT_LIKE] = torch.where(
        torch.rand(b, generator=gen) < 0.5, near_marrow, lut[:, T.LESION_FAT_LIKE]
    )
    band = _away_from(lut[:, T.LESION_BAND], marrow, cfg.lesion_contrast, gen)
    bandless = (torch.rand(b, generator=gen) < cfg.bandless_share) & ~fat_like
    interior = torch.where(
        bandless, _away_from(interior, marrow, cfg.lesion_contrast, gen), interior
    )
    lut[:, T.LESION_INTERIOR] = interior
    lut[:, T.LESION_BAND] = torch.where(bandless, interior, band)
    return lut


def _away_from(
    value: torch.Tensor, ref: torch.Tensor, margin: float, gen: torch.Generator
) -> torch.Tensor:
    """``value`` where it differs from ``ref`` by ``margin``; else a value that does
    (on the side with room, 0..1)."""
    close = (value - ref).abs() < margin
    up = ref + margin + (1.0 - ref - margin).clamp_min(0.0) * torch.rand(ref.shape, generator=gen)
    down = (ref - margin).clamp_min(0.0) * torch.rand(ref.shape, generator=gen)
    pick_up = (ref + margin <= 1.0) & (
        (ref - margin < 0.0) | (torch.rand(ref.shape, generator=gen) < 0.5)
    )
    return torch.where(close, torch.where(pick_up, up, down), value)


def _gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """``(B, 2 * radius + 1)`` normalised 1-D Gaussians (sigma 0: a delta)."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    s = sigma.clamp_min(1e-3)[:, None]
    k = torch.exp(-0.5 * (x[None] / s) ** 2)
    return k / k.sum(dim=1, keepdim=True)


def blur(x: torch.Tensor, sigma_rows: torch.Tensor, sigma_cols: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, 1, H, W)`` with a sigma per sample and axis (px)."""
    b = x.shape[0]
    radius = max(int(math.ceil(3.0 * float(torch.max(sigma_rows.max(), sigma_cols.max())))), 1)
    kr = _gaussian_kernels(sigma_rows, radius).view(b, 1, -1, 1)
    kc = _gaussian_kernels(sigma_cols, radius).view(b, 1, 1, -1)
    h = x.transpose(0, 1)  # (1, B, H, W): one group per sample
    h = F.conv2d(F.pad(h, (0, 0, radius, radius), mode="replicate"), kr, groups=b)
    h = F.conv2d(F.pad(h, (radius, radius, 0, 0), mode="replicate"), kc, groups=b)
    return h.transpose(0, 1).contiguous()


def deformation_grid(b: int, size: int, gen: torch.Generator, cfg: SynthesisConfig) -> torch.Tensor:
    """``(b, size, size, 2)`` sampling grid (normalised coordinates, ``align_corners=False``):
    a random affine plus a smooth elastic displacement (drawn on a 5x5 lattice, up-sampled),
    identity for samples not deformed; a left-right flip in half of all samples."""
    deform = (torch.rand(b, generator=gen) < cfg.deform_share).float()
    angle = torch.deg2rad(_uniform((b,), -cfg.rotation_deg, cfg.rotation_deg, gen))
    scale = _uniform((b, 2), *cfg.scale, gen=gen)
    shear = _uniform((b,), -cfg.shear, cfg.shear, gen)
    shift = _uniform((b, 2), -cfg.shift, cfg.shift, gen)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shear_m = torch.eye(2).repeat(b, 1, 1)
    shear_m[:, 0, 1] = shear
    lin = rot @ shear_m @ torch.diag_embed(1.0 / scale)
    eye = torch.eye(2).expand(b, 2, 2)
    d = deform.view(b, 1, 1)
    lin = d * lin + (1.0 - d) * eye
    # a left-right flip in half the samples, deformed or not (both hips look alike mirrored)
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    lin = lin * torch.stack([flip, torch.ones(b)], dim=-1)[:, None, :]
    theta = torch.cat([lin, (shift * deform[:, None])[:, :, None]], dim=2)
    grid = F.affine_grid(theta, [b, 1, size, size], align_corners=False)
    amp = _uniform((b, 1, 1, 1), 0.0, cfg.elastic, gen) * deform.view(b, 1, 1, 1)
    coarse = torch.randn((b, 2, 5, 5), generator=gen) * amp
    disp = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return grid + disp.permute(0, 2, 3, 1)


def synthesise(
    tissue: torch.Tensor,
    target: torch.Tensor,
    sdf: torch.Tensor,
    gen: torch.Generator,
    *,
    cfg: SynthesisConfig = DEFAULT_SYNTHESIS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random images from tissue maps, with their targets deformed alike.

    ``tissue``: ``(B, S, S)`` uint8 tissue codes at the network input; ``target``:
    ``(B, C, S, S)`` soft maps at the network input (head, necrosis); ``sdf``:
    ``(B, 1, S, S)`` tanh-normalised signed distance at the input. ``gen``: a CPU
    generator. Returns ``(images (B, 1, S, S) normalised as the predictor does, target, sdf)``,
    contiguous, on the CPU.
    """
    b, size = int(tissue.shape[0]), int(target.shape[-1])
    if tuple(tissue.shape[-2:]) != (size, size):
        raise ValueError(f"tissue maps {tuple(tissue.shape)} must be at the input size {size}")
    codes = tissue.long().view(b, -1)
    # 1. intensities and texture
    lut = class_intensities(b, gen, cfg)
    spread = _uniform((b, N_TISSUE_CLASSES), 0.0, cfg.texture_max, gen)
    x = torch.gather(lut, 1, codes) + torch.gather(spread, 1, codes) * torch.randn(
        (b, size * size), generator=gen
    )
    x = x.view(b, 1, size, size)
    # 2. one deformation for the image and its targets
    grid = deformation_grid(b, size, gen, cfg)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    target = F.grid_sample(
        target, grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    sdf = F.grid_sample(sdf, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # 3. resolution
    x = blur(
        x,
        _uniform((b,), cfg.blur_min_px, cfg.blur_max_px, gen),
        _uniform((b,), cfg.blur_min_px, cfg.blur_max_px, gen),
    )
    # 4. bias field
    sd = _uniform((b, 1, 1, 1), 0.0, cfg.bias_max, gen)
    log_bias = F.interpolate(
        torch.randn((b, 1, 4, 4), generator=gen) * sd,
        size=(size, size),
        mode="bilinear",
        align_corners=False,
    )
    x = x.clamp_min(0.0) * torch.exp(log_bias)
    # 5. noise, Rician in about half the samples (magnitude images)
    sigma = _uniform((b, 1, 1, 1), 0.0, cfg.noise_max, gen) * x.amax(dim=(2, 3), keepdim=True)
    n1 = torch.randn((b, 1, size, size), generator=gen) * sigma
    n2 = torch.randn((b, 1, size, size), generator=gen) * sigma
    rician = (torch.rand((b, 1, 1, 1), generator=gen) < 0.5).float()
    x = rician * torch.sqrt((x + n1) ** 2 + n2**2) + (1.0 - rician) * (x + n1)
    # 6. gamma on the image scaled to 0..1
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    unit = ((x - lo) / (hi - lo).clamp_min(1e-6)).clamp(0.0, 1.0)
    gamma = torch.exp(torch.randn((b, 1, 1, 1), generator=gen) * cfg.gamma_sd)
    x = unit**gamma
    # 7. the predictor's normalisation
    return normalise_intensity(x), target.contiguous(), sdf.contiguous()
