"""The fast observation path equals the plain one bit for bit: `PointCloudFuser.fuse` (incremental: only changed
pixels are keyed again) against a direct reference (np.unique dedup, argsort subsets, all-pixel back-projection),
`PointCloudFuser.visible` against a per-camera loop, and MuJoCo's composited camera frames (static geoms drawn once
and kept) against full draws, including after the cameras, the table colour and the light change; the point-cloud
frames (the robot's colours not drawn) equal full draws in depth, labels and every other pixel's colour."""

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from envs.pointcloud import even_subset, morton_codes
from physics.render import LABEL_OBJECT, LABEL_ROBOT, project


def reference_fuse(fuser, rgb, depth, labels):
    """The fused cloud as the module docstring states it, written plainly (the original implementation)."""
    world = fuser.world_points(depth)
    keep = ((depth > 0) & (labels != LABEL_ROBOT)).reshape(-1)
    for axis in range(3):
        keep &= (world[:, axis] >= fuser.crop_min[axis]) & (world[:, axis] <= fuser.crop_max[axis])
    idx = np.flatnonzero(keep)
    pts, lab = world[idx], labels.reshape(-1)[idx]
    codes = morton_codes(np.floor((pts - fuser.crop_min) / fuser.voxel).astype(np.int64))
    _, first = np.unique(codes * np.uint64(2) + (lab == LABEL_OBJECT).astype(np.uint64), return_index=True)
    is_obj = lab[first] == LABEL_OBJECT
    obj, stat = first[is_obj], first[~is_obj]
    n_obj = min(len(obj), int(round(fuser.object_fraction * fuser.num_points)))
    if len(stat) == 0:
        n_obj = fuser.num_points
    chosen = np.concatenate([obj[even_subset(codes[obj], n_obj)],
                             stat[even_subset(codes[stat], fuser.num_points - n_obj)]])
    pix = idx[chosen]
    return (pts[chosen].astype(np.float32), (rgb.reshape(-1, 3)[pix] / 255.0).astype(np.float32),
            fuser.normals(world, depth, pix).astype(np.float32), lab[chosen].astype(np.int32))


def reference_visible(fuser, points, depth, labels, label, tol=0.01):
    """`PointCloudFuser.visible` written plainly: one z-buffer test per camera."""
    seen = np.zeros(len(points), dtype=bool)
    for v, cam in enumerate(fuser.cameras):
        u, w, z = project(points, cam)
        ui, vi = np.rint(u).astype(int), np.rint(w).astype(int)
        inside = (z > 0) & (ui >= 0) & (ui < cam.width) & (vi >= 0) & (vi < cam.height)
        ui, vi = np.clip(ui, 0, cam.width - 1), np.clip(vi, 0, cam.height - 1)
        seen |= inside & (labels[v, vi, ui] == label) & (depth[v, vi, ui] > z - tol)
    return seen


def frames_along_rollout(env, steps=12, seed=0):
    """Frames of ``steps`` random steps of ``env`` (unwrapped, rendering cameras)."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    out = []
    for _ in range(steps):
        env.step(env.action_space.sample())
        f = env._render_frames()
        out.append((f.rgb.copy(), f.depth.copy(), f.segmentation.copy()))
    return out


@pytest.mark.parametrize("robot, fraction", [("panda_hand", 0.25), ("panda", 0.9)])
def test_fuse_matches_reference_bit_for_bit(robot, fraction):
    env = gym.make("PushT4D-v0", robot=robot, obs_mode="pointcloud", image_size=64, num_scene_points=512,
                   block_point_fraction=fraction).unwrapped
    try:
        frames = frames_along_rollout(env)
        for rgb, depth, labels in frames + frames[::-3]:  # step by step, then jumps back (more pixels change)
            cloud = env.fuser.fuse(rgb, depth, labels)
            got = (cloud.points, cloud.colors, cloud.normals, cloud.labels)
            for a, b in zip(got, reference_fuse(env.fuser, rgb, depth, labels), strict=True):
                assert a.dtype == b.dtype and np.array_equal(a, b)
            points = env._observe_task()[1]["object_points"]
            assert np.array_equal(env.fuser.visible(points, depth, labels, LABEL_OBJECT),
                                  reference_visible(env.fuser, points, depth, labels, LABEL_OBJECT))
        # no object pixel at all, and no static one: the budget goes to the other class (cycled where too few)
        rgb, depth, labels = frames_along_rollout(env, steps=1)[0]
        for masked in (labels == LABEL_OBJECT, labels != LABEL_OBJECT):
            d = np.where(masked, 0.0, depth).astype(np.float32)
            cloud = env.fuser.fuse(rgb, d, labels)
            ref = reference_fuse(env.fuser, rgb, d, labels)
            assert np.array_equal(cloud.points, ref[0]) and np.array_equal(cloud.labels, ref[3])
    finally:
        env.close()


def test_composited_frames_equal_full_draws():
    env = gym.make("Push4D-v0", object="L", obs_mode="rgbd", image_size=64,
                   randomize={"table_color": True, "light": True, "camera_pose": 0.1}).unwrapped
    try:
        for seed in (0, 1):  # a new table colour, light and camera poses each episode: the kept frames follow
            env.reset(seed=seed)
            env.action_space.seed(seed)
            for _ in range(6):
                env.step(env.action_space.sample())
                r, data = env.sim._renderer, env.sim.data
                cams = env.cameras
                composited = r.render(data, cams[0].width, cams[0].height)
                assert r._composable  # this scene is drawn composited
                full = r._render_full(data, cams[0].width, cams[0].height, len(cams))
                for a, b in zip(composited, full, strict=True):
                    assert a.dtype == b.dtype and np.array_equal(a, b)
    finally:
        env.close()


@pytest.mark.parametrize("env_id, kwargs", [
    ("PushT4D-v0", {"robot": "panda_hand"}), ("PushT4D-v0", {"robot": "panda"}),
    ("Push4D-v0", {"object": "duck", "randomize": {"table_color": True, "light": True, "camera_pose": 0.1}}),
])
def test_point_cloud_frames_equal_full_draws_but_the_robots_colours(env_id, kwargs):
    env = gym.make(env_id, obs_mode="pointcloud", image_size=64, num_scene_points=512, **kwargs).unwrapped
    try:
        robot_pixels = 0
        for seed in (0, 1):
            env.reset(seed=seed)
            env.action_space.seed(seed)
            for _ in range(6):
                env.step(env.action_space.sample())
                r, data, cams = env.sim._renderer, env.sim.data, env.cameras
                rgb, depth, labels = r.render(data, cams[0].width, cams[0].height, robot_rgb=False)
                assert r._split_passes()  # drawn as a robot-free colour pass and a robot depth pass
                full = r._render_full(data, cams[0].width, cams[0].height, len(cams))
                assert np.array_equal(depth, full[1]) and np.array_equal(labels, full[2])
                seen = full[2] != LABEL_ROBOT
                assert np.array_equal(rgb[seen], full[0][seen])
                robot_pixels += (~seen).sum()
        assert robot_pixels > 0
    finally:
        env.close()


def test_sites_are_not_drawn_and_render_shows_the_whole_robot_in_point_cloud_mode():
    """The tool centre point's marker (a site) is no surface: never drawn, so never a static scene point; and
    render() of a point-cloud env shows the robot's colours (its observations' frames do not have them)."""
    import mujoco

    cloud = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="pointcloud", image_size=64, num_scene_points=512,
                     render_mode="rgb_array")
    images = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="rgbd", image_size=64)
    try:
        cloud.reset(seed=2)
        obs, _ = images.reset(seed=2)
        for action in np.random.default_rng(0).uniform(-0.3, 0.3, (4, 2)).astype(np.float32):
            cloud.step(action)
            obs = images.step(action)[0]
            assert np.array_equal(cloud.render(), np.concatenate(list(obs["rgb"]), axis=1))
        scene = cloud.unwrapped.sim._renderer._scene
        assert scene.ngeom > 0 and all(scene.geoms[i].objtype != mujoco.mjtObj.mjOBJ_SITE for i in range(scene.ngeom))
    finally:
        cloud.close(), images.close()
