"""PhysGaussian outputs: per-particle rotations R = polar(F) and deformed covariances."""

from __future__ import annotations

import numpy as np
import warp as wp


@wp.kernel
def polar_rotation(F: wp.array(dtype=wp.mat33), R: wp.array(dtype=wp.mat33)):
    """Rotation factor of the polar decomposition F = R S, from the SVD F = U S V^T: R = U V^T; for an
    inverted F (det U V^T = -1) the nearest proper rotation, U's column of the least stretch negated."""
    p = wp.tid()
    U, sigma, V = wp.svd3(F[p])
    if wp.determinant(U * wp.transpose(V)) < 0.0:
        k = 0
        if sigma[1] < sigma[k]:
            k = 1
        if sigma[2] < sigma[k]:
            k = 2
        flip = wp.vec3(1.0, 1.0, 1.0)
        flip[k] = -1.0
        U = U * wp.diag(flip)
    R[p] = U * wp.transpose(V)


def rotations(F: wp.array) -> np.ndarray:
    """(N, 3, 3) proper rotations polar(F) of deformation gradients ``F`` (a Warp mat33 array)."""
    R = wp.empty_like(F)
    wp.launch(polar_rotation, dim=F.shape[0], inputs=[F], outputs=[R], device=F.device)
    return R.numpy().astype(np.float64)
