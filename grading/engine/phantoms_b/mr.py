"""T1 spin-echo signal of the tissue classes and the acquisition effects.

Signal: ``S = PD (1 - exp(-TR/T1)) exp(-TE/T2)`` per tissue (relaxation times at 1.5 T
and 3 T from ``docs/phantoms-b-spec.md``), fat-fraction mixtures in marrow. Acquisition:
a phased-array coil bias field, truncated and zero-filled k-space (blurring and Gibbs
ringing), phase-direction motion ghosts, complex Gaussian noise (a Rician magnitude), a
scanner gain and integer stored values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from grading.engine.phantoms_b import anatomy as an
from grading.engine.phantoms_b.geometry import F32

# name: (PD, T1 at 1.5 T, T1 at 3 T, T2 at 1.5 T, T2 at 3 T), times in ms
RELAXATION: dict[str, tuple[float, float, float, float, float]] = {
    "fat": (0.95, 260, 380, 80, 70),
    "red marrow": (0.80, 550, 700, 50, 45),
    "muscle": (0.75, 870, 1420, 45, 32),
    "cartilage": (0.75, 1000, 1200, 40, 35),
    "fluid": (1.00, 3000, 4000, 1500, 1200),
    "cortex": (0.05, 1000, 1200, 1, 1),
    "tendon": (0.30, 1000, 1200, 10, 8),
    "flow void": (0.05, 1000, 1200, 50, 50),
    "slow vein": (0.90, 1300, 1900, 150, 150),
    "band": (0.35, 1000, 1300, 30, 28),
    "blood": (0.90, 400, 500, 60, 50),
    "oedema water": (0.90, 1100, 1400, 70, 60),
    "viscera": (0.80, 900, 1300, 60, 50),
    "skin": (0.70, 700, 900, 40, 35),
}


@dataclass(frozen=True)
class Sequence:
    field_t: float  # 1.5 or 3.0
    tr_ms: float
    te_ms: float

    def signal(self, tissue: str) -> float:
        pd, t1a, t1b, t2a, t2b = RELAXATION[tissue]
        t1, t2 = (t1a, t2a) if self.field_t < 2 else (t1b, t2b)
        return pd * (1 - math.exp(-self.tr_ms / t1)) * math.exp(-self.te_ms / t2)


@dataclass(frozen=True)
class Acquisition:
    sequence: Sequence
    k_fraction: tuple[float, float]  # acquired fraction of k-space: phase (rows), frequency
    ghost: tuple[float, float]  # motion ghost amplitude (0: none), period in k-space lines
    snr: float  # fat signal / noise standard deviation
    gain: float  # stored value of unit fat signal
    coils: tuple[float, float, float]  # anterior y, posterior y, element spread (mm)


def draw_acquisition(rng: np.random.Generator, body: tuple[float, float, float]) -> Acquisition:
    field = 1.5 if rng.random() < 0.6 else 3.0
    seq = Sequence(
        field, rng.uniform(400, 700), rng.uniform(8, 20) if field < 2 else rng.uniform(8, 15)
    )
    half_w, half_d, yb = body
    moving = rng.random() < 0.4
    return Acquisition(
        sequence=seq,
        k_fraction=(rng.uniform(0.55, 0.85), rng.uniform(0.8, 1.0)),
        ghost=(rng.uniform(0.01, 0.06) if moving else 0.0, rng.uniform(3, 9)),
        snr=rng.uniform(15, 60) * (1.4 if field > 2 else 1.0),
        gain=rng.uniform(1000, 3000) / seq.signal("fat"),
        coils=(yb - half_d - 10, yb + half_d + 10, rng.uniform(90, 150)),
    )


_STYLE_TISSUE = {"blood": "blood", "fluid": "fluid", "fibrous": "band"}


def object_signal(
    seq: Sequence,
    a: an.Anatomy,
    tissue: npt.NDArray[np.uint8],
    aux: F32,
    hipmap: npt.NDArray[np.int8],
) -> F32:
    """Noise-free T1 signal (fat ~ 0.3-0.5) of sampled tissue (arrays of one shape)."""
    s = seq.signal
    table = np.zeros(len(an.TISSUES), np.float32)
    for cls, name in (
        (an.FAT, "fat"), (an.MUSCLE, "muscle"), (an.CORTEX, "cortex"),
        (an.CARTILAGE, "cartilage"), (an.FLUID, "fluid"), (an.URINE, "fluid"),
        (an.VISCERA, "viscera"), (an.TENDON, "tendon"), (an.BAND, "band"), (an.SKIN, "skin"),
    ):  # fmt: skip
        table[cls] = s(name)
    out = table[tissue]
    muscle = tissue == an.MUSCLE
    out[muscle] *= (1 + np.float32(0.08) * aux)[muscle]
    fat, red = np.float32(s("fat")), np.float32(s("red marrow"))
    marrow = (tissue == an.YELLOW) | (tissue == an.RED)
    out[marrow] = (aux * fat + (1 - aux) * red)[marrow]
    oedema = tissue == an.OEDEMA
    out[oedema] = (aux * fat + (1 - aux) * np.float32(s("oedema water")))[oedema]
    vessel = tissue == an.VESSEL
    out[vessel] = np.where(aux > 0.5, s("slow vein"), s("flow void"))[vessel]
    for index, hip in enumerate(a.hips):
        if hip.lesion is None:
            continue
        inside = (tissue == an.NECROTIC) & (hipmap == index)
        first, second = (
            s(_STYLE_TISSUE[st]) if st in _STYLE_TISSUE else 0.9 * s("fat") + 0.1 * s("red marrow")
            for st in hip.lesion.styles
        )
        out[inside] = (first * (1 - aux) + second * aux)[inside]
    return out


def bias_field(acq: Acquisition, x: F32, y: F32) -> F32:
    """Receive sensitivity (about 0.55-1.5) of anterior and posterior coil arrays at (x, y) mm."""
    y_ant, y_post, spread = acq.coils
    total = np.zeros(np.shape(x), np.float32)
    for yc in (y_ant, y_post):
        for xc in (-spread, 0.0, spread):
            d2 = (x - xc) ** 2 + (y - yc) ** 2
            total += 1.0 / (1.0 + d2 / np.float32(spread**2)) ** 2
    rms = np.sqrt(total)
    return np.clip(rms / np.float32(np.sqrt(2 * 0.25) * 1.3), 0.55, 1.5).astype(np.float32)


def acquire(obj: F32, acq: Acquisition, bias: F32, rng: np.random.Generator) -> F32:
    """Stored values (integers as float32, 0..32767) of a ``(H, W)`` object signal image."""
    h, w = obj.shape
    k = np.fft.fftshift(np.fft.fft2(obj * bias))
    ky = np.arange(h) - h // 2
    kx = np.arange(w) - w // 2
    keep_y = np.abs(ky) <= acq.k_fraction[0] * h / 2
    keep_x = np.abs(kx) <= acq.k_fraction[1] * w / 2
    k *= (keep_y[:, None] & keep_x[None, :]).astype(np.float32)
    amp, period = acq.ghost
    if amp > 0:
        # periodic motion modulates the phase-encode lines: ghosts along the phase direction
        k *= (1 - amp + amp * np.cos(2 * np.pi * ky / period))[:, None]
    img = np.fft.ifft2(np.fft.ifftshift(k))
    sigma = acq.sequence.signal("fat") / acq.snr
    noisy = img + sigma * (rng.standard_normal((h, w)) + 1j * rng.standard_normal((h, w)))
    return np.clip(np.rint(np.abs(noisy) * acq.gain), 0, 32767).astype(np.float32)
