"""Free bodies made of convex pieces (`FreeBody.hulls`) with explicit mass properties, in MuJoCo and PyBullet.

A box given as one hull behaves as the same box given as a `Box`; an L of two hulls slides straight when pushed
on its centre-of-mass line, alike in both engines; a hull body rests still on the table; the engines hold the
spec's mass and inertia; both renderers draw and label the body; bad specs raise.
"""

import numpy as np
import pybullet as pb
import pytest
from scipy.spatial.transform import Rotation

from envs.robot_setup import make_robot
from envs.workspace import table
from physics.render import LABEL_OBJECT
from physics.render.cameras import backproject, look_at, pinhole, pixel_rays
from physics.rigid import BACKENDS, Box, FreeBody, Scene, make_backend
from physics.rigid.bodies import hull_mesh, principal_axes, spread_points, uniform_mass_properties

HALF = (0.05, 0.03, 0.02)  # m, the test box
MASS = 0.4  # kg
PUSH_SPEED = 0.1  # m/s along +y, for 1 s (ten control periods)


def box_points(lo, hi) -> np.ndarray:
    """The 8 corners of an axis-aligned box."""
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])], float)


def box_inertia(mass: float, half) -> np.ndarray:
    """Inertia of a solid box about its centre."""
    a, b, c = (2 * np.asarray(half)) ** 2
    return mass / 12 * np.diag([b + c, a + c, a + b])


def l_body(z0: float = 0.0, visual: bool = False) -> FreeBody:
    """An L of two box hulls (bar along x, leg along +y at its -x end) whose bottom is ``z0`` in its frame."""
    hulls = (box_points((-0.06, -0.02, z0), (0.06, 0.02, z0 + 0.04)),
             box_points((-0.06, 0.02, z0), (-0.02, 0.08, z0 + 0.04)))
    com, inertia = uniform_mass_properties(hulls, MASS)
    mesh = hull_mesh(np.concatenate(hulls)) if visual else None
    return FreeBody("obj", hulls=hulls, mass=MASS, com=com, inertia=inertia, rgba=(0.2, 0.4, 0.8, 1.0),
                    visual=(mesh.vertices, mesh.faces) if visual else None)


BOX_FORMS = {
    "boxes": FreeBody("obj", (Box("obj_box", HALF, (0.0, 0.0, HALF[2])),), mass=MASS),
    "hull": FreeBody("obj", hulls=(box_points((-HALF[0], -HALF[1], 0), (HALF[0], HALF[1], 2 * HALF[2])),),
                     mass=MASS, com=(0.0, 0.0, HALF[2]), inertia=box_inertia(MASS, HALF)),
}


@pytest.fixture(scope="module")
def hand():
    return make_robot("panda_hand").model


def simulate(backend: str, body: FreeBody, robot, cameras=()):
    """A backend for ``body`` on the table (no walls) with the floating ``robot``."""
    return make_backend(backend, Scene(table=table(), statics=(), body=body, robot=robot, cameras=cameras,
                                       timestep=0.005))


def yaw_deg(pose7: np.ndarray) -> float:
    return float(np.degrees(Rotation.from_quat([*pose7[4:], pose7[3]]).as_euler("zyx")[0]))


def push(backend: str, body: FreeBody, robot, x: float) -> tuple[np.ndarray, float]:
    """The body's pose after a 1 s straight push along +y by the hand starting at (x, -0.06), and the largest
    push-back force the backend measured from the body on the robot."""
    sim = simulate(backend, body, robot)
    try:
        start = np.array([x, -0.06])
        sim.reset(np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]), start)
        force = 0.0
        for k in range(10):
            sim.step(start + [0.0, PUSH_SPEED * 0.1 * (k + 1)])
            force = max(force, sim._push_force())
        return sim.body_pose7(), force
    finally:
        sim.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_box_as_a_hull_moves_as_the_box(backend, hand):
    (boxes, _), (hull, force) = (push(backend, BOX_FORMS[k], hand, 0.0) for k in ("boxes", "hull"))
    assert hull[1] > 0.07  # pushed 7 cm or more
    assert force > 0.1  # the robot's contact with the hull body is measured
    np.testing.assert_allclose(hull[:3], boxes[:3], atol=1e-3)
    assert abs(yaw_deg(hull) - yaw_deg(boxes)) < 1.0


def test_l_body_pushed_on_its_com_line_slides_straight_alike_in_both_engines(hand):
    body = l_body()
    final = {}
    for backend in BACKENDS:
        pose, force = push(backend, body, hand, float(body.com[0]))
        assert pose[1] > 0.07 and force > 0.1
        assert abs(yaw_deg(pose)) < 2.0, backend
        assert abs(pose[2]) < 1e-3, backend  # still flat on the table
        final[backend] = pose
    np.testing.assert_allclose(final["mujoco"][:2], final["pybullet"][:2], atol=3e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hull_body_rests_on_the_table(backend, hand):
    body = l_body(z0=0.005)  # the body frame 5 mm below the body's bottom: the pose is not the COM's
    pose = np.array([0.05, -0.03, -0.005, np.cos(0.35), 0.0, 0.0, np.sin(0.35)])  # yaw 0.7 rad
    sim = simulate(backend, body, hand)
    try:
        sim.reset(pose, np.array([0.3, 0.3]))
        np.testing.assert_allclose(sim.body_pose7(), pose, atol=1e-9)  # reset and read back the body frame
        for _ in range(20):  # 2 s
            sim.step(np.array([0.3, 0.3]))
        end = sim.body_pose7()
    finally:
        sim.close()
    assert np.linalg.norm(end[:2] - pose[:2]) < 5e-4
    assert abs(yaw_deg(end) - yaw_deg(pose)) < 0.1
    corners = Rotation.from_quat([*end[4:], end[3]]).apply(np.concatenate(body.hulls)) + end[:3]
    assert abs(corners[:, 2].min()) < 2e-3  # the lowest point sits at the table


@pytest.mark.parametrize("name", ["box", "L"])
def test_engines_hold_the_spec_mass_properties(name):
    body = BOX_FORMS["hull"] if name == "box" else l_body()
    moments = np.sort(np.linalg.eigvalsh(body.inertia))
    scene = Scene(table=table(), statics=(), body=body, robot=make_robot("panda_hand").model, cameras=())
    mj = make_backend("mujoco", scene)
    b = mj.model.body("obj").id
    assert mj.model.body_mass[b] == pytest.approx(MASS, rel=1e-9)
    np.testing.assert_allclose(np.sort(mj.model.body_inertia[b]), moments, rtol=1e-6)
    np.testing.assert_allclose(mj.model.body_ipos[b], body.com, atol=1e-9)
    bt = make_backend("pybullet", scene)
    try:
        info = pb.getDynamicsInfo(bt.body, -1, physicsClientId=bt.client)
        assert info[0] == pytest.approx(MASS, rel=1e-9)
        np.testing.assert_allclose(np.sort(info[2]), moments, rtol=1e-6)
    finally:
        bt.close()
    if name == "box":  # the uniform-density helper and the analytic box agree
        com, inertia = uniform_mass_properties(body.hulls, MASS)
        np.testing.assert_allclose(com, body.com, atol=1e-12)
        np.testing.assert_allclose(inertia, body.inertia, atol=1e-12)
    moments_r, R = principal_axes(body.inertia)
    np.testing.assert_allclose(R @ np.diag(moments_r) @ R.T, body.inertia, atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)


@pytest.mark.parametrize("visual", [False, True])
def test_both_renderers_draw_and_label_the_hull_body(visual, hand):
    cam = pinhole("top", look_at(np.array([0.0, -0.25, 0.4]), np.array([0.0, 0.02, 0.0])), 64, 64, 50.0)
    body = l_body(visual=visual)
    pose = np.array([0.05, 0.02, 0.0, np.cos(0.3), 0.0, 0.0, np.sin(0.3)])
    R = Rotation.from_quat([*pose[4:], pose[3]])
    masks = []
    for backend in BACKENDS:
        sim = simulate(backend, body, hand, cameras=(cam,))
        try:
            sim.reset(pose, np.array([0.3, -0.3]))
            frames = sim.render()
        finally:
            sim.close()
        mask = frames.segmentation[0] == LABEL_OBJECT
        assert mask.sum() > 100, backend
        points = backproject(frames.depth[0], pixel_rays(cam), cam.cam2world)[mask]
        local = R.inv().apply(points - pose[:3])  # the drawn surface lies on the body (its own frame)
        lo, hi = np.concatenate(body.hulls).min(0), np.concatenate(body.hulls).max(0)
        assert np.all(local > lo - 3e-3) and np.all(local < hi + 3e-3), backend
        assert np.abs(frames.rgb[0][mask].mean(0) / 255 - (0.2, 0.4, 0.8)).max() < 0.4  # drawn in its colour
        masks.append(mask)
    assert (masks[0] & masks[1]).sum() / (masks[0] | masks[1]).sum() > 0.9


CUBE = box_points((0, 0, 0), (0.02, 0.02, 0.02))
GOOD = dict(mass=0.1, com=(0.01, 0.01, 0.01), inertia=box_inertia(0.1, (0.01, 0.01, 0.01)))


@pytest.mark.parametrize("kwargs, words", [
    (dict(hulls=(CUBE[:3],)), "at least 4 non-coplanar"),
    (dict(hulls=(CUBE[CUBE[:, 2] == 0],)), "at least 4 non-coplanar"),
    (dict(hulls=(CUBE[:, :2],)), r"\(V, 3\)"),
    (dict(hulls=(CUBE,), mass=0.0), "mass must be positive"),
    (dict(hulls=(CUBE,), mass=-1.0), "mass must be positive"),
    (dict(hulls=(CUBE,), inertia=GOOD["inertia"] + np.triu(np.full((3, 3), 1e-6), 1)), "symmetric"),
    (dict(hulls=(CUBE,), inertia=np.diag([1e-5, 1e-5, -1e-5])), "positive definite"),
    (dict(hulls=(CUBE,), inertia=np.diag([1e-5, 1e-5, 3e-5])), "triangle inequality"),
    (dict(hulls=(CUBE,), inertia=np.eye(2)), r"\(3, 3\)"),
    (dict(hulls=(CUBE,), com=None), "explicit com and inertia"),
    (dict(hulls=(CUBE,), com=(0.0, np.nan, 0.0)), "com must be 3 finite"),
    (dict(hulls=(CUBE,), visual=(CUBE, np.array([[0, 1, 9]]))), "visual faces"),
    (dict(boxes=(Box("b", (0.01, 0.01, 0.01)),), hulls=(CUBE,)), "not both"),
    (dict(), "got neither"),
    (dict(boxes=(Box("b", (0.01, 0.01, 0.01)),), com=(0.0, 0.0, 0.0), inertia=None), "hull form"),
])
def test_bad_specs_raise_naming_the_problem(kwargs, words):
    with pytest.raises(ValueError, match=words):
        FreeBody("thing", **(GOOD | kwargs))


def test_spread_points_keeps_small_sets_and_spreads_large_ones():
    ring = np.c_[np.cos(np.arange(200) * 0.0314), np.sin(np.arange(200) * 0.0314), np.zeros(200)]
    np.testing.assert_array_equal(spread_points(ring[:10], 64), ring[:10])
    picked = spread_points(ring, 16)
    assert len(np.unique(picked, axis=0)) == 16
    gaps = np.linalg.norm(picked[:, None] - picked[None], axis=-1) + np.eye(16) * 9
    assert gaps.min(axis=1).max() < 3 * gaps.min()  # roughly even spacing
