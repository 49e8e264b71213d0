"""Training of the femoral head networks on synthetic phantoms (``onfh train``).

Data: :func:`grading.engine.phantoms.make_training_crops_with_tissue` windows (tight
head crops up to whole half-slices, with and without a femoral head, a share of them
with a tiny or a near-total lesion), rendered once per run at ``source_size`` with
their tissue maps and brought to the network input exactly as the predictor does
(:func:`grading.engine.predictor.resize`), so training sees what inference sees.
Targets at the input size: the area-averaged head and necrosis masks (labels 1 + 2
and 2, soft at the boundary; a 3-class network learns background / viable head /
necrosis from them) and the tanh-normalised signed distance to the head boundary.
Crops are cached on disk keyed by the phantom generator's source, the seed, the
sizes and the lesion mix.

Domain randomisation (:mod:`grading.engine.synthesis`): in each batch a share
``synth_share`` of the samples is synthesised afresh from its tissue map (random
intensity per tissue, deformation, blur, bias field, noise), the rest are the
realistic phantom images with light augmentation.

Validation: head Dice on a held-out phantom set (another seed) at ``source_size``,
through the predictor's resize-back path.

Loop: AdamW, cosine learning rate over the wall-clock budget, augmentation on the
fly (left-right flips, gamma, bias field, noise, cut-off borders as when a window
runs past the image), bf16 autocast on a CPU with AMX, channels_last where it pays,
checkpoints with optimizer state, step and RNG states for ``--resume``.
``init_weights``: start from exported weights (a binary network's head becomes the
viable-head channel of a 3-class one, with necrosis starting unlikely), so a run on a
2-core CPU builds on the GPU-trained weights instead of starting from nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import math
import os
import platform
import random
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn
from tqdm import tqdm

from grading.engine.networks import (
    DEFAULT_CHANNELS,
    NECROSIS_CLASSES,
    SDF_TAU_PX,
    SegmentationLoss,
    build_network,
    has_geometric_path,
    head_logit,
)
from grading.engine.phantoms.shapes import resize_nearest
from grading.engine.predictor import cpu_has_amx, metadata_path, normalise_intensity, resize

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
CropMaker = Callable[[int, int, int], tuple[F32, U8]]
CROP_FORMAT = 2
"""Bumped when the cached crop files change shape (2: tissue maps added)."""

CHUNK = 32
"""Crops are rendered in chunks of this many, chunk ``k`` with seed ``seed * 10007 + k``."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in checkpoints and metadata)."""

    model: str = "ours"
    minutes: float = 15.0
    max_steps: int | None = None
    """Stop after this many steps as well (the learning-rate schedule then follows the
    steps): an equal-steps budget, the same on any machine."""
    device: str = "cpu"
    input_size: int = 128
    source_size: int = 256
    n_train: int = 2048
    n_val: int = 128
    train_seed: int = 1
    init_seed: int | None = None
    """The network's start and the batch order; None: ``train_seed``, which always picks
    the training crops (the benchmark trains several starts on the same crops)."""
    val_seed: int = 900_001
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_s: float = 20.0
    val_every_s: float = 120.0
    bf16: bool | None = None
    channels_last: bool | None = None
    threads: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    out_channels: int = 3
    """3: background, viable head, necrosis (the learned necrosis output); 1: binary head."""
    synth_share: float = 0.5
    """Share of each batch synthesised from tissue maps (:mod:`grading.engine.synthesis`)."""
    extreme_lesion_share: float = 0.2
    """Share of head windows given a tiny or a near-total lesion (training crops only)."""
    init_weights: str | None = None
    """Exported weights to start from (its JSON beside it), or None: a random start."""
    family: str = "own"
    """Phantom family of the training crops (:mod:`grading.engine.families`)."""
    midline_share: float = 0.0
    """Share of axial windows moved across the slice onto the midline pelvic cavity
    (:func:`~grading.engine.phantoms.make_training_crops_with_tissue`)."""
    n_volume: int = 0
    """Coronal and sagittal T1 windows of the 3-D phantom added to the training crops
    (:func:`~grading.engine.phantoms.volume_crops.make_volume_training_crops`)."""

    @property
    def start_seed(self) -> int:
        """The seed of the network's start and the batch order."""
        return self.train_seed if self.init_seed is None else self.init_seed

    def network_config(self) -> dict[str, Any]:
        if self.config:
            return {"out_channels": self.out_channels, **self.config}
        if self.model == "linknet":
            return {"width": 64, "out_channels": self.out_channels}
        return {"channels": list(DEFAULT_CHANNELS), "out_channels": self.out_channels}


# ------------------------------------------------------------------ data


def _phantom_source_digest() -> str:
    """sha256 over the phantom generator's source: the cache key changes with the data."""
    from grading.engine import phantoms

    digest = hashlib.sha256()
    root = Path(inspect.getfile(phantoms)).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _render_chunk(args: tuple[int, int, int, float, float]) -> tuple[F32, U8, U8]:
    n, seed, size, extreme, midline = args
    from grading.engine.phantoms import make_training_crops_with_tissue

    torch.set_num_threads(1)
    return make_training_crops_with_tissue(
        n, seed, size, extreme_lesion_share=extreme, midline_share=midline
    )


def _render_volume_chunk(args: tuple[int, int, int, float, float]) -> tuple[F32, U8, U8]:
    n, seed, size, _, _ = args
    from grading.engine.phantoms.volume_crops import make_volume_training_crops

    torch.set_num_threads(1)
    return make_volume_training_crops(n, seed, size)


def render_crops(
    n: int,
    seed: int,
    size: int,
    *,
    workers: int = 1,
    desc: str = "phantoms",
    extreme_lesion_share: float = 0.0,
    midline_share: float = 0.0,
    volume: bool = False,
) -> tuple[F32, U8, U8]:
    """``n`` phantom windows ``(n, size, size)`` float32 + labels uint8 + tissue uint8.

    Deterministic; rendered in chunks of :data:`CHUNK` (chunk ``k`` seeded
    ``seed * 10007 + k``), in ``workers`` processes. With ``extreme_lesion_share`` 0 the
    images and labels are those of :func:`~grading.engine.phantoms.make_training_crops`.
    ``volume``: coronal and sagittal windows of the 3-D phantom instead
    (:func:`~grading.engine.phantoms.volume_crops.make_volume_training_crops`).
    """
    jobs = [
        (min(CHUNK, n - k * CHUNK), seed * 10007 + k, size, extreme_lesion_share, midline_share)
        for k in range(math.ceil(n / CHUNK))
    ]
    render = _render_volume_chunk if volume else _render_chunk
    images = np.empty((n, size, size), np.float32)
    labels = np.empty((n, size, size), np.uint8)
    tissue = np.empty((n, size, size), np.uint8)
    bar = tqdm(total=n, desc=desc, unit="crop", leave=False)
    pos = 0

    def put(chunk: tuple[F32, U8, U8]) -> None:
        nonlocal pos
        im, lab, tis = chunk
        end = pos + len(im)
        images[pos:end], labels[pos:end], tissue[pos:end] = im, lab, tis
        pos = end
        bar.update(len(im))

    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for chunk in pool.map(render, jobs):
                put(chunk)
    else:
        for job in jobs:
            put(render(job))
    bar.close()
    return images, labels, tissue


def signed_distance(mask: npt.NDArray[np.bool_]) -> F32:
    """Signed distance to the boundary of a 2-D mask, pixels, positive inside.

    The boundary lies half-way between an inside and an outside pixel. An empty mask
    gives -inf-like values (``-1e3``), a full one ``+1e3``.
    """
    if not mask.any():
        return np.full(mask.shape, -1e3, np.float32)
    if mask.all():
        return np.full(mask.shape, 1e3, np.float32)
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    out: F32 = np.where(mask, inside - 0.5, 0.5 - outside).astype(np.float32)
    return out


@dataclass
class CropSet:
    """Network-ready crops. ``images`` ``(N, 1, S, S)`` stored values resized to the input;
    ``head`` ``(N, 1, S, S)`` soft head mask 0..1; ``sdf`` ``(N, 1, S, S)`` in
    ``tanh(d / SDF_TAU_PX)`` units (input pixels); ``labels`` ``(N, s, s)`` uint8 label maps
    at the rendered ``source_size`` (for metrics on the image grid); ``necrosis``
    ``(N, 1, S, S)`` soft necrosis mask 0..1 (inside ``head``); ``tissue`` ``(N, s, s)``
    uint8 tissue codes at the input size (nearest neighbour) or None (no synthesis)."""

    images: torch.Tensor
    head: torch.Tensor
    sdf: torch.Tensor
    labels: U8
    necrosis: torch.Tensor | None = None
    tissue: torch.Tensor | None = None

    def necrosis_target(self) -> torch.Tensor:
        """``(N, 1, S, S)`` soft necrosis (zeros when the set was built without it)."""
        return self.necrosis if self.necrosis is not None else torch.zeros_like(self.head)

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _signed_distances(labels: U8) -> F32:
    return np.stack([signed_distance(lab > 0) for lab in labels])


def _area(labels: U8, which: npt.NDArray[np.bool_], input_size: int) -> torch.Tensor:
    src = torch.from_numpy(which.astype(np.float32))[:, None]
    if src.shape[-1] == input_size:
        return src
    return F.interpolate(src, size=(input_size, input_size), mode="area")


def prepare_crops(
    images: F32,
    labels: U8,
    input_size: int,
    *,
    workers: int = 1,
    tissue: U8 | None = None,
) -> CropSet:
    """Resize rendered crops and their targets to the network input (predictor's resize).

    The signed distances are computed in ``workers`` processes. ``tissue``: the crops'
    tissue maps at the rendered size (brought to the input by nearest neighbour), or
    None."""
    s = (input_size, input_size)
    x = resize(torch.from_numpy(images)[:, None], s).contiguous()
    head = _area(labels, labels > 0, input_size)
    necrosis = _area(labels, labels == 2, input_size).contiguous()
    scale = input_size / labels.shape[-1]
    if workers > 1 and len(labels) > CHUNK:
        parts = [labels[k : k + CHUNK] for k in range(0, len(labels), CHUNK)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            sdf_np = np.concatenate(list(pool.map(_signed_distances, parts)))
    else:
        sdf_np = _signed_distances(labels)
    sdf_src = sdf_np[:, None] * scale
    sdf_t = torch.from_numpy(np.clip(sdf_src, -8 * SDF_TAU_PX, 8 * SDF_TAU_PX))
    sdf_t = F.interpolate(sdf_t, size=s, mode="area") if sdf_t.shape[-1] != input_size else sdf_t
    return CropSet(
        x,
        head.contiguous(),
        torch.tanh(sdf_t / SDF_TAU_PX).contiguous(),
        labels,
        necrosis=necrosis,
        tissue=None
        if tissue is None
        else torch.from_numpy(
            np.stack([resize_nearest(t, (input_size, input_size)) for t in tissue])
        ),
    )


def concat_crops(a: CropSet, b: CropSet) -> CropSet:
    """One set of both sets' crops (same sizes; tissue maps kept when both have them)."""
    tissue = (
        torch.cat([a.tissue, b.tissue]) if a.tissue is not None and b.tissue is not None else None
    )
    return CropSet(
        torch.cat([a.images, b.images]),
        torch.cat([a.head, b.head]),
        torch.cat([a.sdf, b.sdf]),
        np.concatenate([a.labels, b.labels]),
        necrosis=torch.cat([a.necrosis_target(), b.necrosis_target()]),
        tissue=tissue,
    )


def cache_dir() -> Path:
    root = os.environ.get("ONFH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "onfh"
    )
    return Path(root)


def load_crops(
    n: int,
    seed: int,
    source_size: int,
    input_size: int,
    *,
    workers: int = 1,
    desc: str = "phantoms",
    make: CropMaker | None = None,
    extreme_lesion_share: float = 0.0,
    midline_share: float = 0.0,
    volume: bool = False,
) -> CropSet:
    """Render (or read from the on-disk cache) and prepare ``n`` crops of ``seed``.

    ``make``: another generator ``(n, seed, size) -> (images, labels)`` (no tissue maps,
    not cached). ``extreme_lesion_share``: see
    :func:`~grading.engine.phantoms.make_training_crops_with_tissue` (0 for test sets)."""
    if make is not None:
        images, labels = make(n, seed, source_size)
        return prepare_crops(images, labels, input_size)
    extreme = f"-x{extreme_lesion_share:g}" if extreme_lesion_share else ""
    extreme += f"-m{midline_share:g}" if midline_share else ""
    kind = "vcrops" if volume else "crops"
    key = f"{kind}{CROP_FORMAT}-{_phantom_source_digest()}-n{n}-s{seed}-{source_size}{extreme}.npz"
    path = cache_dir() / key
    if path.is_file():
        with np.load(path) as z:
            images, labels, tissue = z["images"], z["labels"], z["tissue"]
    else:
        images, labels, tissue = render_crops(
            n,
            seed,
            source_size,
            workers=workers,
            desc=desc,
            extreme_lesion_share=extreme_lesion_share,
            midline_share=midline_share,
            volume=volume,
        )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, images=images, labels=labels, tissue=tissue)
            tmp.replace(path)
        except OSError:
            pass
    return prepare_crops(images, labels, input_size, workers=workers, tissue=tissue)


# ------------------------------------------------------------------ augmentation


def augment(
    x: torch.Tensor,
    head: torch.Tensor,
    sdf: torch.Tensor,
    gen: torch.Generator,
    noise_gen: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random training variants of a ``(B, 1, S, S)`` batch (stored values) and its targets.

    The batch may live on any device. ``gen`` is a CPU generator for the per-sample
    choices (moved to the batch's device, a few numbers each); ``noise_gen`` draws the
    full-size noise on the batch's device (default ``gen``, which must then be on it).

    Left-right flips (both hips look alike mirrored), gamma 0.7-1.4, a smooth
    multiplicative bias field, Gaussian noise, and in 15 % of samples a band at one
    border set to zero (a window that runs past the image, as in the fine pass).
    Returns contiguous normalised images and the matching targets.
    """
    b, _, s, _ = x.shape
    dev = x.device
    flip = (torch.rand(b, generator=gen) < 0.5).to(dev).view(-1, 1, 1, 1)
    x = torch.where(flip, x.flip(-1), x)
    head = torch.where(flip, head.flip(-1), head)
    sdf = torch.where(flip, sdf.flip(-1), sdf)

    x = normalise_intensity(x).clamp(-0.5, 3.0)
    gamma = torch.exp(
        torch.empty(b, 1, 1, 1).uniform_(math.log(0.7), math.log(1.4), generator=gen)
    ).to(dev)
    x = torch.sign(x) * x.abs() ** gamma
    coarse = (1.0 + 0.25 * torch.randn(b, 1, 3, 3, generator=gen)).to(dev)
    x = x * F.interpolate(coarse, size=(s, s), mode="bicubic", align_corners=False)
    scale = torch.randn(b, 1, 1, 1, generator=gen).abs().to(dev) * 0.03
    x = x + scale * torch.randn(x.shape, generator=noise_gen or gen, device=dev)

    cut = torch.rand(b, generator=gen) < 0.15
    if bool(cut.any()):
        keep = torch.ones_like(x)
        for i in torch.nonzero(cut).flatten().tolist():
            width = int(torch.randint(s // 10, s // 3, (1,), generator=gen))
            side = int(torch.randint(0, 4, (1,), generator=gen))
            band = (
                (slice(None), slice(0, width))
                if side == 0
                else (slice(None), slice(s - width, s))
                if side == 1
                else (slice(0, width), slice(None))
                if side == 2
                else (slice(s - width, s), slice(None))
            )
            keep[i, 0][band] = 0.0
        x = x * keep
        head = head * keep
        # the signed distance near a cut is approximate; down-weight nothing, keep simple
        sdf = torch.where(keep > 0, sdf, torch.full_like(sdf, -1.0))
    return normalise_intensity(x), head.contiguous(), sdf.contiguous()


# ------------------------------------------------------------------ metrics


def dice_on_grid(
    model: nn.Module,
    crops: CropSet,
    *,
    device: torch.device,
    bf16: bool = False,
    channels_last: bool = False,
    batch_size: int = 32,
) -> dict[str, float]:
    """Mean per-image Dice on the crops' own label grid (``source_size``).

    ``head``: the femoral head (head logit > 0); ``necrosis`` (3-class networks only):
    the necrosis class where it has the largest resized-back logit. Logits are resized
    back with the predictor's resize; an image with neither a true nor a predicted
    region counts as Dice 1.
    """
    model.eval()
    head_dices: list[float] = []
    nec_dices: list[float] = []

    def dice(pred: torch.Tensor, truth: torch.Tensor) -> list[float]:
        inter = (pred & truth).flatten(1).sum(1).float()
        total = (pred.flatten(1).sum(1) + truth.flatten(1).sum(1)).float()
        out = torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))
        return [float(v) for v in out.tolist()]

    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(crops), batch_size):
            x = normalise_intensity(crops.images[start : start + batch_size]).to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            logits = model(x).logits.float().cpu()
            labels = torch.from_numpy(crops.labels[start : start + batch_size])
            back = resize(logits, (int(labels.shape[-2]), int(labels.shape[-1])))
            head_dices += dice(head_logit(back)[:, 0] > 0, labels > 0)
            if back.shape[1] == NECROSIS_CLASSES:
                nec_dices += dice(back.argmax(dim=1) == 2, labels == 2)
    model.train()
    out = {"head": float(np.mean(head_dices))}
    if nec_dices:
        out["necrosis"] = float(np.mean(nec_dices))
    return out


def head_dice_on_grid(
    model: nn.Module,
    crops: CropSet,
    *,
    device: torch.device,
    bf16: bool = False,
    channels_last: bool = False,
    batch_size: int = 32,
) -> float:
    """Mean per-image head Dice of :func:`dice_on_grid`."""
    return dice_on_grid(
        model,
        crops,
        device=device,
        bf16=bf16,
        channels_last=channels_last,
        batch_size=batch_size,
    )["head"]


def class_target(target: torch.Tensor, out_channels: int) -> torch.Tensor:
    """The loss target from ``(B, 2, S, S)`` soft (head, necrosis) maps: the head for a
    binary network, ``(background, viable head, necrosis)`` for a 3-class one."""
    head = target[:, :1]
    if out_channels == 1:
        return head.contiguous()
    necrosis = torch.minimum(target[:, 1:2], head)
    return torch.cat([1.0 - head, head - necrosis, necrosis], dim=1).contiguous()


def make_batch(
    data: CropSet,
    idx: torch.Tensor,
    gen: torch.Generator,
    *,
    synth_share: float,
    noise_gen: torch.Generator | None = None,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One training batch: ``(images (B, 1, S, S) normalised, target (B, 2, S, S) soft
    head and necrosis, sdf (B, 1, S, S))``.

    A ``synth_share`` of the samples (drawn per sample with ``gen``) is synthesised from
    its tissue map (:func:`grading.engine.synthesis.synthesise`, on the CPU); the rest
    are the realistic images through :func:`augment` (on ``device``, default the CPU).
    Without tissue maps every sample is realistic.
    """
    from grading.engine.synthesis import synthesise

    dev = device or torch.device("cpu")
    b = int(idx.shape[0])
    synth = torch.rand(b, generator=gen) < synth_share
    if data.tissue is None:
        synth[:] = False
    target = torch.cat([data.head[idx], data.necrosis_target()[idx]], dim=1)
    sdf = data.sdf[idx]
    real = ~synth
    x_out = torch.empty((b, 1, *data.images.shape[-2:]), device=dev)
    t_out = torch.empty((b, 2, *target.shape[-2:]), device=dev)
    s_out = torch.empty((b, 1, *sdf.shape[-2:]), device=dev)
    if bool(real.any()):
        r = torch.nonzero(real).flatten()
        x, t, d = augment(
            data.images[idx[r]].to(dev),
            target[r].to(dev),
            sdf[r].to(dev),
            gen,
            noise_gen,
        )
        x_out[r.to(dev)], t_out[r.to(dev)], s_out[r.to(dev)] = x, t, d
    if bool(synth.any()):
        assert data.tissue is not None
        k = torch.nonzero(synth).flatten()
        x, t, d = synthesise(data.tissue[idx[k]], target[k], sdf[k], gen)
        x_out[k.to(dev)], t_out[k.to(dev)], s_out[k.to(dev)] = x.to(dev), t.to(dev), d.to(dev)
    return x_out, t_out, s_out


def warm_start(model: nn.Module, weights: Path) -> list[str]:
    """Load exported weights into ``model`` where the shapes allow; returns what was not.

    A binary network's 1-channel output convolutions (the segmentation head and the
    deep-supervision heads) seed a 3-class network's: the viable-head channel takes the
    head's weights, necrosis the same with its bias lowered by 4 (unlikely at first),
    background zeros, so the head probability starts exactly as the binary network's.
    """
    state = torch.load(weights, map_location="cpu", weights_only=True)
    own = model.state_dict()
    skipped: list[str] = []
    for key, value in state.items():
        if key not in own:
            skipped.append(key)
            continue
        target = own[key]
        if target.shape == value.shape:
            own[key] = value
        elif value.shape[:1] == (1,) and target.shape[:1] == (NECROSIS_CLASSES,):
            seeded = torch.zeros_like(target)
            seeded[1] = value[0]
            seeded[2] = value[0]
            if key.endswith("bias"):
                seeded[2] -= 4.0
            own[key] = seeded
        else:
            skipped.append(key)
    model.load_state_dict(own)
    return skipped


# ------------------------------------------------------------------ the loop


@dataclass
class TrainResult:
    model: nn.Module
    config: TrainConfig
    steps: int
    train_seconds: float
    val_dice: float
    cpu_seconds: float
    history: list[dict[str, float]]


def _machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        name = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")),
            platform.processor(),
        )
    except (OSError, subprocess.SubprocessError):
        name = platform.processor()
    machine = f"{name}, {os.cpu_count()} cores"
    if torch.cuda.is_available():
        machine += f"; GPU: {torch.cuda.get_device_name(0)}"
    return machine


def _rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def save_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    step: int,
    elapsed: float,
    gen: torch.Generator,
    history: list[dict[str, float]],
    cpu_seconds: float = math.nan,
    noise_gen: torch.Generator | None = None,
) -> None:
    """A resumable checkpoint: weights, optimizer state, step, elapsed time, RNG states.

    ``elapsed``: training wall-clock seconds; ``cpu_seconds``: process CPU seconds (all
    threads) spent training, the fairer figure on a machine shared with other jobs.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "config": asdict(cfg),
            "step": step,
            "elapsed": elapsed,
            "cpu_seconds": cpu_seconds,
            "generator": gen.get_state(),
            "rng": _rng_state(),
            "history": history,
            **({"noise_generator": noise_gen.get_state()} if noise_gen is not None else {}),
        },
        tmp,
    )
    tmp.replace(path)


def export_weights(model: nn.Module, out: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Write ``out`` (state dict only, loadable with ``weights_only=True``) and its JSON.

    The JSON gets ``sha256`` of the weights file added. Returns the metadata.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().to("cpu", torch.float32).contiguous()
        if v.is_floating_point()
        else v.detach().cpu()
        for k, v in model.state_dict().items()
    }
    torch.save(state, out)
    meta = dict(meta)
    meta["sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    meta["size_bytes"] = out.stat().st_size
    metadata_path(out).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _resolve_flags(cfg: TrainConfig, device: torch.device) -> tuple[bool, bool]:
    bf16 = cfg.bf16 if cfg.bf16 is not None else (device.type == "cpu" and cpu_has_amx())
    cl = (
        cfg.channels_last
        if cfg.channels_last is not None
        else (bf16 or device.type == "cuda" or cfg.model == "linknet")
    )
    return bf16, cl


def train(
    cfg: TrainConfig,
    *,
    out: Path | None = None,
    resume: Path | None = None,
    train_set: CropSet | None = None,
    val_set: CropSet | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train ``cfg.model`` for ``cfg.minutes`` of wall-clock time (data preparation excluded).

    ``out``: a directory for ``checkpoint.pt`` (resumable) and ``<model>.pt`` + ``.json``
    (exported weights and metadata). ``resume``: a checkpoint to continue; its config
    is kept except ``minutes`` and ``max_steps`` (the total budgets) and ``device``. ``train_set`` /
    ``val_set``: prepared crops to share between runs (the benchmark does).
    """
    state: dict[str, Any] | None = None
    if resume is not None:
        state = torch.load(resume, map_location="cpu", weights_only=False)
        # checkpoints written before the necrosis output were binary, all realistic
        old = {"out_channels": 1, "synth_share": 0.0, "extreme_lesion_share": 0.0}
        saved = TrainConfig(**{**old, **state["config"]})
        saved.minutes, saved.max_steps, saved.device = cfg.minutes, cfg.max_steps, cfg.device
        cfg = saved
    device = torch.device(cfg.device)
    threads = cfg.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    seed = cfg.start_seed
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    bf16, channels_last = _resolve_flags(cfg, device)

    t_data = time.perf_counter()
    make: CropMaker | None = None
    if cfg.family != "own":
        from grading.engine.families import load_family

        make = load_family(cfg.family).training_crops
    if train_set is None:
        train_set = load_crops(
            cfg.n_train,
            cfg.train_seed,
            cfg.source_size,
            cfg.input_size,
            workers=threads,
            desc="training phantoms",
            extreme_lesion_share=cfg.extreme_lesion_share,
            midline_share=cfg.midline_share,
            make=make,
        )
        if cfg.n_volume > 0 and make is None:
            train_set = concat_crops(
                train_set,
                load_crops(
                    cfg.n_volume,
                    cfg.train_seed,
                    cfg.source_size,
                    cfg.input_size,
                    workers=threads,
                    desc="coronal/sagittal phantoms",
                    volume=True,
                ),
            )
    if val_set is None:
        val_set = load_crops(
            cfg.n_val,
            cfg.val_seed,
            cfg.source_size,
            cfg.input_size,
            workers=threads,
            desc="validation phantoms",
            make=make,
        )
    data_seconds = time.perf_counter() - t_data
    log(
        f"data: {len(train_set)} training / {len(val_set)} validation crops "
        f"in {data_seconds:.0f} s; bf16={bf16} channels_last={channels_last} threads={threads}"
    )

    model = build_network(cfg.model, **cfg.network_config())
    if cfg.init_weights and state is None:
        skipped = warm_start(model, Path(cfg.init_weights))
        log(f"started from {cfg.init_weights}" + (f"; not loaded: {skipped}" if skipped else ""))
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = SegmentationLoss()
    geometric = has_geometric_path(model)
    gen = torch.Generator().manual_seed(seed)
    noise_gen = gen if device.type == "cpu" else torch.Generator(device=device).manual_seed(seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    step, elapsed, cpu_seconds = 0, 0.0, 0.0
    history: list[dict[str, float]] = []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed = int(state["step"]), float(state["elapsed"])
        cpu_seconds = float(state.get("cpu_seconds", 0.0))  # older checkpoints: from here on
        gen.set_state(state["generator"])
        if noise_gen is not gen and "noise_generator" in state:
            noise_gen.set_state(state["noise_generator"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        history = list(state["history"])
        log(f"resumed at step {step}, {elapsed:.0f} s of {cfg.minutes * 60:.0f} s")

    budget = cfg.minutes * 60.0
    n = len(train_set)
    order = torch.randperm(n, generator=gen)
    cursor = (step * cfg.batch_size) % n
    last_val = elapsed
    val_dice = float("nan")
    bar = tqdm(
        total=int(budget),
        initial=int(min(elapsed, budget)),
        unit="s",
        desc=f"train {cfg.model}",
        disable=not progress,
        dynamic_ncols=True,
    )
    ema_loss: float | None = None
    t_last = time.perf_counter()
    cpu_last = time.process_time()
    rate_steps, rate_t = 0, 0.0
    model.train()

    def finished() -> bool:
        return elapsed >= budget or (cfg.max_steps is not None and step >= cfg.max_steps)

    while not finished():
        if cursor + cfg.batch_size > n:
            order, cursor = torch.randperm(n, generator=gen), 0
        idx = order[cursor : cursor + cfg.batch_size]
        cursor += cfg.batch_size
        x, maps, sdf = make_batch(
            train_set,
            idx,
            gen,
            synth_share=cfg.synth_share,
            noise_gen=noise_gen,
            device=device,
        )
        target = class_target(maps, cfg.out_channels)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        frac = elapsed / budget
        if cfg.max_steps is not None:
            frac = max(frac, step / cfg.max_steps)
        warm = min(1.0, (elapsed + 1.0) / cfg.warmup_s)
        lr = cfg.lr * warm * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            output = model(x)
        loss, parts = loss_fn(output, target, sdf if geometric else None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1

        now = time.perf_counter()
        dt_s = now - t_last
        t_last = now
        elapsed += dt_s
        cpu_now = time.process_time()
        cpu_seconds += cpu_now - cpu_last
        cpu_last = cpu_now
        rate_steps, rate_t = rate_steps + 1, rate_t + dt_s
        value = float(loss.detach())
        ema_loss = value if ema_loss is None else 0.95 * ema_loss + 0.05 * value
        if elapsed - last_val >= cfg.val_every_s or finished():
            t0 = time.perf_counter()
            val = dice_on_grid(
                model, val_set, device=device, bf16=bf16, channels_last=channels_last
            )
            val_dice = val["head"]
            history.append(
                {
                    "step": step,
                    "elapsed_s": round(elapsed, 1),
                    "cpu_s": round(cpu_seconds, 1),
                    "loss": round(ema_loss, 5),
                    "val_head_dice": round(val_dice, 5),
                    **(
                        {"val_necrosis_dice": round(val["necrosis"], 5)}
                        if "necrosis" in val
                        else {}
                    ),
                    **{k: round(float(v.detach()), 5) for k, v in parts.items()},
                }
            )
            last_val = elapsed
            if out is not None:
                save_checkpoint(
                    out / "checkpoint.pt",
                    model=model,
                    optimizer=optimizer,
                    cfg=cfg,
                    step=step,
                    elapsed=elapsed,
                    gen=gen,
                    history=history,
                    cpu_seconds=cpu_seconds,
                    noise_gen=None if noise_gen is gen else noise_gen,
                )
            t_last += time.perf_counter() - t0  # validation is not training time
            cpu_last = time.process_time()
            if not progress:
                log(f"step {step} {elapsed:.0f}s loss {ema_loss:.4f} val dice {val_dice:.4f}")
        bar.n = int(min(elapsed, budget))
        bar.set_postfix(
            step=step,
            loss=f"{ema_loss:.4f}",
            steps_s=f"{rate_steps / max(rate_t, 1e-9):.2f}",
            val_dice=f"{val_dice:.4f}",
            refresh=False,
        )
        bar.update(0)
    bar.close()
    if math.isnan(val_dice):
        val_dice = head_dice_on_grid(
            model, val_set, device=device, bf16=bf16, channels_last=channels_last
        )
    model = model.to(memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]
    result = TrainResult(
        model=model,
        config=cfg,
        steps=step,
        train_seconds=elapsed,
        val_dice=val_dice,
        cpu_seconds=cpu_seconds,
        history=history,
    )
    if out is not None:
        meta = training_metadata(result, data_seconds=data_seconds)
        export_weights(model, out / f"{cfg.model}.pt", meta)
        log(f"wrote {out / (cfg.model + '.pt')} (val head Dice {val_dice:.4f}, {step} steps)")
    return result


def training_metadata(result: TrainResult, *, data_seconds: float | None = None) -> dict[str, Any]:
    """The JSON that travels with exported weights (see docs/model-card.md)."""
    cfg = result.config
    try:
        phantom_digest = _phantom_source_digest()
    except Exception:  # the phantom package is optional for exported metadata
        phantom_digest = "unknown"
    return {
        "model": cfg.model,
        "config": cfg.network_config(),
        "input_size": cfg.input_size,
        "normalisation": {
            "method": "per-image percentiles mapped to 0 and 1",
            "percentiles": [1.0, 99.0],
        },
        "resize": "torch bilinear, align_corners=False, antialiased when shrinking; "
        "logits resized back to each image's grid, then sigmoid",
        "output": (
            "softmax background, viable head (label 1), necrosis (label 2); "
            "head probability = viable + necrosis"
            if cfg.out_channels == NECROSIS_CLASSES
            else "femoral head (labels 1 + 2) probability"
        ),
        "training_data": {
            "family": cfg.family,
            "generator": "grading.engine.phantoms.make_training_crops_with_tissue"
            if cfg.family == "own"
            else f"{cfg.family} family (grading.engine.families)",
            "generator_source_sha256_16": phantom_digest,
            "n_train": cfg.n_train,
            "train_seed": cfg.train_seed,
            "init_seed": cfg.start_seed,
            "chunking": f"chunks of {CHUNK}, chunk k seeded seed * 10007 + k",
            "source_size": cfg.source_size,
            "n_val": cfg.n_val,
            "val_seed": cfg.val_seed,
            "extreme_lesion_share": cfg.extreme_lesion_share,
            "synth_share": cfg.synth_share,
            "midline_share": cfg.midline_share,
            "n_volume": cfg.n_volume,
            "volume_generator": "grading.engine.phantoms.volume_crops.make_volume_training_crops "
            "(coronal 70 % / sagittal 30 % T1 windows of the 3-D phantom)"
            if cfg.n_volume
            else None,
            "synthesis": "grading.engine.synthesis.synthesise (SynthSeg-style: random "
            "intensity per tissue class, deformation, blur, bias field, noise, gamma)",
            "init_weights": cfg.init_weights,
        },
        "training": {
            "steps": result.steps,
            "train_seconds": round(result.train_seconds, 1),
            "train_cpu_seconds": round(result.cpu_seconds, 1),
            "data_seconds": None if data_seconds is None else round(data_seconds, 1),
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "minutes": cfg.minutes,
            "device": cfg.device,
            "machine": _machine(),
            "torch": torch.__version__,
        },
        "metrics": {"val_head_dice": round(result.val_dice, 5)},
        "history": result.history,
        "date": dt.date.today().isoformat(),
    }
