"""URDF loading, batched forward kinematics (numpy vs torch vs yourdfpy) and gripper points."""

import numpy as np
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
