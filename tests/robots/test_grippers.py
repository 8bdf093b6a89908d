"""The gripper library (`robots.grippers`) and its floating grippers (`envs.robot_setup.make_gripper`).

For every library gripper and a user's primitive gripper (a box and a cylinder finger, one of them a mimic
joint named before its leader): the gripper points lie on the gripper's geometry placed by yourdfpy's own
forward kinematics, the tool frame points down at (agent x, y, tcp_height), the lowest point is at the tool
height, and both rigid backends load it, track a target, push the T block and place its links where our
forward kinematics does. ``panda_hand`` through the spec is exactly today's floating Panda hand.
"""

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pybullet_data
import pytest
import shapely
import trimesh

from envs.robot_setup import CONTACT_LINKS, HAND_DOWN, RENDER_VISUAL_LINKS, gripper_robot, make_gripper, make_robot
from robots import DEFAULT_GRIPPER_LINKS, GRIPPERS, GripperPoints, GripperSpec, gripper_description, gripper_spec
from robots.control import CONTROL_DT
from robots.gripper_points import link_mesh
from robots.urdf import load_description, load_urdf

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ("panda_hand", "xarm_gripper", "wsg50_finger", "pr2_gripper", "stick")
AGENT_XY = np.array([0.12, -0.07])

# a user's gripper of URDF primitives: a palm (box) above two fingers that reach down to the palm frame's origin
# (the tool frame: tcp_offset 0), each on a slide; "a_slide" mimics "b_slide" (mirrored), so its value comes
# first in the backends' qpos (held joints sorted by name) although it is not the actuated one
USER_URDF = """<?xml version="1.0"?>
<robot name="primitive_pusher">
  <link name="palm">
    <visual><origin xyz="0 0 -0.06"/><geometry><box size="0.06 0.02 0.02"/></geometry></visual>
    <collision><origin xyz="0 0 -0.06"/><geometry><box size="0.06 0.02 0.02"/></geometry></collision>
  </link>
  <joint name="b_slide" type="prismatic"><parent link="palm"/><child link="finger_cylinder"/>
    <axis xyz="1 0 0"/><limit lower="-0.03" upper="0.03" effort="10" velocity="1"/></joint>
  <link name="finger_cylinder">
    <visual><origin xyz="0 0 -0.025"/><geometry><cylinder radius="0.006" length="0.05"/></geometry></visual>
    <collision><origin xyz="0 0 -0.025"/><geometry><cylinder radius="0.006" length="0.05"/></geometry></collision>
  </link>
  <joint name="a_slide" type="prismatic"><parent link="palm"/><child link="finger_box"/>
    <axis xyz="1 0 0"/><limit lower="-0.03" upper="0.03" effort="10" velocity="1"/>
    <mimic joint="b_slide" multiplier="-1" offset="0"/></joint>
  <link name="finger_box">
    <visual><origin xyz="0 0 -0.025"/><geometry><box size="0.012 0.012 0.05"/></geometry></visual>
    <collision><origin xyz="0 0 -0.025"/><geometry><box size="0.012 0.012 0.05"/></geometry></collision>
  </link>
</robot>
"""


@pytest.fixture(scope="module")
def user_urdf(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("gripper") / "primitive_pusher.urdf"
    path.write_text(USER_URDF)
    return str(path)


def user_dict(urdf: str) -> dict:
    return {"urdf": urdf, "links": ["palm", "finger_cylinder", "finger_box"], "tcp_link": "palm",
            "fixed_joint_values": {"b_slide": 0.015}}


@pytest.fixture(params=LIBRARY + ("user",))
def spec(request, user_urdf) -> GripperSpec:
    return gripper_spec(user_dict(user_urdf) if request.param == "user" else request.param)


def held_qpos(setup, xy) -> np.ndarray:
    """The backends' robot qpos with the gantry at ``xy``: (x, y, held joint values sorted by joint name)."""
    held = setup.model.fixed_joint_values
    return np.concatenate([xy, [held[k] for k in sorted(held)]])


def yourdfpy_geometry(spec: GripperSpec, setup, qpos) -> trimesh.Trimesh:
    """The visual geometry of the spec's whole URDF as yourdfpy loads and places it (its own mesh handling and
    forward kinematics), moved so that the gripper's root link sits where the robot's base pose puts it."""
    urdf = load_urdf(spec.urdf, load_meshes=True, build_scene_graph=True)
    held = setup.model.fixed_joint_values
    urdf.update_cfg({n: held[n] for n in urdf.actuated_joint_names if n in held})
    root = setup.desc.root
    world = setup.base_pose(qpos) @ np.linalg.inv(urdf.get_transform(root, urdf.base_link))
    return urdf.scene.to_geometry().apply_transform(world)


def test_library_grippers_and_their_files():
    assert set(LIBRARY) <= set(GRIPPERS)
    for name, spec in GRIPPERS.items():
        assert spec.name == name and gripper_spec(name) is spec
        path = Path(spec.urdf)
        assert path.is_file(), path
        if name == "panda_hand":
            assert path == Path(pybullet_data.getDataPath()) / "franka_panda" / "panda.urdf"
        elif name == "stick":
            assert path == ROOT / "robots" / "assets" / "stick.urdf"
        else:  # used in place, never copied
            assert path.is_relative_to(Path(pybullet_data.getDataPath())), path
    stick = gripper_description(GRIPPERS["stick"])
    assert [(r.shape, r.size) for r in stick.collision["stick"]] == [("cylinder", (0.01, 0.1))]
    assert [r.shape for r in stick.visual["stick"]] == ["cylinder"]
    assert '"robots" = ["assets/*.urdf"]' in (ROOT / "pyproject.toml").read_text()  # shipped as package data


def test_xarm_is_cut_to_the_gripper_with_its_mimic_joints_closed():
    setup = make_gripper("xarm_gripper")
    assert setup.desc.root == "xarm_gripper_base_link" and "link6" not in setup.desc.links
    assert setup.desc.actuated == ("drive_joint",)
    held = setup.model.fixed_joint_values
    assert held["drive_joint"] == 0.85 and len(held) == 6
    np.testing.assert_allclose(list(held.values()), 0.85)  # every knuckle and finger follows the drive joint


def test_wsg50_finger_urdf_loads_without_the_xml_version_fallback(caplog):
    path = Path(pybullet_data.getDataPath()) / "gripper" / "wsg50_one_motor_gripper_left_finger.urdf"
    assert path.read_text().startswith('<?xml version="0.0"')
    with caplog.at_level(logging.ERROR):
        urdf = load_urdf(path)
    assert not caplog.records and [k.name for k in urdf.robot.links] == ["baseLink"]


def test_gripper_points_lie_on_the_geometry_placed_by_forward_kinematics(spec):
    setup = make_gripper(spec)
    qpos = held_qpos(setup, AGENT_XY)
    assert setup.gripper_links == spec.gripper_point_links
    gripper = GripperPoints(setup.desc, setup.gripper_links, num_points=256, seed=0)  # as the task base does
    points, normals = gripper.place(setup.link_poses(qpos, gripper.links))
    assert points.shape == (256, 3) and set(np.unique(gripper.link_ids)) == set(range(len(gripper.links)))
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-9)
    _, distance, _ = trimesh.proximity.closest_point(yourdfpy_geometry(spec, setup, qpos), points)
    assert distance.max() <= 1e-3, (spec.name, distance.max())


@pytest.mark.parametrize("tcp_height", [0.01, 0.025])
def test_tool_frame_points_down_at_the_agent_and_the_lowest_point_is_at_its_height(spec, tcp_height):
    setup = make_gripper(spec, tcp_height=tcp_height)
    qpos = held_qpos(setup, AGENT_XY)
    T = setup.link_poses(qpos, (spec.tcp_link,))[0]
    np.testing.assert_allclose(T[:3, :3], HAND_DOWN, atol=1e-9)  # z along world -z, x along world +x
    np.testing.assert_allclose(T[:3, 2], (0.0, 0.0, -1.0), atol=1e-9)
    np.testing.assert_allclose(T[:3, 0], (1.0, 0.0, 0.0), atol=1e-9)
    tcp = T[:3, :3] @ (0.0, 0.0, spec.tcp_offset) + T[:3, 3]
    np.testing.assert_allclose(tcp, (*AGENT_XY, tcp_height), atol=1e-9)
    np.testing.assert_allclose(setup.hand_pose(AGENT_XY), T, atol=1e-9)
    # no geometry below the tool height, and the lowest geometry at it
    desc, poses = setup.desc, setup.link_poses(qpos, setup.desc.links)
    lowest = min((link_mesh(desc, k, kind).vertices @ P[:3, :3].T + P[:3, 3])[:, 2].min()
                 for k, P in zip(desc.links, poses, strict=True) for kind in ("visual", "collision")
                 if (desc.visual if kind == "visual" else desc.collision).get(k))
    assert tcp_height - 1e-4 <= lowest <= tcp_height + 3e-3, (spec.name, lowest)
    gripper = GripperPoints(desc, spec.gripper_point_links, num_points=1024, seed=0)
    points = gripper.place(setup.link_poses(qpos, gripper.links))[0]
    assert tcp_height - 1e-4 <= points[:, 2].min() <= tcp_height + 4e-3, (spec.name, points[:, 2].min())
    outline = setup.finger_outline(tcp_height + 0.02)  # the footprint the push planners use, around the tool point
    assert len(outline) >= 4 and np.abs(outline).max() < 0.1 and shapely.Polygon(outline).contains(shapely.Point(0, 0))


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_backends_load_track_and_push_with_each_gripper(spec, backend):
    from envs.pusht import geometry as geo
    from envs.pusht.scene import make_scene
    from physics.rigid import make_backend

    setup = make_gripper(spec)
    sim = make_backend(backend, make_scene(setup, cameras=()))
    try:
        steps = int(round(1.0 / CONTROL_DT))  # one second
        sim.reset(geo.pose7_from_pose3((0.3, 0.3, 0.0)), np.array([-0.1, 0.1]))  # the block out of the way
        target = np.array([0.05, -0.03])
        for _ in range(steps):
            sim.step(target)
        assert np.abs(sim.tcp_xy() - target).max() < 2e-3, (spec.name, sim.tcp_xy())
        # the simulated links are where our forward kinematics of the backend's qpos puts them (gripper points)
        links = tuple(spec.gripper_point_links) + (spec.tcp_link,)
        np.testing.assert_allclose(sim.link_poses(links), setup.link_poses(sim.robot_qpos(), links), atol=1e-5)
        T = sim.link_poses((spec.tcp_link,))[0]
        np.testing.assert_allclose(T[:3, :3], HAND_DOWN, atol=1e-4)
        assert abs((T[:3, :3] @ (0.0, 0.0, spec.tcp_offset) + T[:3, 3])[2] - setup.model.tcp_height) < 1e-3
        # the contact links touch the block: pushed along +y from behind its bar (the block's origin is the bar's
        # outer edge), not passed through (the pointing-down PR2 gripper's knuckles, wider than its tips and 3.7 cm
        # above the table, may tip the 4 cm block over)
        sim.reset(geo.pose7_from_pose3((0.0, 0.0, 0.0)), np.array([0.0, -0.13]))
        for _ in range(steps):
            sim.step(np.array([0.0, 0.1]))
        block, tool = sim.body_pose7(), sim.tcp_xy()
        assert block[1] > 0.03 and tool[1] < block[1], (spec.name, block, tool)
        if spec.name != "pr2_gripper":
            assert abs(block[2]) < 3e-3, (spec.name, block)  # slid on the table
    finally:
        sim.close()


def _same(a, b) -> bool:
    """Exact equality of nested dataclasses, arrays, tuples and dicts (dict order included)."""
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name))
                                          for f in dataclasses.fields(a))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


def test_panda_hand_through_the_spec_is_todays_floating_hand():
    full = load_description()
    finger = link_mesh(full, "panda_leftfinger", "collision")
    fingertip = float(full.joint("panda_finger_joint1").origin[2, 3] + finger.bounds[1, 2])
    # the floating Panda hand as make_robot("panda_hand") built it before the gripper library
    today = gripper_robot(full.subtree("panda_hand"), "panda_hand", CONTACT_LINKS, name="panda_hand",
                          tcp_offset=fingertip, fixed_joint_values={"panda_finger_joint1": 0.0,
                                                                    "panda_finger_joint2": 0.0})
    spec = GRIPPERS["panda_hand"]
    assert spec.tcp_offset == fingertip and spec.links == CONTACT_LINKS
    assert spec.gripper_point_links == DEFAULT_GRIPPER_LINKS and spec.visual_links == RENDER_VISUAL_LINKS
    for setup in (make_gripper("panda_hand"), make_robot("panda_hand"), make_gripper(spec)):
        assert _same(setup.model, today.model) and _same(setup.desc, today.desc)
        assert setup.name == today.name and setup.fingertip_offset == today.fingertip_offset
        assert setup.gripper_links == DEFAULT_GRIPPER_LINKS == make_robot("panda").gripper_links
        qpos = held_qpos(setup, AGENT_XY)
        a = GripperPoints(setup.desc, DEFAULT_GRIPPER_LINKS, num_points=128, seed=4)
        b = GripperPoints(today.desc, DEFAULT_GRIPPER_LINKS, num_points=128, seed=4)
        np.testing.assert_array_equal(a.place(setup.link_poses(qpos, a.links))[0],
                                      b.place(today.link_poses(qpos, b.links))[0])
    with pytest.raises(ValueError, match="unknown robot 'xarm_gripper'"):
        make_robot("xarm_gripper")  # make_robot keeps its two Panda variants


@pytest.mark.parametrize("change, words", [
    ({"links": ["palm", "thumb"]}, r"links \['thumb'\] not in the URDF; its links are \['palm', 'finger_cylinder', "
                                   r"'finger_box'\]"),
    ({"tcp_link": "wrist"}, r"tcp_link \['wrist'\] not in the URDF; its links are \['palm'"),
    ({"urdf": "/no/such/gripper.urdf"}, "gripper URDF not found: /no/such/gripper.urdf"),
    ({"links": []}, "'links' must be a non-empty list of link names"),
    ({"fixed_joint_values": {"c_slide": 0.01}}, r"joints \['c_slide'\] that are not its actuated joints \['b_slide'\]"),
    ({"fixed_joint_values": {"a_slide": 0.01}}, r"joints \['a_slide'\] that are not its actuated joints"),
    ({"fixed_joint_values": {"b_slide": 0.05}}, r"fixed_joint_values\['b_slide'\] = 0.05 is outside .*\[-0.03, 0.03\]"),
    ({"tcp_offset": "down"}, "'tcp_offset' must be a number"),
    ({"root_link": "base"}, r"root_link 'base' not in the URDF; its links are \['palm'"),
    ({"colour": "red"}, r"unknown gripper keys \['colour'\]; allowed: \['urdf', 'links', 'tcp_link'"),
    ({"tcp_link": 5}, "'tcp_link' must be a link name"),
])
def test_bad_user_grippers_are_refused_by_name(user_urdf, change, words):
    spec = {**user_dict(user_urdf), **change}
    with pytest.raises(ValueError, match=words):
        gripper_spec(spec)
    with pytest.raises(ValueError, match=words):
        make_gripper(spec)


def test_bad_gripper_names_and_files_are_refused(tmp_path, user_urdf):
    with pytest.raises(ValueError, match=r"unknown gripper 'robotiq'; library grippers: \['panda_hand', 'pr2_gripper', "
                                         r"'stick', 'wsg50_finger', 'xarm_gripper'\]"):
        make_gripper("robotiq")
    with pytest.raises(ValueError, match="a gripper is a library name"):
        gripper_spec(3)
    with pytest.raises(ValueError, match=r"needs the keys \['urdf', 'links', 'tcp_link'\]; missing \['tcp_link'\]"):
        gripper_spec({"urdf": user_urdf, "links": ["palm"]})
    no_mesh = tmp_path / "no_mesh.urdf"
    no_mesh.write_text('<robot name="r"><link name="tip"><visual><geometry><mesh filename="meshes/tip.stl"/>'
                       '</geometry></visual><collision><geometry><mesh filename="meshes/tip.stl"/></geometry>'
                       "</collision></link></robot>")
    with pytest.raises(ValueError, match=f"mesh file of link 'tip' not found: {tmp_path}/meshes/tip.stl"):
        gripper_spec({"urdf": str(no_mesh), "links": ["tip"], "tcp_link": "tip"})
    visual_only = tmp_path / "visual_only.urdf"
    visual_only.write_text('<robot name="r"><link name="tip"><visual><geometry><sphere radius="0.01"/></geometry>'
                           "</visual></link></robot>")
    with pytest.raises(ValueError, match="link 'tip' has no collision geometry"):
        gripper_spec({"urdf": str(visual_only), "links": ["tip"], "tcp_link": "tip"})
    collision_only = tmp_path / "collision_only.urdf"
    collision_only.write_text('<robot name="r"><link name="tip"><collision><geometry><sphere radius="0.01"/>'
                              "</geometry></collision></link></robot>")
    with pytest.raises(ValueError, match="link 'tip' has no visual geometry to give gripper points"):
        gripper_spec({"urdf": str(collision_only), "links": ["tip"], "tcp_link": "tip"})
    not_xml = tmp_path / "broken.urdf"
    not_xml.write_text('<robot name="r"><link name="tip"><collision><geometry><capsule radius="0.01" length="0.02"/>'
                       "</geometry></collision></link></robot>")
    with pytest.raises(ValueError, match="broken.urdf.*capsule"):
        gripper_spec({"urdf": str(not_xml), "links": ["tip"], "tcp_link": "tip"})


def test_user_gripper_defaults_and_mimic_joints(user_urdf):
    spec = gripper_spec({"urdf": user_urdf, "links": "finger_box", "tcp_link": "palm", "tcp_offset": 0.002})
    assert spec.name == "primitive_pusher" and spec.links == ("finger_box",) and spec.tcp_offset == 0.002
    setup = make_gripper(user_dict(user_urdf))
    assert setup.model.fixed_joint_values == {"b_slide": 0.015, "a_slide": -0.015}
    assert setup.model.contact_links == ("palm", "finger_cylinder", "finger_box")
    poses = setup.link_poses(held_qpos(setup, np.zeros(2)), ("finger_cylinder", "finger_box"))
    np.testing.assert_allclose(poses[:, :2, 3], [[0.015, 0.0], [-0.015, 0.0]], atol=1e-12)
