"""``wm4d splat-sim input=PATH.ply material=jelly frames=N out=DIR``: a 3DGS object simulated by MPM.

The Gaussians of the input are selected (``mask=``, ``crop=``, ``min_opacity=``, strays removed,
``component=``; see :mod:`physics.splats.selection`); an input that looks like a whole scene is
simulated with a warning (``on_scene=warn``, the default: a capture's floaters must not stop a run) or
refused with the list of its pieces (``on_scene=refuse``). The
selection is turned so that ``up`` (``auto``: a detected ground plane, else +z with a warning) is
the simulation's +z, scaled to metres (``units=`` metres per file unit, else ``sim_size=`` for its
longest side), and becomes MPM particles (PhysGaussian) with interior fill particles giving it the
solid volume (:mod:`physics.splats.solid`); it is released under gravity (along -up) above a
friction floor (``floor=below``: ``drop_height`` object sizes below its lowest point; a number: at
that height along up, file units; ``false``: none), with an optional initial velocity and poke.
Every frame is written as a standard 3DGS PLY, ``DIR/frame_0000.ply`` (the input at rest) ... with
all properties of the input kept and positions, scales, rotations, SH and normals updated; fill
particles and unselected Gaussians are never moved (frame files of an earlier, longer run in DIR
are removed). ``DIR/splat_sim.mp4`` and ``DIR/preview_NNNN.png`` preview the Gaussians and
``DIR/splat_sim.json`` records counts, volume, mass, timings and ``warnings`` (also printed to
stderr).

``dataset=PATH.zarr`` also appends the rollout to a point-track store (schema 2 of
`worldmodel.data.schema`, simulation coordinates in metres): ``dataset_tracks`` Gaussian centres
spread evenly over the simulated ones are the tracks, coloured by their SH DC term, so
``wm4d train`` learns the object's motion from splat-driven physics (no gripper: a passive
rollout, its actions are zero).

``engine=modal`` moves the Gaussians by damped FE modes of the solid instead (linear vibration
about the rest shape, PhysDreamer), one modal model per face-connected piece
(:mod:`physics.splats.pieces`): clamped at its bottom (``modal_fixed=bottom``) each piece sags
under gravity and sways after the poke; no floor, no drop. More than ``modal_max_pieces`` pieces
are refused with their list; motion beyond the linear range is warned about.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from ..options import require_positive_ints
from ._splat_preview import Preview

ENGINES = ("mpm", "modal")
SCENE_ACTIONS = ("refuse", "warn")


class Warnings(list):
    """Warnings of a run: kept for the summary and printed to stderr as they come."""

    def warn(self, message: str) -> None:
        """Record ``message`` and print it to stderr."""
        self.append(message)
        print(f"wm4d splat-sim: warning: {message}", file=sys.stderr)


def _plain(value: object) -> object:
    return OmegaConf.to_object(value) if OmegaConf.is_config(value) else value


def _vector(cfg: DictConfig, key: str, size: int = 3) -> np.ndarray:
    value = np.asarray(_plain(cfg[key]), dtype=np.float64)
    if value.shape != (size,) or not np.all(np.isfinite(value)):
        raise ValueError(f"{key} must be {size} finite numbers, got {cfg[key]!r}")
    return value


def _floor_setting(cfg: DictConfig) -> float | bool:
    """``floor``: True (below the object), False (none) or a height along up (file units)."""
    value = _plain(cfg.floor)
    if value is None or value is False or (isinstance(value, str) and value.lower() in ("false", "none", "off")):
        return False
    if value is True or (isinstance(value, str) and value.lower() in ("true", "below")):
        return True
    if isinstance(value, (int, float)) and np.isfinite(value):
        return float(value)
    raise ValueError(f"floor must be below (or true), false, or a height along up in file units, got {value!r}")


def _gravity_setting(cfg: DictConfig) -> float | np.ndarray:
    """``gravity``: a magnitude (m/s^2, along -up) or a vector in the file's axes."""
    value = _plain(cfg.gravity)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not (np.isfinite(value) and value >= 0.0):
            raise ValueError(f"gravity must be a magnitude >= 0 (m/s^2, along -up) or 3 numbers, got {value!r}")
        return float(value)
    return _vector(cfg, "gravity")


def validate(cfg: DictConfig) -> tuple[Path, object]:
    """Check the config; return the input path and the material instance."""
    from hydra.utils import instantiate

    from physics.mpm.materials import Material
    from physics.splats.axes import parse_up

    if OmegaConf.is_missing(cfg, "input"):
        raise ValueError("input=PATH.ply is required (a 3DGS PLY file)")
    path = Path(str(cfg.input))
    if not path.is_file():
        raise ValueError(f"input file {str(path)!r} does not exist")
    require_positive_ints(cfg, "frames", "fps", "grid_res")
    if cfg.grid_res < 8:
        raise ValueError(f"grid_res must be >= 8, got {cfg.grid_res}")
    for key in ("sim_size", "units"):
        if cfg[key] is not None and not (float(cfg[key]) > 0.0 and np.isfinite(float(cfg[key]))):
            raise ValueError(f"{key} must be a positive number or null, got {cfg[key]!r}")
    if not (float(cfg.drop_height) >= 0.0 and float(cfg.poke_radius) >= 0.0 and float(cfg.floor_friction) >= 0.0):
        raise ValueError("drop_height, poke_radius and floor_friction must be >= 0")
    for key in ("initial_velocity", "poke_velocity", "poke_point"):
        _vector(cfg, key)
    _gravity_setting(cfg)
    _floor_setting(cfg)
    parse_up(_plain(cfg.up))
    if cfg.engine not in ENGINES:
        raise ValueError(f"unknown engine {cfg.engine!r}; allowed: {', '.join(ENGINES)}")
    if cfg.on_scene not in SCENE_ACTIONS:
        raise ValueError(f"on_scene must be one of {', '.join(SCENE_ACTIONS)}, got {cfg.on_scene!r}")
    if int(cfg.fill_close) < 0 or not (0.0 < float(cfg.linear_limit)):
        raise ValueError("fill_close must be >= 0 and linear_limit > 0")
    if (cfg.modal_fixed not in ("bottom", "none") or int(cfg.modal_order) not in (1, 2) or int(cfg.num_modes) < 1
            or float(cfg.modal_damping) < 0.0 or int(cfg.modal_max_pieces) < 1):
        raise ValueError("modal settings: modal_fixed must be bottom or none, modal_order 1 or 2, num_modes >= 1, "
                         "modal_damping >= 0, modal_max_pieces >= 1")
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


def choose(cfg: DictConfig, source: object, ground: object, warnings: Warnings) -> object:
    """The Gaussians to simulate (:func:`physics.splats.selection.select_gaussians`), with the scene rule applied."""
    from physics.splats.selection import load_mask, select_gaussians

    mask = None if cfg.mask is None else load_mask(str(cfg.mask), len(source))
    component = _plain(cfg.component)
    if isinstance(component, str) and component.isdigit():
        component = int(component)
    sel = select_gaussians(source.positions, source.opacities, mask=mask, crop=_plain(cfg.crop),
                           min_opacity=float(cfg.min_opacity), remove_strays=bool(cfg.remove_strays),
                           component=component, ground=ground)
    if sel.scene_like:
        message = (f"the input looks like a whole scene, not one object: {sel.scene_reason}. Pieces: {sel.components}")
        if cfg.on_scene == "refuse":
            raise ValueError(f"{message}. Select the object with crop=[[x0,y0,z0],[x1,y1,z1]], component=largest "
                             "(or a piece index), mask=PATH.npy or min_opacity=, or set on_scene=warn to simulate "
                             "it all as one body")
        warnings.warn(message + "; simulated as one body (on_scene=warn)")
    if sel.num_strays:
        warnings.warn(f"removed {sel.num_strays} stray Gaussians (not simulated, written unchanged), up to "
                      f"{sel.stray_distance:.3g} file units from the object")
    if len(sel.component_sizes) > 1:
        print(f"wm4d splat-sim: {len(sel.component_sizes)} pieces: {sel.components}", file=sys.stderr)
    return sel


def simulation_frame(lower: np.ndarray, upper: np.ndarray, cfg: DictConfig, rotation: np.ndarray | None = None,
                     floor: float | bool = True) -> tuple[object, tuple, float]:
    """The file -> simulation map for the (rotated) object's box ``lower``..``upper``, the MPM bounds and the
    floor's height (simulation z)."""
    from physics.splats.frame import SimulationFrame

    size = float(np.max(upper - lower))
    if size <= 0.0:
        raise ValueError("the Gaussians to simulate all sit at one point")
    if cfg.get("units") is not None:
        scale = float(cfg.units)
    else:
        scale = 1.0 if cfg.sim_size is None else float(cfg.sim_size) / size
    extent = (upper - lower) * scale
    length = size * scale
    margin = 0.75 * length
    if isinstance(floor, bool):
        drop = float(cfg.drop_height) * length
    else:
        drop = (float(lower[2]) - floor) * scale
        if drop < 0.0:
            raise ValueError(f"floor={floor:g} (along up, file units) lies above the object's lowest point "
                             f"({float(lower[2]):.4g}); give a lower floor or floor=below")
    gap = 0.1 * length
    for _ in range(2):  # the floor at least two cells above the domain's bottom wall, whose nodes it would not own
        offset = np.array([margin, margin, gap + drop])
        upper_bounds = offset + extent + np.array([margin, margin, 0.5 * length])
        gap = max(0.1 * length, 2.0 * float(np.max(upper_bounds)) / int(cfg.grid_res))
    frame = SimulationFrame(np.eye(3) if rotation is None else rotation, scale, lower, offset)
    return frame, ((0.0, 0.0, 0.0), tuple(upper_bounds)), float(offset[2] - drop)


class MPMEngine:
    """Gaussians as MPM particles: ``advance`` steps the solver, ``splats`` reads the Gaussians back."""

    def __init__(self, solver: object, driver: object, volume: float) -> None:
        self.solver, self.driver, self.volume = solver, driver, volume

    def advance(self, frame_dt: float) -> None:
        """Step the solver by one frame."""
        self.solver.step(frame_dt)

    def splats(self) -> object:
        """The Gaussians now (simulation coordinates)."""
        return self.driver.splats()

    def finish(self, warnings: Warnings) -> None:
        """Warn about what the run did wrong (particles clamped at the domain's walls)."""
        if self.solver.num_clamped:
            warnings.warn(f"{self.solver.num_clamped} particle positions were clamped at the simulation box's walls "
                          "(the object left the domain; raise drop_height or lower the velocities)")

    def summary(self) -> dict:
        """Counts for the job's summary."""
        s = self.solver
        return {"num_fill_particles": self.driver.num_fill, "num_particles": s.num_particles,
                "num_substeps": s.num_substeps_taken, "num_clamped": s.num_clamped, "dx": s.config.dx,
                "simulated_volume_m3": self.volume, "mass_kg": float(np.sum(s.masses()))}


class ModalEngine:
    """Gaussians moved by damped FE modes of their solid pieces (linear vibration about the rest shape)."""

    def __init__(self, pieces: object, num_fill: int, density: float, size: float, limit: float) -> None:
        self.pieces, self.num_fill, self.density, self.size, self.limit = pieces, num_fill, density, size, limit
        self.max_displacement, self.volume_change = 0.0, (1.0, 1.0)

    def advance(self, frame_dt: float) -> None:
        """Advance the modal oscillators by one frame (exact for the constant gravity load)."""
        self.pieces.advance(frame_dt)

    def splats(self) -> object:
        """The Gaussians now (simulation coordinates); tracks how far they moved and how their volumes changed."""
        from physics.splats import deform_splats

        u, F = self.pieces.state()
        self.max_displacement = max(self.max_displacement, float(np.linalg.norm(u, axis=1).max()))
        det = np.linalg.det(F)
        lo, hi = self.volume_change
        self.volume_change = (min(lo, float(det.min())), max(hi, float(det.max())))
        rest = self.pieces.rest
        return deform_splats(rest, rest.positions + u, F)

    @property
    def tets_volume(self) -> float:
        """Volume of the meshed pieces (m^3): whole voxels, so above the solid's."""
        return sum(p.num_voxels for p in self.pieces.pieces) * self.pieces.voxel**3

    @property
    def solid_volume(self) -> float:
        """Solid volume of the simulated pieces (m^3); their mass is this times the density."""
        return sum(p.solid_volume for p in self.pieces.pieces)

    def finish(self, warnings: Warnings) -> None:
        """Warn when the motion left the linear range."""
        ratio = self.max_displacement / self.size
        lo, hi = self.volume_change
        if ratio > self.limit or lo < 0.5 or hi > 2.0:
            warnings.warn(f"the motion left the linear range of engine=modal: Gaussians moved up to {ratio:.2f} "
                          f"object sizes (linear_limit={self.limit}) and changed volume by x{lo:.3g}..x{hi:.3g}; use "
                          "engine=mpm, a stiffer material or a smaller load")

    def summary(self) -> dict:
        """Counts for the job's summary."""
        p = self.pieces
        return {"num_fill_particles": self.num_fill, "num_modes": sum(len(q.frequencies_hz) for q in p.pieces),
                "frequencies_hz": p.frequencies_hz, "num_tets": sum(q.num_tets for q in p.pieces),
                "modal_pieces": [{"voxels": q.num_voxels, "gaussians": len(q.rows),
                                  "frequencies_hz": q.frequencies_hz.tolist()} for q in p.pieces],
                "num_held_gaussians": int(p.held.sum()), "max_displacement_m": self.max_displacement,
                "max_displacement_sizes": self.max_displacement / self.size,
                "gaussian_volume_change": list(self.volume_change),
                "simulated_volume_m3": self.solid_volume, "modal_mesh_volume_m3": self.tets_volume,
                "mass_kg": self.solid_volume * self.density}


@dataclass
class SplatScene:
    """A loaded 3DGS object set up for simulation: file <-> simulation coordinates and the engine."""

    source: object  # GaussianSplats as loaded
    rows: np.ndarray  # indices of the simulated Gaussians in ``source``
    frame_map: object  # physics.splats.frame.SimulationFrame
    bounds: tuple  # simulation box (simulation coordinates)
    engine: MPMEngine | ModalEngine
    floor_z: float | None = None  # simulation height of the floor, None without one
    warnings: Warnings = field(default_factory=Warnings)
    info: dict = field(default_factory=dict)

    @property
    def scale(self) -> float:
        """Simulation metres per file unit."""
        return self.frame_map.scale

    def to_file(self, x: np.ndarray) -> np.ndarray:
        """Simulation coordinates -> file coordinates."""
        return self.frame_map.to_file(x)

    def to_sim(self, x: np.ndarray) -> np.ndarray:
        """File coordinates -> simulation coordinates (metres)."""
        return self.frame_map.to_sim(x)

    def frame(self) -> object:
        """The whole scene in the engine's current state (GaussianSplats in file coordinates)."""
        moved = self.frame_map.splats_to_file(self.engine.splats())
        return self.source.updated(
            rows=self.rows, positions=moved.positions, log_scales=moved.log_scales, quaternions=moved.quaternions,
            sh=moved.sh, normals=moved.normals,
        )  # fmt: skip


def _up(cfg: DictConfig, source: object, warnings: Warnings) -> tuple[np.ndarray, object, str]:
    """The file's up vector, the ground plane (if found) and how up was chosen."""
    from physics.splats.axes import ground_plane, parse_up

    ground = ground_plane(source.positions, np.random.default_rng(int(cfg.seed)))
    up = parse_up(_plain(cfg.up))
    if up is not None:
        return up, ground, "given"
    if ground is not None:
        print(f"wm4d splat-sim: up = {np.round(ground.up, 4).tolist()} (a ground plane holds "
              f"{ground.support:.0%} of the Gaussians)", file=sys.stderr)
        return ground.up, ground, "ground plane"
    warnings.warn("up axis guessed: +z (no ground plane found in the input); set up=+y, -y, ... if the file is "
                  "not z-up")
    return np.array([0.0, 0.0, 1.0]), ground, "guessed"


def _check_fill(fill: object, sim_rest: object, warnings: Warnings) -> None:
    """Warn when the solid found looks wrong: nothing inside, or much less than the Gaussians' hull."""
    from scipy.spatial import ConvexHull, QhullError

    if fill.num_particles == 0:
        warnings.warn("the interior fill found no inside point: the object is simulated as a hollow shell")
        return
    try:
        hull = ConvexHull(sim_rest.positions).volume
    except (QhullError, ValueError):
        return
    if fill.volume < 0.2 * hull:
        warnings.warn(f"the solid found is only {fill.volume / hull:.0%} of the Gaussians' convex hull: the surface "
                      "may have holes wider than the fill closes (raise fill_close) or the object is thin")


def modal_engine(cfg: DictConfig, sim_rest: object, fill: object, material: object, gravity: np.ndarray,
                 poke: tuple, warnings: Warnings) -> ModalEngine:
    """FE modes of the solid's pieces, each clamped at its bottom or free, and the poke."""
    from physics.mpm.materials import FixedCorotated, NeoHookean
    from physics.splats.pieces import modal_pieces

    if not isinstance(material, (FixedCorotated, NeoHookean)):
        raise ValueError("engine=modal needs an elastic material (FixedCorotated or NeoHookean, e.g. jelly, rubber), "
                         f"got {cfg.material!r}")
    pieces = modal_pieces(sim_rest, fill, material, int(cfg.num_modes), gravity, fixed=str(cfg.modal_fixed),
                          order=int(cfg.modal_order), damping=float(cfg.modal_damping), poke=poke,
                          max_pieces=int(cfg.modal_max_pieces))
    if len(pieces.pieces) > 1:
        warnings.warn(f"engine=modal: the object is {len(pieces.pieces)} separate solid pieces (voxels: "
                      f"{[p.num_voxels for p in pieces.pieces]}), each simulated with its own modes"
                      + (" and clamped at its own bottom" if cfg.modal_fixed == "bottom" else ""))
    if pieces.held.any():
        warnings.warn(f"engine=modal: {int(pieces.held.sum())} Gaussians of pieces too small to mesh stay at rest")
    dropped = sum(p.num_dropped for p in pieces.pieces)
    if dropped:
        warnings.warn(f"engine=modal: dropped {dropped} near-zero-frequency modes (rigid motions of pieces)")
    size = float(np.ptp(sim_rest.positions, axis=0).max())
    return ModalEngine(pieces, fill.num_particles, float(np.mean(material.density)), size, float(cfg.linear_limit))


def build(cfg: DictConfig) -> SplatScene:
    """Validate ``cfg``, load the input, select, orient and size the object and set up the engine."""
    from physics import mpm
    from physics.splats import GaussianSplats, MPMSplatDriver, shared_cell_volumes
    from physics.splats.axes import up_rotation
    from physics.splats.drive import is_elastic
    from physics.splats.solid import solid_fill

    path, material = validate(cfg)
    warnings = Warnings()
    start = time.perf_counter()
    source = GaussianSplats.load(path)
    up, ground, up_how = _up(cfg, source, warnings)
    sel = choose(cfg, source, ground, warnings)
    rows = sel.rows
    obj = source.subset(rows)
    rotation = up_rotation(up)
    turned = obj.positions @ rotation.T
    lower, upper = turned.min(axis=0), turned.max(axis=0)
    floor = _floor_setting(cfg)
    frame_map, bounds, floor_z = simulation_frame(lower, upper, cfg, rotation, floor)
    sim_rest = frame_map.splats_to_sim(obj)
    gravity_setting = _gravity_setting(cfg)
    gravity = (np.array([0.0, 0.0, -gravity_setting]) if isinstance(gravity_setting, float)
               else rotation @ gravity_setting)
    config = mpm.MPMConfig(grid_res=int(cfg.grid_res), bounds=bounds, gravity=tuple(gravity),
                           track_covariance=not is_elastic(material), device=str(cfg.device))
    spacing = config.dx / 2.0
    setup_seconds = time.perf_counter() - start
    start = time.perf_counter()
    fill = None
    if cfg.fill or cfg.engine == "modal":
        fill = solid_fill(sim_rest, spacing, float(cfg.opacity_threshold), close=int(cfg.fill_close),
                          device=str(cfg.device))
        _check_fill(fill, sim_rest, warnings)
    fill_x = fill.positions if fill is not None and cfg.fill else np.zeros((0, 3))
    info = {"up": up.tolist(), "up_from": up_how, "num_strays_removed": sel.num_strays,
            "components": sel.component_sizes, "selection_removed": sel.notes, "scene_like": sel.scene_like,
            "solid_volume_m3": fill.volume if fill is not None else None, "setup_seconds": setup_seconds,
            "fill_seconds": time.perf_counter() - start}
    lo, hi = sim_rest.positions.min(axis=0), sim_rest.positions.max(axis=0)
    poke_at = lo + _vector(cfg, "poke_point") * (hi - lo)
    poke_radius = float(cfg.poke_radius) * float(np.max(hi - lo))
    poke_velocity = rotation @ _vector(cfg, "poke_velocity")
    if cfg.engine == "modal":
        engine = modal_engine(cfg, sim_rest, fill, material, gravity, (poke_at, poke_radius, poke_velocity), warnings)
        return SplatScene(source, rows, frame_map, bounds, engine, None, warnings, info)
    solver = mpm.MPMSolver(config)
    if floor is not False:
        solver.add_collider(mpm.Plane((0.0, 0.0, floor_z), (0.0, 0.0, 1.0), contact="friction",
                                      friction=float(cfg.floor_friction)))
    x = np.concatenate([sim_rest.positions, fill_x])
    velocities = np.broadcast_to(rotation @ _vector(cfg, "initial_velocity"), x.shape).copy()
    velocities[np.linalg.norm(x - poke_at, axis=1) <= poke_radius] += poke_velocity
    origin = fill.origin if fill is not None else config.lower
    volume = fill.volume if fill is not None and cfg.fill and fill.volume > 0 else None
    driver = MPMSplatDriver(sim_rest, solver, material, fill_x, spacing=spacing, origin=origin,
                            velocities=velocities, total_volume=volume)
    if volume is None:
        volume = float(shared_cell_volumes(x, spacing, origin).sum())
    return SplatScene(source, rows, frame_map, bounds, MPMEngine(solver, driver, volume),
                      floor_z if floor is not False else None, warnings, info)


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
    source = scene.source
    out = Path(str(cfg.out))
    out.mkdir(parents=True, exist_ok=True)
    preview = Preview(cfg, scene, out) if cfg.preview else None
    sim_seconds = write_seconds = preview_seconds = 0.0
    tracked = _dataset_rows(cfg, len(scene.rows))
    track_frames = []
    ok = False
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
            if preview is not None:
                start = time.perf_counter()
                preview.add(index, frame)
                preview_seconds += time.perf_counter() - start
        ok = True
    finally:
        if preview is not None:
            preview.close(ok)
    for stale in out.glob("frame_*.ply"):  # frames of an earlier, longer run would mix into the sequence
        if stale.stem[6:].isdigit() and int(stale.stem[6:]) >= int(cfg.frames):
            stale.unlink()
    if tracked is not None:
        write_dataset(cfg, np.stack(track_frames), np.clip(sh_dc_to_rgb(source.sh_dc[scene.rows[tracked]]), 0.0, 1.0))
    scene.engine.finish(scene.warnings)
    steps = max(int(cfg.frames) - 1, 0)
    summary = {
        "input": str(cfg.input),
        "engine": str(cfg.engine),
        "material": str(cfg.material),
        "frames": int(cfg.frames),
        "num_gaussians": len(source),
        "num_simulated_gaussians": len(scene.rows),
        "scale_to_metres": scene.scale,
        **scene.info,
        "simulate_seconds": sim_seconds,
        "write_seconds": write_seconds,
        "preview_seconds": preview_seconds,
        "gaussian_frames_per_second": len(scene.rows) * steps / (sim_seconds + write_seconds) if steps else None,
        **scene.engine.summary(),
        "warnings": list(scene.warnings),
    }
    tmp = out / "splat_sim.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out / "splat_sim.json")
    print(f"wrote {cfg.frames} frames to {out} "
          f"({len(scene.rows)} of {len(source)} Gaussians simulated by {cfg.engine}"
          f"{f', {len(scene.warnings)} warnings' if scene.warnings else ''})")
