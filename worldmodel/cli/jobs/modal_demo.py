"""``wm4d modal-demo``: mode shapes (PNG) and a damped poke animation (mp4) of a clamped bar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig


def boundary_faces(tets: np.ndarray) -> np.ndarray:
    """Triangles (F, 3) on the surface of a tetrahedral mesh: faces used by exactly one tet."""
    faces = tets[:, [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]].reshape(-1, 3)
    key = np.sort(faces, axis=1)
    _, first, counts = np.unique(key, axis=0, return_index=True, return_counts=True)
    return faces[first[counts == 1]]


def draw(ax, vertices: np.ndarray, faces: np.ndarray, colour: np.ndarray, limits: np.ndarray, title: str) -> None:
    """Shaded surface of the deformed mesh, faces coloured by ``colour`` (per vertex, in [0, 1])."""
    from matplotlib import cm
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    tris = vertices[faces]
    shade = cm.viridis(colour[faces].mean(axis=1))
    ax.add_collection3d(Poly3DCollection(tris, facecolors=shade, edgecolors=(0, 0, 0, 0.15), linewidths=0.2))
    ax.set_xlim(limits[0]), ax.set_ylim(limits[1]), ax.set_zlim(limits[2])
    ax.set_box_aspect(np.ptp(limits, axis=1))
    ax.set_axis_off()
    ax.view_init(elev=22, azim=-60)
    ax.set_title(title, fontsize=9)


def run(cfg: DictConfig) -> None:
    """Solve the bar's modes, render them, then tap its tip and render the damped ringing."""
    import imageio.v2 as imageio
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from physics.modal import ModalModel, box_tet_mesh
    from physics.modal.dynamics import ModalDynamics, RayleighDamping

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    size = np.asarray(cfg.size, dtype=float)
    vertices, tets = box_tet_mesh(size, tuple(int(r) for r in cfg.resolution))
    model = ModalModel(vertices, tets, cfg.youngs_modulus, cfg.poisson_ratio, cfg.density, fixed=vertices[:, 0] < 1e-9,
                       order=int(cfg.order))
    modes = model.solve(int(cfg.num_modes))
    faces = boundary_faces(tets)
    reach = float(cfg.mode_scale) * 1.2
    limits = np.array([[-0.05, size[0] + 0.05], [size[1] / 2 - reach, size[1] / 2 + reach],
                       [size[2] / 2 - reach, size[2] / 2 + reach]])

    cols = 3
    rows = int(np.ceil(modes.num_modes / cols))
    fig = plt.figure(figsize=(4 * cols, 3 * rows))
    for i, (freq, shape) in enumerate(zip(modes.frequencies_hz, modes.shapes, strict=True)):
        mag = np.linalg.norm(shape, axis=1)
        scale = float(cfg.mode_scale) / mag.max()
        ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
        draw(ax, vertices + scale * shape, faces, mag / mag.max(), limits, f"mode {i + 1}: {freq:.2f} Hz")
    fig.tight_layout()
    fig.savefig(out / "modal_modes.png", dpi=120)
    plt.close(fig)

    xi1, xi2 = (float(x) for x in cfg.damping)
    damping = RayleighDamping.from_ratios(modes.frequencies_hz[0], xi1, modes.frequencies_hz[-1], xi2)
    dyn = ModalDynamics(modes, damping)
    tip = np.flatnonzero(np.isclose(vertices[:, 0], size[0]))
    impulse = np.tile(np.asarray(cfg.poke_impulse, dtype=float) / len(tip), (len(tip), 1))
    dyn.apply_impulse(modes.modal_load(tip, impulse))
    dt = 1.0 / (float(cfg.fps) * float(cfg.slow_motion))
    q = dyn.rollout(dt, int(cfg.frames))
    peak = max(np.linalg.norm(np.einsum("tk,kvd->tvd", q, modes.shapes), axis=2).max(), 1e-12)
    gain = float(cfg.mode_scale) / peak  # small-amplitude motion, drawn magnified
    fig = plt.figure(figsize=(6, 4))
    with imageio.get_writer(out / "modal_poke.mp4", fps=int(cfg.fps), macro_block_size=1) as writer:
        for t, qt in enumerate(q):
            u = np.tensordot(qt, modes.shapes, axes=1)
            fig.clf()
            ax = fig.add_subplot(projection="3d")
            title = f"tap at the tip, t = {(t + 1) * dt:.3f} s (displacement x{gain:.0f})"
            draw(ax, vertices + gain * u, faces, np.linalg.norm(u, axis=1) / peak, limits, title)
            fig.canvas.draw()
            writer.append_data(np.asarray(fig.canvas.buffer_rgba())[..., :3])
    plt.close(fig)
    print(f"modal-demo: {modes.num_modes} modes ({', '.join(f'{f:.2f}' for f in modes.frequencies_hz)} Hz) "
          f"-> {out}/modal_modes.png, {out}/modal_poke.mp4")
