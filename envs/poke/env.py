"""Poke4D-v0: poke a flexible object clamped to the table with the URDF gripper (modal physics)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from physics.modal import ModalDynamics, RayleighDamping
from physics.modal.contact import ContactScheduler, ModalContactSolver, PenaltyContact
from physics.render import LABEL_OBJECT, Camera, Frames
from physics.rigid import BACKENDS
from robots.control import CONTROL_DT
from robots.gripper_points import DEFAULT_GRIPPER_LINKS
from robots.urdf import RobotDescription

from ..base import CROP_MARGIN, TaskEnv, scene_track_ids
from ..checks import (
    MAX_POINTS,
    choice,
    fraction,
    nonnegative_float,
    nonnegative_int,
    option_vector,
    positive_float,
    positive_int,
)
from ..robot_setup import MAX_SPEED, ROBOTS
from .object import SHAPE_NAMES, SHAPES, modal_object
from .scene import TABLE_HALF, kinematic_robot, poke_cameras, render_scene, table_frames

TASKS = ("reach", "settle")
REACH_XY = 0.2  # fingertip targets: |x|, |y| <= 0.2 m
Z_RANGE = (0.01, 0.35)  # fingertip heights (m)
START_CLEARANCE = 0.06  # the gripper starts at least this far (xy) from the object's bounds
START_HEIGHT_MIN = 0.05  # m: the fingertips start at least this high ...
START_HEIGHT_ABOVE = 0.05  # m: ... and at most this far above the object's top
START_TOUCH_CLEARANCE = 0.01  # m: no gripper contact point starts closer than this to the object
MAX_RESET_DRAWS = 1000  # draws of a start position or direction before a reset gives up
COMPLIANT_FRACTION = 0.25  # a target or flick direction is at least this compliant relative to the softest one
TARGET_RANGE = (0.02, 0.05)  # reach: target tip displacement magnitude (m)
RING_RANGE = (0.02, 0.04)  # settle: tip amplitude of the initial flick (m)
CONTACT_SAMPLES = 4096  # surface samples the contact pulls points back through (denser than the rendered ones)
CROP_ABOVE_OBJECT = 0.15  # m: the fused cloud keeps points up to this far above the object's top
CROP_BOTTOM = -0.005  # m: ... and down to just below the table top


class Poke4DEnv(TaskEnv):
    """Poke a flexible object clamped to the table with a Franka hand; the object vibrates by its FEM modes.

    **Scene.** Table top at z = 0 (a 0.6 m checkered square). The object stands at the origin,
    clamped where it meets the table (``shape``): ``"rod"`` (0.02 x 0.02 x 0.20 m, default
    E = 1 MPa: f1 = 2.55 Hz), ``"stem"`` (a 0.015 m stem 0.15 m high with a 0.045 m cubic-ish
    head, E = 2 MPa: f1 = 1.46 Hz) or ``"plate"`` (upright, 0.12 wide, 0.006 thick, 0.12 m high,
    E = 1 MPa: f1 = 2.2 Hz out of plane). Linear FEM on quadratic tetrahedra, the ``num_modes``
    lowest modes (cached per shape and material), Rayleigh damping ``C = alpha M + beta K``;
    gravity is part of the rest shape. The modes advance exactly between control steps
    (any frequency is stable); the default objects ring at 1.5-2.6 Hz, below the 5 Hz Nyquist
    frequency of the 10 Hz observations, while their higher modes (>= 6.8 Hz) are simulated
    exactly but alias in the observations (a stiffer material rings faster than the control rate).

    **Robot.** ``robot="panda_hand"`` (default): the floating hand + closed fingers of the
    Franka URDF, pointing down; ``"panda"``: the whole arm in its holding posture on an
    overhead gantry. The robot is kinematic: its fingertip centre moves toward the commanded
    target at most ``max_speed`` m/s (default 0.5, at most 0.75 as in PushT4D-v0) and is never
    pushed back by the object, but it stalls (stops for the rest of the control period) where the
    object resists it with more than ``max_hand_force`` (default 10 N) in total in three substeps
    of a period (a push into a stiff direction, not a single impact) or where it would leave a point more than 1 mm deep
    (the penalty at its force cap cannot hold it: a stiff face), and stays stalled into the next
    period while it still presses that hard, as a force-limited arm would; links are placed by
    URDF forward kinematics.

    **Contact.** Gripper points inside the object's deformed surface push it with a penalty
    ``F = k delta + c d(delta)/dt`` per point (``contact_stiffness`` 1e5 N/m, ``contact_damping``
    2 N s/m, capped at ``max_contact_force`` 50 N) along the deformed surface normal, applied as
    modal forces; ``substeps`` (default 5) per control step, each split where a gripper point
    may reach the surface so that hand and surface move at most 2 mm relative to each other
    per substep (split again where a contact force speeds the surface up); the penalty is
    implicit with the exact modal step and passive (the object never gains more energy than the
    hand's work gives it; `physics.modal.contact`), so penetration stays well below 2 mm (about
    force / (k * contacts)).

    **Action.** ``action_mode="absolute"``: the fingertip xyz target (m),
    ``Box([-0.2, -0.2, 0.01], [0.2, 0.2, 0.35], float32)``; ``"delta"``: an xyz step from the
    current fingertip position, ``Box(-0.03, 0.03, (3,))`` (zero holds the hand still).
    Control at 10 Hz. Actions outside the box are clipped to it; NaN/inf or wrongly shaped
    actions raise ValueError.

    **Tasks** (``task``). The tip is the top centre of the object.
    ``"reach"``: a target tip displacement (horizontal, magnitude U(0.02, 0.05) m, direction
    uniform among the directions where the tip is at least a quarter as compliant as in its
    softest direction) is drawn at reset; reward = 1 - clip(|tip - target| / |target|, 0, 1);
    ``terminated`` (success) when |tip - target| < ``reach_tolerance`` (5 mm) within the time
    window of ``reach_window`` steps (default 50, i.e. 5 s), ``truncated`` when the window ends.
    ``"settle"``: the object starts ringing, flicked at its tip (an impulse in such a direction
    whose first swing reaches U(0.02, 0.04) m); reward = 1 - clip(sqrt(E / E0), 0, 1) with E the
    modal energy (J) and E0 its initial value; ``terminated`` (success) when
    E < ``settle_threshold`` * E0 (default 0.01). Both are truncated at 100 steps by the
    registered ``TimeLimit``.

    **Observation** (``obs_mode``, a ``Dict``): ``"state"``: ``agent_pos`` (3) fingertip xyz,
    ``tip_displacement`` (3), ``target_displacement`` (3; zeros for settle), ``modal_q`` and
    ``modal_qdot`` (k), ``qpos`` (fingertip xyz + held joint values). ``"rgbd"``: + ``rgb``,
    ``depth`` (metres), ``segmentation`` (0 table/background, 1 object, 2 robot), ``intrinsics``,
    ``cam2world`` as in PushT4D-v0 (scene rendered by splatting the deformed surface samples,
    the robot's link surfaces and a ray-cast table). ``"pointcloud"`` (default): state keys +
    ``scene_points``/``scene_colors``/``scene_normals``/``scene_labels`` (fused, robot removed,
    ``num_scene_points``) and ``gripper_points`` (Nr, 3). ``"all"``: both.

    **Info** every step: ``tip_displacement``, ``target_displacement``, ``tip_error``,
    ``modal_energy``, ``is_success``, ``max_penetration`` (m, deepest gripper point over the
    step's substeps), ``contact_force`` (N, total at the step's end), ``object_points`` (K, 3:
    the deformed positions of the same K surface samples every step, exact tracks); with
    cameras ``object_points_visible``; with a point cloud ``scene_track_ids`` (Ns: the object
    sample each object scene point shows, -1 static), ``tracks`` (= object_points) and
    ``track_visible`` (schema 2 of `worldmodel.data.schema`).

    **Reset.** Through ``self.np_random``: fingertips xy ~ U([-0.2, 0.2]^2) at least 0.06 m
    from the object, height U(0.05, top + 0.05), resampled while any gripper point touches the
    object; object at rest (reach) or flicked (settle). ``reset(options=...)`` accepts
    ``ee_pos`` (3), ``q``/``qdot`` (k modal state) and ``target_displacement`` (3).

    **Rendering.** ``render_mode`` as in PushT4D-v0 (`envs.base`): ``"rgb_array"``, ``"depth_array"``
    (metres), ``"rgbd_tuple"``, ``"depth_rgb"`` (colour-mapped depth, for videos), ``"human"`` (a live
    rerun viewer; needs a display and ``rerun-sdk``). ``render_size`` (None, int or (W, H)) renders
    with separate cameras of that size at the observation cameras' poses; observations never change.

    **Arguments.** ``obs_mode``, ``task``, ``shape``, ``robot``, ``action_mode``, ``render_mode``,
    ``render_size`` (None), ``image_size`` (96), ``num_cameras`` (2), ``num_scene_points`` (1024),
    ``num_gripper_points`` (256), ``num_object_points`` (512: tracked and rendered surface samples),
    ``object_point_fraction`` (0.25 of the scene points), ``youngs_modulus`` (Pa, None: the
    shape's default), ``poisson_ratio`` (0.3), ``density`` (1000 kg/m^3), ``rayleigh_alpha``
    (0.1 1/s), ``rayleigh_beta`` (2e-4 s), ``num_modes`` (16), the contact parameters,
    ``substeps``, ``max_speed``, ``reach_window``, ``reach_tolerance``, ``settle_threshold``,
    ``seed_points``; ``backend`` is accepted for a common command line and ignored (no rigid
    engine is used).

    **Version History.**
    ``v0`` (current): contact solved by `physics.modal.contact` (exact complementarity, passive,
    substeps refined near contact), ``max_speed`` at most 0.75 m/s, ``step`` before ``reset`` raises
    ``ResetNeeded``. Built on the task base `envs.base.TaskEnv` (trajectories unchanged): ``close``
    ends the env (later calls raise ``ClosedEnvironmentError``), a refused ``reset`` leaves the RNG as it
    was.
    """

    RESET_OPTIONS = ("ee_pos", "q", "qdot", "target_displacement")
    ACTION_MEANING = "fingertip xyz in metres"

    def __init__(
        self,
        obs_mode: str = "pointcloud",
        task: str = "reach",
        shape: str = "rod",
        robot: str = "panda_hand",
        action_mode: str = "absolute",
        render_mode: str | None = None,
        image_size: int | tuple[int, int] = 96,
        num_cameras: int = 2,
        num_scene_points: int = 1024,
        num_gripper_points: int = 256,
        num_object_points: int = 512,
        object_point_fraction: float = 0.25,
        youngs_modulus: float | None = None,
        poisson_ratio: float = 0.3,
        density: float = 1000.0,
        rayleigh_alpha: float = 0.1,
        rayleigh_beta: float = 2e-4,
        num_modes: int = 16,
        contact_stiffness: float = 1.0e5,
        contact_damping: float = 2.0,
        max_contact_force: float = 50.0,
        max_hand_force: float = 10.0,
        substeps: int = 5,
        max_speed: float = 0.5,
        reach_window: int = 50,
        reach_tolerance: float = 0.005,
        settle_threshold: float = 0.01,
        seed_points: int = 0,
        backend: str | None = None,
        render_size: int | tuple[int, int] | None = None,
    ):
        self.task = choice("task", task, TASKS)
        self.shape = choice("shape", shape, SHAPE_NAMES)
        self.robot_name = choice("robot", robot, ROBOTS)
        if backend is not None:
            choice("backend", backend, BACKENDS)
        num_object_points = positive_int("num_object_points", num_object_points, MAX_POINTS)
        self.substeps = positive_int("substeps", substeps)
        self.reach_window = positive_int("reach_window", reach_window)
        E, nu, density, num_modes = _material(self.shape, youngs_modulus, poisson_ratio, density, num_modes)
        self.max_speed = positive_float("max_speed", max_speed, MAX_SPEED, " m/s")
        self.max_hand_force = positive_float("max_hand_force", max_hand_force)
        self.reach_tolerance = positive_float("reach_tolerance", reach_tolerance)
        self.settle_threshold = positive_float("settle_threshold", settle_threshold)
        seed_points = nonnegative_int("seed_points", seed_points)
        alpha = nonnegative_float("rayleigh_alpha (Rayleigh mass damping, 1/s)", rayleigh_alpha)
        beta = nonnegative_float("rayleigh_beta (Rayleigh stiffness damping, s)", rayleigh_beta)
        self.damping = RayleighDamping(alpha, beta)
        self._contact_law = PenaltyContact(positive_float("contact_stiffness", contact_stiffness),
                                           nonnegative_float("contact_damping", contact_damping),
                                           positive_float("max_contact_force", max_contact_force))
        self._material = (E, nu, density, num_modes, seed_points)
        self._num_gripper_points = positive_int("num_gripper_points", num_gripper_points, MAX_POINTS)
        # the object first: the cameras' crop box and the splat radius depend on its size
        self.object = modal_object(self.shape, E, nu, density, num_modes, num_object_points, seed_points)
        self.object_radius = float(np.sqrt(_surface_area(self.object.shape.boxes) / num_object_points))
        self.tcp = np.array([REACH_XY, REACH_XY, 0.1])
        self.target_displacement = np.zeros(3)
        self.initial_energy = 0.0
        self._step_stats = (0.0, 0.0)  # deepest penetration (m) and contact force (N) of the last step
        super().__init__(
            obs_mode=obs_mode, action_mode=action_mode, render_mode=render_mode, image_size=image_size,
            num_cameras=num_cameras, num_scene_points=num_scene_points, num_gripper_points=num_gripper_points,
            object_point_fraction=fraction("object_point_fraction", object_point_fraction), seed_points=seed_points,
            render_size=render_size,
        )

    # ------------------------------------------------------------------ scene
    def _make_cameras(self, num: int, width: int, height: int) -> tuple[Camera, ...]:
        return poke_cameras(num, width, height)

    def _crop_box(self) -> tuple[np.ndarray, np.ndarray]:
        half = TABLE_HALF - CROP_MARGIN
        top = self.object.bounds[1, 2] + CROP_ABOVE_OBJECT
        return np.array([-half, -half, CROP_BOTTOM]), np.array([half, half, top])

    def _load_scene(self) -> None:
        """The modal dynamics, the hand, the contact solve over denser surface samples and the ray-cast table."""
        E, nu, density, num_modes, seed_points = self._material
        self.dynamics = ModalDynamics(self.object.modes, self.damping)
        touch = modal_object(self.shape, E, nu, density, num_modes, CONTACT_SAMPLES, seed_points + 1)
        self.robot = kinematic_robot(self.robot_name, self._num_gripper_points, seed_points)
        self.contact = ModalContactSolver(touch, self.dynamics, self._contact_law, len(self.robot.contact_offsets))
        self.scheduler = ContactScheduler(self.contact, self.dynamics, self.robot.contact_offsets, self.max_hand_force,
                                          guide=self.object)
        self._table = table_frames(self.cameras)
        self._view_table: tuple[tuple[Camera, ...], Frames | None] = ((), None)

    def _gripper_source(self) -> tuple[RobotDescription, tuple[str, ...]]:
        return self.robot.robot.desc, DEFAULT_GRIPPER_LINKS

    def _link_poses(self, links: tuple[str, ...]) -> np.ndarray:
        return self.robot.link_poses(self.tcp, links)

    def _target_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([-REACH_XY, -REACH_XY, Z_RANGE[0]]), np.array([REACH_XY, REACH_XY, Z_RANGE[1]])

    @property
    def modal_frequencies_hz(self) -> np.ndarray:
        """Natural frequencies (k,) of the object's modes in Hz."""
        return self.object.modes.frequencies_hz

    @property
    def damping_ratios(self) -> np.ndarray:
        """Rayleigh damping ratios (k,) of the modes."""
        return self.dynamics.damping_ratios

    def _state_spaces(self) -> dict[str, spaces.Space]:
        f32, inf = np.float32, np.inf
        k = self.object.num_modes
        return {
            "agent_pos": spaces.Box(self._target_low.astype(f32), self._target_high.astype(f32), dtype=f32),
            "tip_displacement": spaces.Box(-inf, inf, (3,), f32),
            "target_displacement": spaces.Box(-inf, inf, (3,), f32),
            "modal_q": spaces.Box(-inf, inf, (k,), f32),
            "modal_qdot": spaces.Box(-inf, inf, (k,), f32),
            "qpos": spaces.Box(-inf, inf, (3 + len(self.robot.joints),), f32),
        }

    # ------------------------------------------------------------------ reset
    def _touches(self, tcp: np.ndarray, clearance: float = 0.0) -> bool:
        """Whether a gripper contact point at ``tcp`` lies within ``clearance`` of the object at rest."""
        dist, _ = self.object.signed_distance(self.robot.contact_offsets + tcp)
        return bool(dist.min() < clearance)

    def _sample_ee(self) -> np.ndarray:
        rng, (lo, hi) = self.np_random, self.object.bounds
        for _ in range(MAX_RESET_DRAWS):
            xy = rng.uniform(-REACH_XY, REACH_XY, 2)
            gap = np.maximum(np.maximum(lo[:2] - xy, xy - hi[:2]), 0.0)
            if np.linalg.norm(gap) < START_CLEARANCE:
                continue
            tcp = np.array([*xy, rng.uniform(START_HEIGHT_MIN, hi[2] + START_HEIGHT_ABOVE)])
            if not self._touches(tcp, START_TOUCH_CLEARANCE):
                return tcp
        raise RuntimeError("could not place the gripper away from the object")

    def _compliant_direction(self) -> np.ndarray:
        """A horizontal unit vector in which the tip is at least a quarter as compliant as in its softest one."""
        C = self.object.tip_compliance(self.dynamics.omega)[:2, :2]
        soft = np.linalg.eigvalsh(C).max()
        for _ in range(MAX_RESET_DRAWS):
            a = self.np_random.uniform(-np.pi, np.pi)
            d = np.array([np.cos(a), np.sin(a)])
            if d @ C @ d >= COMPLIANT_FRACTION * soft:
                return np.array([*d, 0.0])
        raise RuntimeError("no compliant direction found")  # pragma: no cover - the softest one always qualifies

    def flick(self, direction: np.ndarray, amplitude: float) -> np.ndarray:
        """Modal velocities (k,) of an impulse at the tip along ``direction`` scaled so the tip swings about
        ``amplitude`` metres (sum over modes of the tip's modal amplitudes)."""
        qdot = self.object.tip_basis.T @ np.asarray(direction, dtype=float)
        swing = np.linalg.norm(self.object.tip_basis @ (qdot / self.dynamics.omega))
        return qdot * amplitude / swing

    def _parse_reset_options(self, options: dict) -> tuple:
        k = self.object.num_modes
        ee, q = option_vector(options, "ee_pos", 3), option_vector(options, "q", k)
        qdot = option_vector(options, "qdot", k)
        target = option_vector(options, "target_displacement", 3)
        if ee is not None and (np.any(ee < self._target_low) or np.any(ee > self._target_high)):
            raise ValueError(f"options['ee_pos'] must lie in {self._target_low.tolist()}.."
                             f"{self._target_high.tolist()}, got {ee.tolist()}")
        return ee, q, qdot, target

    def _initialize_episode(self, parsed: tuple) -> None:
        ee, q, qdot, target = parsed
        self.tcp = self._sample_ee() if ee is None else ee
        if self.task == "reach":
            self.target_displacement = (self._compliant_direction() * self.np_random.uniform(*TARGET_RANGE)
                                        if target is None else target)
            if target is None and qdot is None:
                qdot = np.zeros(self.object.num_modes)
        else:
            self.target_displacement = np.zeros(3) if target is None else target
            if qdot is None:
                qdot = self.flick(self._compliant_direction(), self.np_random.uniform(*RING_RANGE))
        self.dynamics.reset(q, qdot)
        self.initial_energy = self.dynamics.energy()
        self._step_stats = (0.0, 0.0)
        self.scheduler.memory.forget()

    # ------------------------------------------------------------------- step
    def _tool_position(self) -> np.ndarray:
        return self.tcp

    def _step_physics(self, target: np.ndarray) -> None:
        """The hand moves toward the target at most ``max_speed``; contact and modes advance in substeps."""
        travel = target - self.tcp
        dist = float(np.linalg.norm(travel))
        if dist > self.max_speed * CONTROL_DT:  # the speed-limited setpoint of this period
            travel *= self.max_speed * CONTROL_DT / dist
        velocity = travel / CONTROL_DT  # the hand moves at constant velocity toward its setpoint unless it stalls
        self.tcp, max_penetration, force = self.scheduler.advance(self.tcp, velocity, CONTROL_DT, self.substeps,
                                                                  self._step_stats[1])
        self._step_stats = (max_penetration, force)

    def _evaluate(self, info: dict) -> tuple[float, bool, bool]:
        if self.task == "reach":
            scale = max(float(np.linalg.norm(self.target_displacement)), 1e-9)
            reward = 1.0 - min(info["tip_error"] / scale, 1.0)
        else:
            ratio = info["modal_energy"] / self.initial_energy if self.initial_energy > 0 else 0.0
            reward = 1.0 - min(float(np.sqrt(ratio)), 1.0)
        success = bool(info["is_success"])
        truncated = self.task == "reach" and self._elapsed >= self.reach_window and not success
        return reward, success, truncated

    # ------------------------------------------------------------ observation
    def tip_displacement(self) -> np.ndarray:
        """Current displacement (3,) of the object's tip (m)."""
        return self.object.tip_basis @ self.dynamics.q

    def _task_status(self, tip: np.ndarray, energy: float) -> dict:
        """``tip_error`` and ``is_success`` of the task."""
        if self.task == "reach":
            err = float(np.linalg.norm(tip - self.target_displacement))
            return {"tip_error": err, "is_success": err < self.reach_tolerance}
        ratio = energy / self.initial_energy if self.initial_energy > 0 else 0.0
        return {"tip_error": float(np.linalg.norm(tip)), "is_success": ratio < self.settle_threshold}

    def _object_points(self) -> np.ndarray:
        """Deformed positions (K, 3) of the object's surface samples."""
        return self.object.surface + self.object.displacements(self.dynamics.q)

    def _observe_task(self) -> tuple[dict, dict]:
        dyn = self.dynamics
        tip = self.tip_displacement()
        energy = dyn.energy()
        obs = {
            "agent_pos": self.tcp.astype(np.float32),
            "tip_displacement": tip.astype(np.float32),
            "target_displacement": self.target_displacement.astype(np.float32),
            "modal_q": dyn.q.astype(np.float32),
            "modal_qdot": dyn.qdot.astype(np.float32),
            "qpos": self.robot.qpos(self.tcp).astype(np.float32),
        }
        self._points = self._object_points()
        info = {
            "tip_displacement": tip,
            "target_displacement": self.target_displacement.copy(),
            "modal_energy": energy,
            "max_penetration": self._step_stats[0],
            "contact_force": self._step_stats[1],
            "object_points": self._points.astype(np.float32),
            **self._task_status(tip, energy),
        }
        return obs, info

    def _object_visibility(self, info: dict, frames: Frames) -> np.ndarray:
        return self.fuser.visible(self._points, frames.depth, frames.segmentation, LABEL_OBJECT)

    def _track_info(self, obs: dict, info: dict) -> None:
        """With a point cloud: the surface samples as tracks and the sample each object scene point shows."""
        if "scene_points" in obs:
            info.update(scene_track_ids=scene_track_ids(obs, self._points), tracks=info["object_points"],
                        track_visible=info["object_points_visible"])

    def _render_frames(self) -> Frames:
        return render_scene(self.cameras, self._table, self._object_points(), self.object.colors, self.object_radius,
                            self.robot, self.tcp)

    def _render_views(self, cameras: tuple[Camera, ...], decorations: bool = True) -> Frames:
        kept = self._view_table[0]  # the ray-cast table of the last cameras is kept for the next call
        if len(kept) != len(cameras) or any(a is not b for a, b in zip(kept, cameras, strict=True)):
            self._view_table = (cameras, table_frames(cameras))
        return render_scene(cameras, self._view_table[1], self._object_points(), self.object.colors,
                            self.object_radius, self.robot, self.tcp)

    # ------------------------------------------------------------------ state
    def _save_state(self) -> tuple:
        """The modal state, the hand, the task and the contact points' pull-backs."""
        d = self.dynamics
        return (d.q.copy(), d.qdot.copy(), self.tcp.copy(), self.target_displacement.copy(), self.initial_energy,
                self._step_stats, *self.scheduler.memory.snapshot())

    def _restore_state(self, state: tuple) -> None:
        q, qdot, tcp, target, e0, stats, *pull_backs = state
        self.scheduler.memory.restore(tuple(pull_backs))
        self.dynamics.reset(q, qdot)
        self.tcp, self.target_displacement = np.array(tcp, dtype=float), np.array(target, dtype=float)
        self.initial_energy, self._step_stats = float(e0), tuple(stats)


def _material(shape: str, youngs_modulus: float | None, poisson_ratio: float, density: float, num_modes: int
              ) -> tuple[float, float, float, int]:
    """Checked (E, Poisson ratio, density, mode count) of the object; E None takes the shape's default."""
    E = SHAPES[shape].youngs_modulus if youngs_modulus is None else positive_float("youngs_modulus", youngs_modulus)
    if isinstance(poisson_ratio, bool) or not isinstance(poisson_ratio, (int, float, np.integer, np.floating)) \
            or not -1.0 < poisson_ratio < 0.5:
        raise ValueError(f"poisson_ratio must lie in (-1, 0.5), got {poisson_ratio!r}")
    return float(E), float(poisson_ratio), positive_float("density", density), positive_int("num_modes", num_modes)


def _surface_area(boxes: tuple) -> float:
    """Total face area (m^2) of a set of boxes (an upper bound of their union's surface)."""
    b = np.array(boxes, dtype=float)
    e = b[:, 1] - b[:, 0]
    return float(2 * (e[:, 0] * e[:, 1] + e[:, 1] * e[:, 2] + e[:, 0] * e[:, 2]).sum())
