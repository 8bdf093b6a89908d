"""Modal solver speed: 20-mode eigen-solve against scipy's default shift-invert, and superposition.

Run: ``.venv/bin/python benchmarks/bench_modal.py [--sizes 19k,60k] [--repeat 1]``

Eigen-solve: an aluminium cantilever (0.8 x 0.06 x 0.03 m) meshed with linear tets at
~19k and ~60k free DOFs (and quadratic tets at ~19k). Both sides get the same reduced K
and M (assembly excluded on both sides); ours is ``ModalModel.solve(20)`` on a fresh
model (ordering, factorisation, Lanczos, Rayleigh-Ritz), scipy's is
``eigsh(K, 20, M=M, sigma=0)`` with its default SuperLU factorisation. Frequencies are
compared, the ratio printed. Superposition: displacements and deformation gradients of
P points x k modes over a batch of frames, in points*modes*frames per second.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.sparse.linalg import eigsh

from physics.modal import ModalModel, box_tet_mesh
from physics.modal.eigen import single_threaded_blas
from physics.modal.embedding import PointEmbedding, PointModes

SIZE = (0.8, 0.06, 0.03)
CASES = {  # name: (cells, order)
    "19k": ((100, 10, 5), 1),
    "60k": ((144, 14, 8), 1),
    "19k-quadratic": ((36, 6, 3), 2),
}


def cantilever(cells: tuple[int, int, int], order: int, backend: str = "auto") -> ModalModel:
    vertices, tets = box_tet_mesh(SIZE, cells)
    return ModalModel(vertices, tets, 70e9, 0.33, 2700.0, fixed=vertices[:, 0] < 1e-9, order=order, backend=backend)


def bench_eigensolve(name: str, repeat: int, backend: str) -> None:
    cells, order = CASES[name]
    model = cantilever(cells, order, backend)
    K, M = model._k_free, model._m_free
    ours, theirs = [], []
    for _ in range(repeat):
        fresh = cantilever(cells, order, backend)
        t0 = time.perf_counter()
        modes = fresh.solve(20)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        vals, _ = eigsh(K, 20, M=M, sigma=0)
        theirs.append(time.perf_counter() - t0)
    f_ref = np.sqrt(np.sort(vals)) / (2 * np.pi)
    err = np.max(np.abs(modes.frequencies_hz / f_ref - 1))
    print(
        f"eigensolve {name:>14}: {model.num_dofs:6d} DOF (order {order}), 20 modes | "
        f"ours ({backend}) {min(ours):6.2f} s | scipy eigsh(sigma=0) {min(theirs):6.2f} s | "
        f"speed-up {min(theirs) / min(ours):4.1f}x | max rel freq diff {err:.1e}"
    )


def bench_superposition(num_points: int, num_modes: int, frames: int) -> None:
    model = cantilever((32, 4, 2), 2)
    modes = model.solve(num_modes)
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 1, size=(num_points, 3)) * SIZE
    t0 = time.perf_counter()
    emb = PointEmbedding(model, points)
    t_embed = time.perf_counter() - t0
    pm = PointModes(modes, emb)
    q = torch.as_tensor(rng.normal(size=(frames, num_modes)), dtype=torch.float32)
    pm.displacements(q)  # warm-up
    t0 = time.perf_counter()
    pm.displacements(q)
    t_u = time.perf_counter() - t0
    t0 = time.perf_counter()
    pm.deformation_gradients(q)
    t_f = time.perf_counter() - t0
    work = num_points * num_modes * frames
    print(
        f"superposition: {num_points} points x {num_modes} modes x {frames} frames | embed {t_embed:.2f} s | "
        f"displacements {work / t_u:.2e} point-modes/s | deformation gradients {work / t_f:.2e} point-modes/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="19k,60k,19k-quadratic", help=f"comma list of {', '.join(CASES)}")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--backend", default="auto", help="auto | multifrontal | cholmod | splu")
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}")
    for name in args.sizes.split(","):
        bench_eigensolve(name, args.repeat, args.backend)
    with single_threaded_blas():
        bench_superposition(100_000, 20, 64)


if __name__ == "__main__":
    main()
