"""URDF loading, batched forward kinematics (numpy vs torch vs yourdfpy) and gripper points."""

import numpy as np
import pytest
import torch

from robots import ForwardKinematics, GripperPoints, load_description, load_urdf, panda_urdf_path


def test_panda_description_resolves_meshes():
    desc = load_description()
    assert desc.root == "panda_link0"
    assert desc.actuated == tuple(f"panda_joint{i}" for i in range(1, 8)) + ("panda_finger_joint1",)
    for link in ("panda_hand", "panda_leftfinger"):
        assert desc.visual[link] and all(__import__("os").path.isfile(m.path) for m in desc.visual[link])


def test_fk_matches_yourdfpy_numpy_and_torch():
    desc = load_description()
    fk = ForwardKinematics(desc)
    urdf = load_urdf(panda_urdf_path(), build_scene_graph=True)
    rng = np.random.default_rng(0)
    lo, hi = desc.joint_limits()
    q = rng.uniform(lo, hi, size=(5, fk.dof))
    ours = fk.numpy(q)
    ours_t = fk.torch(torch.as_tensor(q)).numpy()
    np.testing.assert_allclose(ours, ours_t, atol=1e-12)
    for b in range(len(q)):
        urdf.update_cfg(q[b])
        for name in ("panda_link4", "panda_hand", "panda_rightfinger"):
            ref = urdf.get_transform(name, desc.root)
            np.testing.assert_allclose(ours[b, desc.link_index(name)], ref, atol=1e-10)


def test_fk_torch_is_differentiable_and_batched_over_leading_dims():
    fk = ForwardKinematics(load_description())
    q = torch.zeros(2, 3, fk.dof, dtype=torch.float64, requires_grad=True)
    poses = fk.torch(q)
    assert poses.shape == (2, 3, len(fk.desc.links), 4, 4)
    poses[..., -1, :3, 3].sum().backward()
    assert torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0


def test_gripper_points_are_seeded_on_the_surface_and_follow_fk():
    desc = load_description()
    a = GripperPoints(desc, num_points=200, seed=3)
    b = GripperPoints(desc, num_points=200, seed=3)
    np.testing.assert_array_equal(a.local_points, b.local_points)
    assert a.num_points == 200
    np.testing.assert_allclose(np.linalg.norm(a.local_normals, axis=1), 1.0, atol=1e-9)
    fk = ForwardKinematics(desc)
    q = np.zeros((4, fk.dof))
    q[:, 0] = np.linspace(0, 1, 4)
    pts, _ = a.from_joints(fk, q)
    # rotating joint 1 (about the base z axis) rotates every gripper point about z: radius and height kept
    r = np.linalg.norm(pts[..., :2], axis=-1)
    np.testing.assert_allclose(r, r[:1].repeat(4, 0), atol=1e-9)
    np.testing.assert_allclose(pts[..., 2], pts[:1, :, 2].repeat(4, 0), atol=1e-9)


def test_gripper_trajectory_features_match_finite_differences():
    desc = load_description()
    gp = GripperPoints(desc, num_points=32, seed=0)
    fk = ForwardKinematics(desc)
    t = np.arange(10) * 0.1
    q = np.zeros((10, fk.dof))
    q[:, 0] = 0.5 * t**2  # constant angular acceleration 1 rad/s^2
    traj = gp.joint_trajectory(fk, q, dt=0.1)
    assert traj.points.shape == traj.velocity.shape == traj.acceleration.shape == (10, 32, 3)
    np.testing.assert_allclose(traj.velocity[3], (traj.points[4] - traj.points[2]) / 0.2, atol=1e-12)
    assert traj.features().shape == (10, 32, 12 + 8)


# A gripper made only of URDF primitives: a palm (box) and three fingers, one per primitive, reaching down to
# the tool frame's origin (its z axis points down once mounted).
PRIMITIVE_GRIPPER = """<?xml version="1.0"?>
<robot name="primitive_gripper">
  <link name="palm">{palm}</link>
  <joint name="to_box" type="fixed"><parent link="palm"/><child link="finger_box"/><origin xyz="-0.04 0 0"/></joint>
  <link name="finger_box">{box}</link>
  <joint name="to_cylinder" type="prismatic"><parent link="palm"/><child link="finger_cylinder"/>
    <axis xyz="0 1 0"/><limit lower="-0.01" upper="0.01" effort="10" velocity="1"/></joint>
  <link name="finger_cylinder">{cylinder}</link>
  <joint name="to_sphere" type="fixed"><parent link="palm"/><child link="finger_sphere"/>
    <origin xyz="0.04 0 0"/></joint>
  <link name="finger_sphere">{sphere}</link>
</robot>
"""
SHAPES = {  # link: (origin z, URDF geometry)
    "palm": (-0.09, '<box size="0.12 0.03 0.02"/>'),
    "finger_box": (-0.04, '<box size="0.012 0.016 0.08"/>'),
    "finger_cylinder": (-0.04, '<cylinder radius="0.007" length="0.08"/>'),
    "finger_sphere": (-0.012, '<sphere radius="0.012"/>'),
}


def _primitive_gripper(tmp_path) -> str:
    def geometry(link):
        z, geom = SHAPES[link]
        inner = f'<origin xyz="0 0 {z}"/><geometry>{geom}</geometry>'
        return f"<visual>{inner}</visual><collision>{inner}</collision>"

    path = tmp_path / "primitive_gripper.urdf"
    path.write_text(PRIMITIVE_GRIPPER.format(palm=geometry("palm"), box=geometry("finger_box"),
                                             cylinder=geometry("finger_cylinder"), sphere=geometry("finger_sphere")))
    return str(path)


def test_urdf_primitives_give_gripper_points_on_their_surfaces(tmp_path):
    desc = load_description(_primitive_gripper(tmp_path))
    assert [r.shape for r in desc.collision["finger_cylinder"]] == ["cylinder"]
    links = ("finger_box", "finger_cylinder", "finger_sphere")
    gp = GripperPoints(desc, links, num_points=600, seed=1, mesh="collision")
    assert set(np.unique(gp.link_ids)) == {0, 1, 2}
    for i, link in enumerate(links):
        p = gp.local_points[gp.link_ids == i] - (0.0, 0.0, SHAPES[link][0])  # in the primitive's own frame
        if link == "finger_box":
            on_face = np.max(np.abs(p) / (0.006, 0.008, 0.04), axis=1)
            np.testing.assert_allclose(on_face, 1.0, atol=1e-9)
        elif link == "finger_cylinder":
            r, z = np.hypot(p[:, 0], p[:, 1]), np.abs(p[:, 2])
            side = np.abs(r - 0.007) < 0.007 * 2e-3
            cap = np.abs(z - 0.04) < 1e-9
            assert np.all((side & (z <= 0.04 + 1e-9)) | (cap & (r <= 0.007 + 1e-9))) and side.any() and cap.any()
        else:
            np.testing.assert_allclose(np.linalg.norm(p, axis=1), 0.012, rtol=1.5e-3)  # facets of the tessellation


def test_pr2_gripper_fingertip_boxes_are_collision_geometry():
    import pybullet_data

    from robots import link_mesh

    desc = load_description(f"{pybullet_data.getDataPath()}/pr2_gripper.urdf")
    assert [r.shape for r in desc.collision["right_tip"]] == ["box", "box"]
    np.testing.assert_allclose(link_mesh(desc, "left_tip", "collision").extents, (0.03, 0.01, 0.02), atol=1e-12)
    gp = GripperPoints(desc, ("left_tip", "right_tip"), num_points=64, seed=0, mesh="collision")
    assert gp.local_points.shape == (64, 3) and set(np.unique(gp.link_ids)) == {0, 1}


@pytest.mark.parametrize("geometry, words", [
    ("<geometry><capsule radius='0.01' length='0.02'/></geometry>", "tip.urdf.*capsule.*supported geometry"),
    ("<geometry/>", "tip.urdf.*supported geometry"),
    ("", "tip.urdf.*supported geometry"),
    ("<geometry><sphere radius='-0.01'/></geometry>", "'tip': collision element 0: sphere dimensions must be positive"),
])
def test_unsupported_urdf_geometry_is_refused_by_name(tmp_path, geometry, words):
    path = tmp_path / "tip.urdf"
    path.write_text(f'<robot name="r"><link name="tip"><collision>{geometry}</collision></link></robot>')
    with pytest.raises(ValueError, match=words):
        load_description(str(path))


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
@pytest.mark.parametrize("finger", ["finger_box", "finger_cylinder", "finger_sphere"])
def test_urdf_primitive_fingers_collide_and_push_the_block(tmp_path, finger, backend):
    """Each primitive, alone a contact link, pushes the T block ahead of it instead of passing through it."""
    from envs.pusht import geometry as geo
    from envs.pusht.scene import make_scene
    from envs.robot_setup import gripper_robot
    from physics.rigid import make_backend

    robot = gripper_robot(load_description(_primitive_gripper(tmp_path)), "palm", (finger,))
    sim = make_backend(backend, make_scene(robot, cameras=()))
    x = {"finger_box": 0.04, "finger_cylinder": 0.0, "finger_sphere": -0.04}[finger]  # the finger over x = 0
    sim.reset(geo.pose7_from_pose3((0.0, 0.0, 0.0)), np.array([x, -0.05]))
    for _ in range(4):
        sim.step(np.array([x, 0.1]))
    block, tool = sim.body_pose7(), sim.tcp_xy()
    assert block[1] > 0.05  # pushed 5 cm or more along +y (the bar's outer edge is the block's origin)
    assert tool[1] < block[1]  # the finger is still behind the bar's edge: it did not pass through
    assert abs(block[2]) < 2e-3  # on the table
    sim.close()
