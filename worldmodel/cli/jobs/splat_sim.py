"""``wm4d splat-sim input=PATH.ply material=jelly frames=N out=DIR``: a 3DGS object simulated by MPM.

The Gaussians of the input (optionally only those inside ``crop``) become MPM particles
(PhysGaussian), with interior fill particles giving the object its volume; the object is
scaled to ``sim_size`` metres, placed ``drop_height`` above a friction floor and released
under gravity with an optional initial velocity and poke. Every frame is written as a
standard 3DGS PLY, ``DIR/frame_0000.ply`` (the input at rest) ... with all properties of
the input kept and positions, scales, rotations, SH and normals updated; fill particles
are never written (frame files of an earlier, longer run in DIR are removed).
``DIR/splat_sim.mp4`` previews the Gaussian centres coloured by their
SH DC term and ``DIR/splat_sim.json`` records counts and timings.

``dataset=PATH.zarr`` also appends the rollout to a point-track store (schema 2 of
`worldmodel.data.schema`, simulation coordinates in metres): ``dataset_tracks`` Gaussian centres
spread evenly over the simulated ones are the tracks, coloured by their SH DC term, so
``wm4d train`` learns the object's motion from splat-driven physics (no gripper: a passive
rollout, its actions are zero).

``engine=modal`` moves the Gaussians by damped FE modes of the voxelised object instead
(linear vibration about the rest shape, PhysDreamer): clamped at its bottom
(``modal_fixed=bottom``) it sags under gravity and sways after the poke; no floor, no drop.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from ..options import require_positive_ints

PREVIEW_POINTS = 40000  # Gaussians drawn per preview frame at most
ENGINES = ("mpm", "modal")


def _vector(cfg: DictConfig, key: str, size: int = 3) -> np.ndarray:
    value = np.asarray(OmegaConf.to_object(cfg[key]) if OmegaConf.is_config(cfg[key]) else cfg[key], dtype=np.float64)
    if value.shape != (size,) or not np.all(np.isfinite(value)):
        raise ValueError(f"{key} must be {size} finite numbers, got {cfg[key]!r}")
    return value


def validate(cfg: DictConfig) -> tuple[Path, object]:
    """Check the config; return the input path and the material instance."""
    from hydra.utils import instantiate

    from physics.mpm.materials import Material

    if OmegaConf.is_missing(cfg, "input"):
        raise ValueError("input=PATH.ply is required (a 3DGS PLY file)")
    path = Path(str(cfg.input))
    if not path.is_file():
        raise ValueError(f"input file {str(path)!r} does not exist")
    require_positive_ints(cfg, "frames", "fps", "grid_res")
    if cfg.grid_res < 8:
        raise ValueError(f"grid_res must be >= 8, got {cfg.grid_res}")
    if cfg.sim_size is not None and not (float(cfg.sim_size) > 0.0 and np.isfinite(float(cfg.sim_size))):
        raise ValueError(f"sim_size must be a positive length in metres or null, got {cfg.sim_size!r}")
    if not (float(cfg.drop_height) >= 0.0 and float(cfg.poke_radius) >= 0.0 and float(cfg.floor_friction) >= 0.0):
        raise ValueError("drop_height, poke_radius and floor_friction must be >= 0")
    for key in ("gravity", "initial_velocity", "poke_velocity", "poke_point"):
        _vector(cfg, key)
    if cfg.engine not in ENGINES:
        raise ValueError(f"unknown engine {cfg.engine!r}; allowed: {', '.join(ENGINES)}")
    if (cfg.modal_fixed not in ("bottom", "none") or int(cfg.modal_order) not in (1, 2) or int(cfg.num_modes) < 1
            or float(cfg.modal_damping) < 0.0):
        raise ValueError("modal settings: modal_fixed must be bottom or none, modal_order 1 or 2, num_modes >= 1, "
                         "modal_damping >= 0")
    materials = sorted(cfg.materials.keys())
    if str(cfg.material) not in materials:
        raise ValueError(f"unknown material {cfg.material!r}; available: {', '.join(materials)}")
    try:
        material = instantiate(cfg.materials[str(cfg.material)])
        if not isinstance(material, Material):
            raise ValueError(f"it must be a physics.mpm.materials.Material, got {type(material).__name__}")
        material.moduli(1)  # checks the moduli now rather than after the fill
    except Exception as err:  # hydra wraps the material's own ValueError
        raise ValueError(f"materials.{cfg.material} cannot be built: {err.__cause__ or err}") from err
    return path, material


def select(splats: object, crop: object) -> np.ndarray:
    """Indices of the Gaussians to simulate: all, or those inside ``crop`` = [[x0, y0, z0], [x1, y1, z1]]."""
    x = splats.positions
    if crop is None:
        rows = np.arange(len(x))
    else:
        box = np.asarray(OmegaConf.to_object(crop) if OmegaConf.is_config(crop) else crop, dtype=np.float64)
        if box.shape != (2, 3) or np.any(box[1] <= box[0]):
            raise ValueError(f"crop must be [[x0, y0, z0], [x1, y1, z1]] with x1 > x0 etc., got {crop!r}")
        rows = np.flatnonzero(np.all((x >= box[0]) & (x <= box[1]), axis=1))
    if len(rows) < 4:
        raise ValueError(f"only {len(rows)} Gaussians to simulate (crop={crop!r}); need at least 4")
    return rows


def simulation_frame(lower: np.ndarray, upper: np.ndarray, cfg: DictConfig) -> tuple[float, np.ndarray, tuple]:
    """Scale s (file -> metres), offset (sim = (file - lower) s + offset) and MPM bounds for the object's box."""
    size = float(np.max(upper - lower))
    if size <= 0.0:
        raise ValueError("the Gaussians to simulate all sit at one point")
    scale = 1.0 if cfg.sim_size is None else float(cfg.sim_size) / size
    extent = (upper - lower) * scale
    length = size * scale
    margin = 0.75 * length
    drop = float(cfg.drop_height) * length
    floor = 0.1 * length
    for _ in range(2):  # the floor at least two cells above the domain's bottom wall, whose nodes it would not own
        offset = np.array([margin, margin, floor + drop])
        upper_bounds = offset + extent + np.array([margin, margin, 0.5 * length])
        floor = max(0.1 * length, 2.0 * float(np.max(upper_bounds)) / int(cfg.grid_res))
    return scale, offset, ((0.0, 0.0, 0.0), tuple(upper_bounds))


def render_preview(positions: np.ndarray, colors: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Front view (x right, z up) of Gaussian centres coloured by their DC colour."""
    from worldmodel.cli.jobs.mpm_demo import render

    return render(positions, colors, bounds)


class MPMEngine:
    """Gaussians as MPM particles: ``advance`` steps the solver, ``splats`` reads the Gaussians back."""

    def __init__(self, solver: object, driver: object) -> None:
        self.solver, self.driver = solver, driver

    def advance(self, frame_dt: float) -> None:
        """Step the solver by one frame."""
        self.solver.step(frame_dt)

    def splats(self) -> object:
        """The Gaussians now (simulation coordinates)."""
        return self.driver.splats()

    def summary(self) -> dict:
        """Counts for the job's summary."""
        s = self.solver
        return {"num_fill_particles": self.driver.num_fill, "num_particles": s.num_particles,
                "num_substeps": s.num_substeps_taken, "num_clamped": s.num_clamped, "dx": s.config.dx}


class ModalEngine:
    """Gaussians moved by damped FE modes (linear vibration about the rest shape, PhysDreamer)."""

    def __init__(self, driver: object, dynamics: object, modal_force: np.ndarray, num_tets: int) -> None:
        self.driver, self.dynamics, self.modal_force, self.num_tets = driver, dynamics, modal_force, num_tets

    def advance(self, frame_dt: float) -> None:
        """Advance the modal oscillators by one frame (exact for the constant gravity load)."""
        self.dynamics.step(frame_dt, self.modal_force)

    def splats(self) -> object:
        """The Gaussians now (simulation coordinates)."""
        return self.driver.splats(self.dynamics.q)

    def summary(self) -> dict:
        """Counts for the job's summary."""
        return {"num_modes": self.dynamics.modes.num_modes,
                "frequencies_hz": self.dynamics.modes.frequencies_hz.tolist(), "num_tets": self.num_tets}


@dataclass
class SplatScene:
    """A loaded 3DGS object set up for simulation: file <-> simulation coordinates and the engine."""

    source: object  # GaussianSplats as loaded
    rows: np.ndarray  # indices of the simulated Gaussians in ``source``
    scale: float  # simulation metres per file unit
    offset: np.ndarray
    lower: np.ndarray
    bounds: tuple  # simulation box (simulation coordinates)
    engine: MPMEngine | ModalEngine

    def to_file(self, x: np.ndarray) -> np.ndarray:
        """Simulation coordinates -> file coordinates."""
        return (x - self.offset) / self.scale + self.lower

    def to_sim(self, x: np.ndarray) -> np.ndarray:
        """File coordinates -> simulation coordinates (metres)."""
        return (np.asarray(x, dtype=np.float64) - self.lower) * self.scale + self.offset

    def frame(self) -> object:
        """The whole scene in the engine's current state (GaussianSplats in file coordinates)."""
        moved = self.engine.splats()
        return self.source.updated(
            rows=self.rows, positions=self.to_file(moved.positions), log_scales=moved.log_scales - np.log(self.scale),
            quaternions=moved.quaternions, sh=moved.sh, normals=moved.normals,
        )  # fmt: skip


def modal_engine(cfg: DictConfig, sim_rest: object, fill_x: np.ndarray, material: object, voxel: float,
                 poke: np.ndarray) -> ModalEngine:
    """FE modes of the voxelised object (Gaussian centres + fill), clamped at its bottom or free, and the poke."""
    from physics import modal
    from physics.modal.mesh import tet_volumes
    from physics.mpm.materials import FixedCorotated, NeoHookean
    from physics.splats import ModalSplatDriver

    if not isinstance(material, (FixedCorotated, NeoHookean)):
        raise ValueError("engine=modal needs an elastic material (FixedCorotated or NeoHookean, e.g. jelly, rubber), "
                         f"got {cfg.material!r}")
    vertices, tets = modal.points_tet_mesh(np.concatenate([sim_rest.positions, fill_x]), voxel)
    fixed = vertices[:, 2] <= vertices[:, 2].min() + 1e-6 * voxel if cfg.modal_fixed == "bottom" else None
    model = modal.ModalModel(vertices, tets, material.youngs_modulus, material.poisson_ratio, material.density,
                             fixed=fixed, order=int(cfg.modal_order))
    modes = model.solve(int(cfg.num_modes))
    dynamics = modal.ModalDynamics(modes, damping=np.full(modes.num_modes, float(cfg.modal_damping)))
    node_mass = float(np.sum(tet_volumes(vertices, tets) * material.density)) / len(vertices)
    ids = np.arange(len(vertices))
    gravity = modes.modal_load(ids, np.broadcast_to(node_mass * _vector(cfg, "gravity"), vertices.shape))
    poked = np.flatnonzero(np.linalg.norm(vertices - poke[0], axis=1) <= poke[1, 0])
    if len(poked):
        dynamics.apply_impulse(modes.modal_load(
            poked, np.broadcast_to(node_mass * _vector(cfg, "poke_velocity"), (len(poked), 3))))
    return ModalEngine(ModalSplatDriver(sim_rest, model, modes), dynamics, gravity, len(tets))


def build(cfg: DictConfig) -> SplatScene:
    """Validate ``cfg``, load the input and set up the engine (MPM: solver, floor, fill, velocities; or modes)."""
    from physics import mpm
    from physics.splats import GaussianSplats, MPMSplatDriver, fill_interior
    from physics.splats.drive import is_elastic

    path, material = validate(cfg)
    source = GaussianSplats.load(path)
    rows = select(source, cfg.crop)
    obj = source.subset(rows)
    lower, upper = obj.positions.min(axis=0), obj.positions.max(axis=0)
    scale, offset, bounds = simulation_frame(lower, upper, cfg)
    sim_rest = obj.updated(positions=(obj.positions - lower) * scale + offset,
                           log_scales=obj.log_scales + np.log(scale), quaternions=obj.quaternions)
    config = mpm.MPMConfig(grid_res=int(cfg.grid_res), bounds=bounds, gravity=tuple(_vector(cfg, "gravity")),
                           track_covariance=not is_elastic(material), device=str(cfg.device))
    spacing = config.dx / 2.0
    fill = fill_interior(sim_rest, spacing, float(cfg.opacity_threshold), device=str(cfg.device)) if cfg.fill else None
    fill_x = fill.positions if fill is not None else np.zeros((0, 3))
    x = np.concatenate([sim_rest.positions, fill_x])
    lo, hi = sim_rest.positions.min(axis=0), sim_rest.positions.max(axis=0)
    poke_at = lo + _vector(cfg, "poke_point") * (hi - lo)
    poke_radius = float(cfg.poke_radius) * float(np.max(hi - lo))
    if cfg.engine == "modal":
        engine = modal_engine(cfg, sim_rest, fill_x, material, config.dx, np.array([poke_at, [poke_radius] * 3]))
        return SplatScene(source, rows, scale, offset, lower, bounds, engine)
    solver = mpm.MPMSolver(config)
    if cfg.floor:
        floor_z = offset[2] - float(cfg.drop_height) * float(np.max(upper - lower)) * scale
        solver.add_collider(mpm.Plane((0.0, 0.0, floor_z), (0.0, 0.0, 1.0), contact="friction",
                                      friction=float(cfg.floor_friction)))
    velocities = np.broadcast_to(_vector(cfg, "initial_velocity"), x.shape).copy()
    velocities[np.linalg.norm(x - poke_at, axis=1) <= poke_radius] += _vector(cfg, "poke_velocity")
    driver = MPMSplatDriver(
        sim_rest, solver, material, fill_x, spacing=spacing,
        origin=fill.origin if fill is not None else None, velocities=velocities,
        total_volume=fill.volume if fill is not None and fill.volume > 0 else None,
    )  # fmt: skip
    return SplatScene(source, rows, scale, offset, lower, bounds, MPMEngine(solver, driver))


def _dataset_rows(cfg: DictConfig, count: int) -> np.ndarray | None:
    """Indices (into the simulated Gaussians) of the tracked ones when ``dataset`` is set, else None."""
    if cfg.get("dataset") is None:
        return None
    n = cfg.dataset_tracks
    return np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(np.int64))


def write_dataset(cfg: DictConfig, tracks: np.ndarray, colors: np.ndarray) -> None:
    """Append the tracked Gaussians' rollout (T, K, 3 metres) to the point-track store ``cfg.dataset``."""
    from worldmodel.data.byo import build_episode
    from worldmodel.data.writer import RolloutWriter

    episode = build_episode(tracks, track_colors=colors, num_scene_points=int(cfg.dataset_scene_points),
                            object_fraction=1.0, viewpoint=tracks[0].mean(axis=0) + np.array([0.0, -1.0, 1.0]))
    episode["action"] = np.zeros((len(tracks), 3), np.float32)
    attrs = {"env_id": "splat-sim", "env_kwargs": {}, "fps": int(cfg.fps),
             "splat_sim": OmegaConf.to_container(cfg, resolve=True)}
    RolloutWriter(str(cfg.dataset), attrs, resume=True).add_episode(episode, int(cfg.seed))
    print(f"appended a {len(tracks)}-frame rollout of {tracks.shape[1]} Gaussian tracks to {cfg.dataset}")


def run(cfg: DictConfig) -> None:
    """Simulate, write the frames, the preview and the summary (see the module docstring)."""
    from tqdm import tqdm

    from physics.splats.sh import sh_dc_to_rgb

    if cfg.get("dataset") is not None:
        require_positive_ints(cfg, "dataset_tracks", "dataset_scene_points")
    scene = build(cfg)
    source, bounds = scene.source, scene.bounds
    out = Path(str(cfg.out))
    out.mkdir(parents=True, exist_ok=True)
    view = np.array([scene.to_file(np.array(bounds[0])), scene.to_file(np.array(bounds[1]))])
    show = np.random.default_rng(int(cfg.seed)).permutation(len(source))[:PREVIEW_POINTS]
    colors = np.clip(sh_dc_to_rgb(source.sh_dc[show]), 0.0, 1.0)
    writer = None
    if cfg.preview:
        import imageio.v2 as imageio

        preview_tmp = out / "splat_sim.tmp.mp4"
        writer = imageio.get_writer(preview_tmp, fps=int(cfg.fps), macro_block_size=1)
    sim_seconds = write_seconds = 0.0
    tracked = _dataset_rows(cfg, len(scene.rows))
    track_frames = []
    try:
        frame = source
        for index in tqdm(range(int(cfg.frames)), desc="splat-sim", unit="frame"):
            if index > 0:
                start = time.perf_counter()
                scene.engine.advance(1.0 / int(cfg.fps))
                sim_seconds += time.perf_counter() - start
                start = time.perf_counter()
                frame = scene.frame()
            else:
                start = time.perf_counter()
            if tracked is not None:  # the written frame's simulated Gaussians, back in metres
                track_frames.append(scene.to_sim(frame.positions[scene.rows[tracked]]))
            frame.save(out / f"frame_{index:04d}.ply")
            write_seconds += time.perf_counter() - start
            if writer is not None:
                writer.append_data(render_preview(frame.positions[show], colors, view))
    finally:
        if writer is not None:
            writer.close()
    if writer is not None:
        os.replace(preview_tmp, out / "splat_sim.mp4")
    for stale in out.glob("frame_*.ply"):  # frames of an earlier, longer run would mix into the sequence
        if stale.stem[6:].isdigit() and int(stale.stem[6:]) >= int(cfg.frames):
            stale.unlink()
    if tracked is not None:
        write_dataset(cfg, np.stack(track_frames), np.clip(sh_dc_to_rgb(source.sh_dc[scene.rows[tracked]]), 0.0, 1.0))
    steps = max(int(cfg.frames) - 1, 0)
    summary = {
        "input": str(cfg.input),
        "engine": str(cfg.engine),
        "material": str(cfg.material),
        "frames": int(cfg.frames),
        "num_gaussians": len(source),
        "num_simulated_gaussians": len(scene.rows),
        "scale_to_metres": scene.scale,
        "simulate_seconds": sim_seconds,
        "write_seconds": write_seconds,
        "gaussian_frames_per_second": len(scene.rows) * steps / (sim_seconds + write_seconds) if steps else None,
        **scene.engine.summary(),
    }
    tmp = out / "splat_sim.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out / "splat_sim.json")
    print(f"wrote {cfg.frames} frames to {out} "
          f"({len(scene.rows)} of {len(source)} Gaussians simulated by {cfg.engine})")
