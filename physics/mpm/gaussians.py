"""PhysGaussian outputs: per-particle rotations R = polar(F) and deformed covariances."""

from __future__ import annotations

import numpy as np
import warp as wp


@wp.kernel
def polar_rotation(F: wp.array(dtype=wp.mat33), R: wp.array(dtype=wp.mat33)):
    """Rotation factor of the polar decomposition F = R S, from the SVD F = U S V^T: R = U V^T."""
    p = wp.tid()
    U, sigma, V = wp.svd3(F[p])
    R[p] = U * wp.transpose(V)


def rotations(F: wp.array) -> np.ndarray:
    """(N, 3, 3) rotations polar(F) of deformation gradients ``F`` (a Warp mat33 array)."""
    R = wp.empty_like(F)
    wp.launch(polar_rotation, dim=F.shape[0], inputs=[F], outputs=[R], device=F.device)
    return R.numpy().astype(np.float64)
