"""Scanner effects on a rendered T1 signal: coil shading, blur, Rician noise, stored ranges."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import fft

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


def sample_acquisition(
    rng: np.random.Generator, *, snr: float | None = None, intensity_max: int | None = None
) -> Acquisition:
    top = int(intensity_max if intensity_max is not None else rng.choice(INTENSITY_MAXIMA))
    return Acquisition(
        snr=float(snr if snr is not None else np.exp(rng.uniform(np.log(8.0), np.log(40.0)))),
        kspace_fraction=float(rng.uniform(0.6, 0.95)),
        intensity_max=top,
        scale=float(top * rng.uniform(0.4, 0.7)),
        bias=tuple(float(c) for c in rng.normal(0.0, 1.0, 7)),
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
    out: F32 = np.exp(np.clip(log_b, -0.6, 0.6)).astype(np.float32)
    return out


def acquire(
    signal: F32,
    acq: Acquisition,
    bias: F32,
    rng: np.random.Generator,
    *,
    marrow: float,
    noise_scale: float = 1.0,
) -> F32:
    """Stored values of one plane: ``(H, W)`` float32, whole numbers in ``[0, intensity_max]``.

    ``noise_scale`` shrinks the noise when the plane is drawn coarser than the
    acquisition grid (averaging pixels averages noise).
    """
    h, w = signal.shape
    padded = (fft.next_fast_len(h), fft.next_fast_len(w))
    window = _kspace_window(padded, acq.kspace_fraction)
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


def _kspace_window(shape: tuple[int, ...], fraction: float) -> F32:
    """Separable apodised truncation of k-space, ``shape`` float32 (FFT order).

    Keeps ``fraction`` of the spatial frequencies along each axis with a cosine
    taper over the outer third of them: the finite acquisition matrix of a real
    scan (partial-volume blur and faint ringing at sharp edges).
    """
    axes = []
    for n in shape[:2]:
        k = np.abs(np.fft.fftfreq(n)) / 0.5  # 0 at DC, 1 at Nyquist
        flat = fraction * (1.0 - _TAPER)
        ramp = np.clip((k - flat) / (fraction * _TAPER), 0.0, 1.0)
        axes.append((0.5 + 0.5 * np.cos(np.pi * ramp)).astype(np.float32))
    out: F32 = axes[0][:, None] * axes[1][None, :]
    return out


_TAPER = 0.35
