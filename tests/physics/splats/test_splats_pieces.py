"""engine=modal on a splat of separate pieces: one modal model per piece, no rigid or near-zero modes."""

from __future__ import annotations

import numpy as np

from physics.mpm.materials import FixedCorotated
from physics.splats import GaussianSplats, PlyFile, box_splats
from physics.splats.pieces import modal_pieces
from physics.splats.solid import solid_fill


def pieces_splats() -> GaussianSplats:
    """Two posts and a cube apart from each other, plus one Gaussian floating alone (metres)."""
    rng = np.random.default_rng(0)
    parts = [box_splats((0.0, 0.0, 0.0), (0.04, 0.04, 0.16), 0.008, rng),
             box_splats((0.1, 0.0, 0.0), (0.14, 0.04, 0.12), 0.008, rng),
             box_splats((0.0, 0.1, 0.05), (0.05, 0.15, 0.1), 0.008, rng)]
    vertex = np.concatenate([p.ply.vertex for p in parts] + [parts[0].ply.vertex[:1]])
    vertex["x"][-1], vertex["y"][-1], vertex["z"][-1] = 0.2, 0.2, 0.3
    return GaussianSplats(PlyFile(vertex))


def test_each_piece_gets_its_own_modes_without_near_zero_ones():
    splats = pieces_splats()
    fill = solid_fill(splats, 0.004)
    jelly = FixedCorotated(2e4, 0.3, 1000.0)
    for fixed in ("bottom", "none"):
        pieces = modal_pieces(splats, fill, jelly, 8, np.array([0.0, 0.0, -9.81]), fixed=fixed,
                              poke=(np.array([0.02, 0.02, 0.16]), 0.03, np.array([0.05, 0.0, 0.0])))
        assert len(pieces.pieces) == 3 and pieces.held.sum() == 1  # the lone Gaussian is too small to mesh
        f = np.array(pieces.frequencies_hz)
        assert len(f) == 24 and f.min() > 0.5  # jelly pieces of a few cm: no rigid-motion modes near 0 Hz
        owners = np.concatenate([p.rows for p in pieces.pieces])
        assert len(np.unique(owners)) == len(owners) == len(splats) - 1
        size = float(np.ptp(splats.positions[:-1], axis=0).max())
        worst = 0.0
        for _ in range(30):
            pieces.advance(1 / 30)
            u, F = pieces.state()
            worst = max(worst, float(np.linalg.norm(u, axis=1).max()))
            assert np.all(np.isfinite(F)) and np.all(np.linalg.det(F) > 0.5)
        assert 0.0 < worst < 0.2 * size  # the pieces sway; nothing is flung
        assert np.all(pieces.state()[0][pieces.held] == 0.0)
