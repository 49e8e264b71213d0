"""Scanner effects on a rendered T1 signal: coil shading, blur, Rician noise, stored ranges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt
from scipy import fft, ndimage

from grading.engine.phantoms.anatomy import Pelvis
from grading.engine.phantoms.render import PlaneGrid

F32 = npt.NDArray[np.float32]

# Stored-value ranges seen from different scanners and reconstructions.
INTENSITY_MAXIMA: tuple[int, ...] = (1000, 4095, 30000)


@dataclass(frozen=True)
class Acquisition:
    """How one series was acquired and stored.

    ``snr``: mean femoral head marrow signal over the noise sigma (before
    shading). ``kspace_fraction``: share of the spatial frequencies acquired
    along each axis (the rest zero-filled: blur and faint ringing). ``scale``: stored value of
    unit (fat) signal. ``intensity_max``: the largest stored value.
    ``bias``: coefficients of the smooth multiplicative coil shading.
    """

    snr: float
    kspace_fraction: float
    intensity_max: int
    scale: float
    bias: tuple[float, ...]
    bias_gain: float = 1.0
    """How strong the coil shading is (1: the gentle shading of body-array coils; up to
    2.5: a surface coil close to the skin)."""
    taper: float = 0.35
    """Share of the kept frequencies over which k-space is tapered: small values ring
    (Gibbs) at sharp edges such as the cortex."""
    chemical_shift_px: float = 0.0
    """Fat signal displaced by this many pixels along the frequency-encoding axis
    (``frequency_axis``: 0 rows, 1 columns; sign gives the direction): chemical-shift
    misregistration, a dark rim on one side of a fat/water edge and a bright one on
    the other. 0: none (fat-water in phase and a wide bandwidth)."""
    frequency_axis: int = 1


def sample_acquisition(
    rng: np.random.Generator, *, snr: float | None = None, intensity_max: int | None = None
) -> Acquisition:
    top = int(intensity_max if intensity_max is not None else rng.choice(INTENSITY_MAXIMA))
    # scanner artefacts from a stream of their own (``rng`` is left where it is)
    extra = np.random.Generator(cast(np.random.PCG64, rng.bit_generator).jumped(2))
    shifted = extra.uniform() < 0.7
    shift = float(extra.uniform(0.5, 2.0) * extra.choice([-1.0, 1.0])) if shifted else 0.0
    return Acquisition(
        snr=float(snr if snr is not None else np.exp(rng.uniform(np.log(8.0), np.log(40.0)))),
        kspace_fraction=float(rng.uniform(0.6, 0.95)),
        intensity_max=top,
        scale=float(top * rng.uniform(0.4, 0.7)),
        bias=tuple(float(c) for c in rng.normal(0.0, 1.0, 7)),
        bias_gain=float(extra.uniform(1.0, 2.5)) if extra.uniform() < 0.5 else 1.0,
        taper=float(extra.uniform(0.05, 0.35)) if extra.uniform() < 0.5 else _TAPER,
        chemical_shift_px=shift,
        frequency_axis=int(extra.integers(2)),
    )


def bias_field(acq: Acquisition, pelvis: Pelvis, grid: PlaneGrid) -> F32:
    """Smooth multiplicative shading, ``(H, W)`` float32 around 1, continuous in 3-D.

    Phased-array coils in front of and behind the pelvis: brighter near the skin,
    darker in the middle, plus a random gentle tilt.
    """
    full = (slice(0, grid.shape[0]), slice(0, grid.shape[1]))
    u, v = grid.coords(full)
    c = acq.bias
    hw = pelvis.half_width
    vc = 0.5 * (pelvis.ant + pelvis.post)
    hd = 0.5 * (pelvis.post - pelvis.ant)
    un, vn, wn = u / hw, (v - vc) / hd, grid.w / 150.0
    log_b = (
        0.12 * c[0] * un
        + 0.12 * c[1] * vn
        + 0.08 * c[2] * wn
        + 0.05 * c[3] * un * vn
        + (0.18 + 0.06 * c[4]) * vn * vn
        - (0.1 + 0.05 * c[5]) * un * un * 0.5
        + 0.04 * c[6] * un * un * un
    )
    gain = acq.bias_gain
    out: F32 = np.exp(np.clip(gain * log_b, -0.6 * gain, 0.6 * gain)).astype(np.float32)
    return out


def acquire(
    signal: F32,
    acq: Acquisition,
    bias: F32,
    rng: np.random.Generator,
    *,
    marrow: float,
    noise_scale: float = 1.0,
    tissue: npt.NDArray[np.uint8] | None = None,
) -> F32:
    """Stored values of one plane: ``(H, W)`` float32, whole numbers in ``[0, intensity_max]``.

    ``noise_scale`` shrinks the noise when the plane is drawn coarser than the
    acquisition grid (averaging pixels averages noise). ``tissue``: the plane's
    ``(H, W)`` :class:`~.tissues.TissueClass` map; with it the fat part of each
    tissue's signal (:data:`FAT_FRACTION`) is displaced by ``acq.chemical_shift_px``.
    """
    h, w = signal.shape
    if tissue is not None and acq.chemical_shift_px:
        signal = chemical_shift(signal, tissue, acq.chemical_shift_px, acq.frequency_axis)
    padded = (fft.next_fast_len(h), fft.next_fast_len(w))
    window = _kspace_window(padded, acq.kspace_fraction, acq.taper)
    # complex receiver noise before reconstruction; the window filters it too, so
    # scale it up to keep the requested SNR in the image
    sigma = marrow / acq.snr * noise_scale / float(np.sqrt(np.mean(window**2)))
    noisy = (signal * bias).astype(np.complex64)
    noisy.real += sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    noisy.imag += sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    spectrum = fft.fft2(noisy, s=padded) * window
    image = np.abs(fft.ifft2(spectrum)[:h, :w])  # magnitude image: Rician noise
    out: F32 = np.clip(np.rint(image * acq.scale), 0, acq.intensity_max).astype(np.float32)
    return out


def _fat_fraction_table() -> F32:
    from grading.engine.phantoms.tissues import N_TISSUE_CLASSES
    from grading.engine.phantoms.tissues import TissueClass as T

    table = np.zeros(max(N_TISSUE_CLASSES, 256), np.float32)
    for cls, fraction in {
        T.FAT: 1.0,
        T.PULVINAR_FAT: 1.0,
        T.SKIN: 0.3,
        T.MUSCLE: 0.05,
        T.FEMUR_MARROW: 0.85,
        T.HEAD_MARROW: 0.85,
        T.PELVIC_MARROW: 0.7,
        T.RED_MARROW: 0.4,
        T.COMPRESSIVE_TRABECULAE: 0.8,
        T.OEDEMA: 0.6,
        T.LESION_FAT_LIKE: 0.7,
        T.LIGAMENTUM_TERES: 0.2,
    }.items():
        table[int(cls)] = fraction
    return table


FAT_FRACTION = _fat_fraction_table()
"""Share of each :class:`~.tissues.TissueClass`'s T1 signal that comes from fat
(yellow marrow about 80-90 % fat, red marrow about 40 %, muscle a few per cent)."""


def chemical_shift(signal: F32, tissue: npt.NDArray[np.uint8], pixels: float, axis: int) -> F32:
    """``signal`` ``(H, W)`` with its fat part displaced ``pixels`` along ``axis``
    (linear interpolation): chemical-shift misregistration of the first kind."""
    fraction = FAT_FRACTION[tissue]
    fat = signal * fraction
    offset = [0.0, 0.0]
    offset[axis] = pixels
    moved = ndimage.shift(fat, offset, order=1, mode="nearest")
    out: F32 = (signal - fat + moved).astype(np.float32)
    return out


def _kspace_window(shape: tuple[int, ...], fraction: float, taper: float = 0.35) -> F32:
    """Separable apodised truncation of k-space, ``shape`` float32 (FFT order).

    Keeps ``fraction`` of the spatial frequencies along each axis with a cosine
    taper over the outer third of them: the finite acquisition matrix of a real
    scan (partial-volume blur and faint ringing at sharp edges).
    """
    axes = []
    for n in shape[:2]:
        k = np.abs(np.fft.fftfreq(n)) / 0.5  # 0 at DC, 1 at Nyquist
        flat = fraction * (1.0 - taper)
        ramp = np.clip((k - flat) / (fraction * taper), 0.0, 1.0)
        axes.append((0.5 + 0.5 * np.cos(np.pi * ramp)).astype(np.float32))
    out: F32 = axes[0][:, None] * axes[1][None, :]
    return out


_TAPER = 0.35
