"""Spectral modes from point tracks (Davis et al. 2015; Generative Image Dynamics, CVPR 2024).

Tracks ``(T, N, 3)`` sampled at ``fps`` are centred on their mean position; the temporal
FFT of each point's displacement is its spectrum. The *spectral volume* keeps the ``K``
lowest non-zero frequency bins (GID uses K = 16). Resonances are the peaks of the power
summed over points (Hann window, parabolic interpolation of the log power between bins
for sub-bin accuracy); the complex FFT coefficients at a peak, rotated to their dominant
phase, form a real point-space mode shape. Damping ratios come from the decay of each
mode's coordinate (least-squares projection of the motion on the shapes, Hilbert
envelope). The result is a :class:`~physics.modal.model.Modes` that drives
:class:`~physics.modal.dynamics.ModalDynamics` like FEM modes: a force ``F`` at point
``p`` excites mode ``i`` with ``phi_i(p) . F``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import find_peaks, hilbert

from .model import Modes

__all__ = ["SpectralVolume", "spectral_volume", "spectral_modes"]


@dataclass(frozen=True)
class SpectralVolume:
    """``coefficients`` (K, N, 3) complex: the FFT of each point's displacement at ``frequencies_hz`` (K,)."""

    frequencies_hz: NDArray[np.float64]
    coefficients: NDArray[np.complex128]


def _displacements(tracks: ArrayLike, fps: float) -> NDArray[np.float64]:
    x = np.asarray(tracks, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != 3 or x.shape[0] < 8:
        raise ValueError(f"tracks must have shape (T, N, 3) with T >= 8 frames, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("tracks contain NaN or inf")
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    return x - x.mean(axis=0)


def spectral_volume(tracks: ArrayLike, fps: float, num_coefficients: int = 16) -> SpectralVolume:
    """The ``num_coefficients`` lowest non-zero frequency FFT coefficients of every track."""
    d = _displacements(tracks, fps)
    bins = d.shape[0] // 2
    if not 1 <= num_coefficients <= bins:
        raise ValueError(f"num_coefficients must be in [1, {bins}] for {d.shape[0]} frames, got {num_coefficients}")
    spectrum = np.fft.rfft(d, axis=0)[1 : num_coefficients + 1] / d.shape[0]
    freqs = np.fft.rfftfreq(d.shape[0], 1.0 / fps)[1 : num_coefficients + 1]
    return SpectralVolume(frequencies_hz=freqs, coefficients=spectrum)


def spectral_modes(
    tracks: ArrayLike,
    fps: float,
    num_modes: int = 4,
    min_hz: float = 0.0,
    max_hz: float | None = None,
    pad: int = 4,
) -> Modes:
    """Resonant modes picked from the power spectrum of ``tracks`` (T, N, 3) at ``fps``.

    Returns up to ``num_modes`` modes between ``min_hz`` and ``max_hz`` (default Nyquist),
    strongest peaks, ordered by frequency; shapes (k, N, 3) have unit norm, damping ratios
    are estimated. ``pad`` zero-pads the FFT (finer bins for peak picking).
    """
    d = _displacements(tracks, fps)
    if num_modes < 1:
        raise ValueError(f"num_modes must be >= 1, got {num_modes}")
    frames = d.shape[0]
    window = np.hanning(frames)[:, None, None]
    spectrum = np.fft.rfft(d * window, n=pad * frames, axis=0)
    freqs = np.fft.rfftfreq(pad * frames, 1.0 / fps)
    power = np.sum(np.abs(spectrum) ** 2, axis=(1, 2))
    band = (freqs > max(min_hz, fps / frames)) & (freqs <= (max_hz if max_hz is not None else fps / 2))
    peaks, props = find_peaks(np.where(band, power, 0.0), prominence=1e-6 * power[band].max() if band.any() else 0.0)
    if len(peaks) == 0:
        raise ValueError("no resonance found in the tracks (are they moving within the frequency band?)")
    peaks = np.sort(peaks[np.argsort(props["prominences"])[::-1][:num_modes]])
    log_p = np.log(power + 1e-300)
    left, mid, right = log_p[peaks - 1], log_p[peaks], log_p[np.minimum(peaks + 1, len(power) - 1)]
    offset = 0.5 * (left - right) / np.where(left - 2 * mid + right != 0, left - 2 * mid + right, -1.0)
    frequencies = freqs[peaks] + np.clip(offset, -0.5, 0.5) * (freqs[1] - freqs[0])
    shapes = []
    for c in spectrum[peaks]:  # (N, 3) complex per peak
        phase = 0.5 * np.angle(np.sum(c**2))  # rotation making the coefficients most nearly real
        real = np.real(c * np.exp(-1j * phase))
        shapes.append(real / np.linalg.norm(real))
    shapes = np.array(shapes)
    return Modes(
        frequencies_hz=frequencies,
        node_shapes=shapes,
        num_vertices=d.shape[1],
        damping_ratios=_damping_ratios(d, shapes, frequencies, fps),
    )


def _damping_ratios(
    d: NDArray[np.float64], shapes: NDArray[np.float64], frequencies: NDArray[np.float64], fps: float
) -> NDArray[np.float64]:
    """Ratios from the log-slope of each modal coordinate's Hilbert envelope (0 when not decaying)."""
    basis = shapes.reshape(len(shapes), -1).T  # (3N, k)
    q = np.linalg.lstsq(basis, d.reshape(d.shape[0], -1).T, rcond=None)[0]  # (k, T)
    t = np.arange(d.shape[0]) / fps
    keep = slice(d.shape[0] // 10, d.shape[0] - d.shape[0] // 10)  # Hilbert transform edges ring
    ratios = []
    for qi, f in zip(q, frequencies, strict=True):
        envelope = np.abs(hilbert(qi - qi.mean()))[keep]
        slope = np.polyfit(t[keep], np.log(np.maximum(envelope, 1e-300)), 1)[0]
        ratios.append(max(-slope, 0.0) / (2 * np.pi * f))
    return np.array(ratios)
