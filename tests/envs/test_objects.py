"""The object library of Push4D (`envs.objects`): shapes, meshes, URDFs, splits, mass properties and bad input."""


import gymnasium as gym
import numpy as np
import pytest
import shapely
import trimesh
from scipy.spatial import ConvexHull
from scipy.spatial.transform import Rotation
from shapely.geometry import Polygon, box

import envs  # noqa: F401  (registers the tasks)
from envs.objects import (
    DEFAULT_DENSITY,
    PROCEDURAL_SHAPES,
    SPLITS,
    convex_decomposition,
    decompose,
    library,
    library_entry,
    library_names,
    load_object,
    shape_polygon,
)
from envs.pusht import geometry as pusht

L_POINTS = [[0.0, 0.0], [0.15, 0.0], [0.15, 0.05], [0.05, 0.05], [0.05, 0.2], [0.0, 0.2]]
BOX_URDF = """<robot name="brick"><link name="brick">
  <visual><origin xyz="0 0 0.3"/><geometry><box size="0.1 0.05 0.04"/></geometry>
    <material name="red"><color rgba="0.8 0.1 0.1 1"/></material></visual>
  <collision><origin xyz="0 0 0.3"/><geometry><box size="0.1 0.05 0.04"/></geometry></collision>
</link></robot>"""
TWO_LINK_URDF = """<robot name="two">
  <link name="a"><visual><geometry><box size="0.1 0.1 0.1"/></geometry></visual></link>
  <link name="b"><visual><geometry><box size="0.1 0.1 0.1"/></geometry></visual></link>
  <joint name="j" type="fixed"><parent link="a"/><child link="b"/></joint></robot>"""
EMPTY_URDF = """<robot name="empty"><link name="a"/></robot>"""


def box_inertia(mass: float, sx: float, sy: float, sz: float) -> np.ndarray:
    """Inertia of a solid box about its centre."""
    return mass / 12 * np.diag([sy**2 + sz**2, sx**2 + sz**2, sx**2 + sy**2])


def shifted(inertia: np.ndarray, mass: float, d: np.ndarray) -> np.ndarray:
    """Parallel-axis theorem: inertia about a point at offset -d from the centre of mass."""
    return inertia + mass * (np.dot(d, d) * np.eye(3) - np.outer(d, d))


def write_mesh(path, mesh: trimesh.Trimesh) -> str:
    mesh.export(str(path))
    return str(path)


# ------------------------------------------------------------------------------------------------ the T and shapes


def test_t_is_the_pusht_block():
    t = load_object("T")
    assert shapely.symmetric_difference(t.footprint, pusht.footprint()).area < 1e-9
    assert t.mass == pytest.approx(pusht.MASS, rel=1e-12)
    assert t.height == pytest.approx(pusht.HEIGHT, abs=1e-12)
    np.testing.assert_allclose(t.com, pusht.COM_LOCAL, atol=1e-12)
    assert t.density == pytest.approx(DEFAULT_DENSITY)
    # the same material tracks as PushT4D's block for the same seed
    points, normals = t.surface_points(128, np.random.default_rng(5), skip_bottom=True)
    ref_points, ref_normals = pusht.surface_points(128, 5)
    np.testing.assert_array_equal(points, ref_points)
    np.testing.assert_array_equal(normals, ref_normals)


@pytest.mark.parametrize("name", PROCEDURAL_SHAPES + ("star/0", "star/7", "star/123"))
def test_extruded_pieces_are_convex_and_tile_the_shape_exactly(name):
    obj = load_object(name)
    polygon, height = shape_polygon(name)
    assert obj.polygon is not None and obj.height == pytest.approx(height)
    assert obj.mesh.is_watertight and obj.mesh.volume == pytest.approx(polygon.area * height, rel=1e-9)
    assert 1 <= len(obj.pieces) <= 32
    volumes = []
    for piece in obj.pieces:
        xy = Polygon(piece[piece[:, 2] == 0][:, :2]).convex_hull
        hull = ConvexHull(piece)
        assert abs(hull.volume - xy.area * height) < 1e-6 * hull.volume  # the piece is its own hull: convex
        assert piece[:, 2].min() == 0 and piece[:, 2].max() == pytest.approx(height)
        volumes.append(hull.volume)
    assert abs(sum(volumes) - obj.mesh.volume) < 1e-6 * obj.mesh.volume  # no overlap, no gap
    union = shapely.union_all([Polygon(p[:, :2]).convex_hull for p in obj.pieces])
    assert shapely.symmetric_difference(union, polygon).area < 1e-9 * polygon.area
    footprint_extent = np.ptp(np.asarray(obj.footprint.exterior.coords), axis=0).max()
    assert 0.1 <= footprint_extent <= 0.25 and 0.03 <= obj.height <= 0.04


def test_convex_decomposition_of_a_polygon_with_holes():
    square = box(-0.1, -0.1, 0.1, 0.1)
    polygon = Polygon(square.exterior, [box(-0.05, -0.05, 0.0, 0.0).exterior, box(0.02, 0.02, 0.06, 0.07).exterior])
    pieces = convex_decomposition(polygon)
    assert all(p.area == pytest.approx(p.convex_hull.area, rel=1e-12) for p in pieces)
    assert sum(p.area for p in pieces) == pytest.approx(polygon.area, rel=1e-12)
    assert shapely.symmetric_difference(shapely.union_all(pieces), polygon).area < 1e-12


def test_ring_footprint_is_outer_minus_inner():
    ring = load_object("ring")
    area = lambda r, n: n / 2 * r**2 * np.sin(2 * np.pi / n)  # noqa: E731  (regular n-gon of circumradius r)
    assert len(ring.footprint.interiors) == 1
    assert ring.footprint.area == pytest.approx(area(0.09, 48) - area(0.05, 24), rel=1e-12)
    assert ring.mass == pytest.approx(DEFAULT_DENSITY * ring.footprint.area * ring.height, rel=1e-9)


def test_stars_are_seeded_simple_and_distinct():
    a, b = load_object("star/3"), load_object("star/3")
    assert a is b  # cached
    p3, h3 = shape_polygon("star/3")
    p4, _ = shape_polygon("star/4")
    assert p3.equals(shape_polygon("star/3")[0]) and not p3.equals(p4)
    assert p3.is_valid and p3.contains(shapely.Point(0, 0)) and 0.03 <= h3 <= 0.04


# ------------------------------------------------------------------------------------------------ mass properties


def test_l_polygon_mass_properties_are_analytic():
    h, rho = 0.03, 900.0
    obj = load_object({"polygon": L_POINTS, "height": h, "density": rho})
    parts = [((0.0, 0.0, 0.05, 0.2), None), ((0.05, 0.0, 0.15, 0.05), None)]  # two disjoint rectangles
    masses, centres, inertias = [], [], []
    for (x0, y0, x1, y1), _ in parts:
        m = rho * (x1 - x0) * (y1 - y0) * h
        masses.append(m)
        centres.append(np.array([(x0 + x1) / 2, (y0 + y1) / 2, h / 2]))
        inertias.append(box_inertia(m, x1 - x0, y1 - y0, h))
    mass = sum(masses)
    com = sum(m * c for m, c in zip(masses, centres, strict=True)) / mass
    inertia = sum(shifted(i, m, c - com) for i, m, c in zip(inertias, masses, centres, strict=True))
    assert obj.mass == pytest.approx(mass, rel=1e-12)
    np.testing.assert_allclose(obj.com, com, atol=1e-12)
    np.testing.assert_allclose(obj.inertia, inertia, rtol=1e-9, atol=1e-12)
    # the polygon's own frame: only shifted along z (not at all here), footprint exact
    assert shapely.symmetric_difference(obj.footprint, Polygon(L_POINTS)).area < 1e-12
    heavy = load_object({"polygon": L_POINTS, "height": h, "mass": 2.0})
    assert heavy.mass == pytest.approx(2.0) and heavy.density == pytest.approx(2.0 / (Polygon(L_POINTS).area * h))
    np.testing.assert_allclose(heavy.inertia, inertia * 2.0 / mass, rtol=1e-9, atol=1e-12)


def test_box_mesh_file_mass_properties_frame_and_footprint(tmp_path):
    size = np.array([0.12, 0.06, 0.04])
    mesh = trimesh.creation.box(extents=size)
    mesh.apply_translation((0.03, -0.01, -0.25))  # the file's frame: centre at (0.03, -0.01, -0.25)
    obj = load_object(write_mesh(tmp_path / "brick.stl", mesh))
    assert obj.name == "brick" and obj.mesh.vertices[:, 2].min() == 0.0
    mass = DEFAULT_DENSITY * size.prod()  # STL stores float32 coordinates: agreement to ~1e-7
    assert obj.mass == pytest.approx(mass, rel=1e-6) and obj.height == pytest.approx(0.04, rel=1e-6)
    np.testing.assert_allclose(obj.com, [0.03, -0.01, 0.02], atol=1e-7)  # shifted only along z
    np.testing.assert_allclose(obj.inertia, box_inertia(mass, *size), rtol=1e-6, atol=1e-12)
    expected = box(0.03 - 0.06, -0.01 - 0.03, 0.03 + 0.06, -0.01 + 0.03)
    assert shapely.symmetric_difference(obj.footprint, expected).area < 1e-8
    assert len(obj.pieces) == 1 and len(obj.pieces[0]) == 8 and obj.rest_z == 0.0


def test_cylinder_mesh_matches_trimesh_and_the_analytic_cylinder(tmp_path):
    r, h = 0.05, 0.08
    mesh = trimesh.creation.cylinder(radius=r, height=h, sections=128)
    obj = load_object({"mesh": write_mesh(tmp_path / "can.ply", mesh), "density": 500.0})
    ref = trimesh.load(tmp_path / "can.ply")  # the file as written, read independently
    ref.apply_translation((0, 0, -ref.bounds[0, 2]))
    ref.density = 500.0
    assert obj.mass == pytest.approx(ref.mass, rel=1e-9)
    np.testing.assert_allclose(obj.com, ref.center_mass, atol=1e-12)
    np.testing.assert_allclose(obj.inertia, ref.moment_inertia, rtol=1e-9, atol=1e-12)
    m = 500.0 * np.pi * r**2 * h
    analytic = np.diag([m * (3 * r**2 + h**2) / 12, m * (3 * r**2 + h**2) / 12, m * r**2 / 2])
    np.testing.assert_allclose(obj.inertia, analytic, rtol=2e-3, atol=1e-12)  # 128-gon vs circle
    exact = Polygon(mesh.vertices[mesh.vertices[:, 2] > 0][:, :2]).convex_hull  # the 128-gon
    assert obj.footprint.hausdorff_distance(exact) <= 5e-4 + 1e-9  # simplified within 0.5 mm
    assert obj.footprint.area == pytest.approx(exact.area, rel=0.015) and obj.footprint.within(exact.buffer(1e-7))


def test_glb_mesh_and_polygon_with_holes(tmp_path):
    mesh = trimesh.creation.box(extents=(0.1, 0.06, 0.04))
    mesh.apply_translation((0.01, 0.02, 0.5))
    obj = load_object(write_mesh(tmp_path / "brick.glb", mesh))  # the file's own frame, z shifted only
    np.testing.assert_allclose(obj.mesh.bounds, [[-0.04, -0.01, 0.0], [0.06, 0.05, 0.04]], atol=1e-7)
    frame = load_object({"polygon": [[0, 0], [0.2, 0], [0.2, 0.2], [0, 0.2]], "height": 0.02,
                         "holes": [[[0.05, 0.05], [0.15, 0.05], [0.15, 0.15], [0.05, 0.15]]]})
    assert frame.footprint.area == pytest.approx(0.04 - 0.01) and len(frame.footprint.interiors) == 1
    assert sum(ConvexHull(p).volume for p in frame.pieces) == pytest.approx(0.03 * 0.02, rel=1e-9)
    assert frame.mass == pytest.approx(DEFAULT_DENSITY * 0.03 * 0.02, rel=1e-9)


def test_open_mesh_uses_the_volume_of_its_convex_pieces(tmp_path):
    mesh = trimesh.creation.box(extents=(0.1, 0.1, 0.05))
    mesh.update_faces(np.arange(len(mesh.faces)) != 0)  # one triangle missing: not watertight
    obj = load_object(write_mesh(tmp_path / "open.obj", mesh))
    assert not obj.mesh.is_watertight
    assert obj.volume == pytest.approx(0.1 * 0.1 * 0.05, rel=1e-9)
    assert obj.mass == pytest.approx(DEFAULT_DENSITY * obj.volume)


def test_urdf_with_primitives(tmp_path):
    path = tmp_path / "brick.urdf"
    path.write_text(BOX_URDF)
    obj = load_object({"urdf": str(path), "friction": 0.7, "scale": 2.0})
    assert obj.mesh.vertices[:, 2].min() == 0.0 and obj.height == pytest.approx(0.08)
    assert obj.color == (0.8, 0.1, 0.1, 1.0) and obj.friction == 0.7 and obj.scale == 2.0
    assert obj.mass == pytest.approx(DEFAULT_DENSITY * 0.2 * 0.1 * 0.08, rel=1e-9)
    assert len(obj.pieces) == 1 and obj.footprint.area == pytest.approx(0.02, rel=1e-9)


# ------------------------------------------------------------------------------------------------ options, points


def test_options_scale_color_rpy_and_cache():
    base = load_object("L")
    big = load_object({"name": "L", "scale": 2.0, "color": [1, 0, 0]})
    assert big.footprint.area == pytest.approx(4 * base.footprint.area)
    assert big.mass == pytest.approx(8 * base.mass) and big.height == pytest.approx(2 * base.height)
    assert big.color == (1.0, 0.0, 0.0, 1.0) and base.friction is None
    standing = load_object({"name": "L", "rpy": [np.pi / 2, 0, 0]})  # y up -> z up: the L stands on its end
    assert standing.polygon is None and standing.height == pytest.approx(0.2)
    assert standing.mesh.vertices[:, 2].min() == pytest.approx(0.0, abs=1e-15)
    assert standing.mass == pytest.approx(base.mass, rel=1e-9)
    assert load_object("L") is base
    assert load_object({"name": "duck", "friction": 0.5}) is load_object({"friction": 0.5, "name": "duck"})  # cached


def test_surface_points_are_on_the_surface_and_seeded():
    duck = load_object("duck")
    points, normals = duck.surface_points(500, np.random.default_rng(1))
    again, _ = duck.surface_points(500, np.random.default_rng(1))
    np.testing.assert_array_equal(points, again)
    assert points.shape == normals.shape == (500, 3)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-9)
    _, distance, _ = trimesh.proximity.closest_point(duck.mesh, points)
    assert distance.max() < 1e-4
    top, _ = load_object("T").surface_points(200, np.random.default_rng(0), skip_bottom=True)
    assert top[:, 2].min() > 0 or np.all(np.isclose(top[top[:, 2] == 0][:, 2], 0))
    with pytest.raises(ValueError, match="count must be a positive integer"):
        duck.surface_points(0, np.random.default_rng(0))


def test_footprint_at_places_the_footprint_like_pusht():
    t = load_object("T")
    pose = (0.1, -0.05, 0.7)
    assert shapely.symmetric_difference(t.footprint_at(pose), pusht.footprint_at(np.array(pose))).area < 1e-12


# ------------------------------------------------------------------------------------------------ the library


def test_library_splits_are_fixed_disjoint_and_cover_the_library():
    names = {s: library_names(s) for s in SPLITS}
    assert library_names() == names["train"] + names["val"] + names["test"]
    assert library_names("train") == names["train"]  # deterministic
    sets = {s: set(v) for s, v in names.items()}
    assert all(len(sets[s]) == len(names[s]) for s in SPLITS)
    assert not (sets["train"] & sets["val"] or sets["train"] & sets["test"] or sets["val"] & sets["test"])
    assert {len(v) for v in names.values()} and [len(names[s]) for s in SPLITS] == [815, 107, 108]
    assert "T" in sets["train"] and {"duck", "mug"} <= sets["train"] and {"bunny", "torus"} <= sets["test"]
    shapes_only_in_test = {n for n in sets["test"] if library_entry(n).kind == "shape"} - sets["train"]
    meshes_only_in_test = {n for n in sets["test"] if library_entry(n).kind != "shape"
                           and not n.startswith("random_urdf/")} - sets["train"]
    assert {"ring", "arrow"} <= shapes_only_in_test and {"bunny", "torus"} <= meshes_only_in_test
    urdf = [int(n.split("/")[1]) for n in names["val"] if n.startswith("random_urdf/")]
    assert urdf == [i for i in range(800, 900) if i not in library.EXCLUDED_RANDOM_URDFS]
    assert all(library_entry(n).split == s for s in SPLITS for n in names[s][:40])
    with pytest.raises(ValueError, match="unknown split"):
        library_names("holdout")


def test_random_urdf_exclusions_follow_their_rule():
    """Every random_urdf rests as a pushed object can (laid on its most stable face when it would tip before 45
    degrees) and is scaled so its larger footprint side lies in [0.08, 0.25] m; the excluded ones are exactly those
    whose height or narrower side is then unpushable, or whose file is broken."""
    excluded = set()
    for i in range(library.RANDOM_URDF_COUNT):
        try:
            _, _, extents = library.random_urdf_pose(i)
        except ValueError:
            excluded.add(i)
            continue
        height_ok = library.HEIGHT_RANGE[0] <= extents[2] <= library.HEIGHT_RANGE[1]
        if not height_ok or extents[:2].min() < library.MIN_NARROW_SIDE:
            excluded.add(i)
    assert excluded == set(library.EXCLUDED_RANDOM_URDFS)


@pytest.mark.parametrize("name", ["random_urdf/910", "random_urdf/944", "random_urdf/988", "random_urdf/000"])
def test_random_urdfs_rest_squat_and_stay_put(name):
    """A library random URDF rests with its centre of mass no higher than half its narrower footprint side (tall
    thin ones lie down; squat ones are only tilted onto the face they rest on) and does not rock at rest."""
    obj = load_object(name)
    lo, hi = obj.mesh.bounds
    assert obj.com[2] - lo[2] <= (hi - lo)[:2].min() / 2 + 1e-9
    turn = np.degrees(Rotation.from_euler("xyz", library_entry(name).rpy).magnitude())
    if name == "random_urdf/000":  # squat already: only tilted onto the face it rests on (its file leans 11 deg)
        assert 5.0 < turn < 15.0, turn
    else:  # tall and thin: laid down
        assert turn > 45.0, turn
    env = gym.make("Push4D-v0", object=name, obs_mode="state")
    _, info = env.reset(seed=0, options={"object_pose": (0.0, 0.0, 0.3), "ee_xy": (0.35, 0.35)})
    z0 = info["object_pose7"][:3].copy()
    for _ in range(10):
        _, _, _, _, info = env.step(np.array([0.35, 0.35]))
    q = info["object_pose7"][3:]
    tilt = np.degrees(2 * np.arccos(np.clip(np.hypot(q[0], q[3]), -1.0, 1.0)))  # angle off a pure yaw
    assert tilt < 2.0 and np.linalg.norm(info["object_pose7"][:3] - z0) < 0.002, (tilt, info["object_pose7"])
    env.close()


@pytest.mark.parametrize("name", ["T", "plus", "star/5", "I", "star/17", "arrow", "star/21", "duck", "mug", "lego",
                                  "jenga", "cube", "block", "soccerball", "teddy", "stone", "random_urdf/000",
                                  "random_urdf/037", "random_urdf/512", "random_urdf/850", "random_urdf/999"])
def test_library_objects_load(name):
    obj = load_object(name)
    assert obj.name == name and obj.mass > 0 and obj.volume > 0 and np.all(np.linalg.eigvalsh(obj.inertia) > 0)
    assert obj.mesh.vertices[:, 2].min() == 0.0 and abs(obj.rest_z) <= 0.002
    assert 1 <= len(obj.pieces) <= 32 and all(ConvexHull(p).volume > 0 for p in obj.pieces)
    lo, hi = np.array(obj.footprint.bounds[:2]), np.array(obj.footprint.bounds[2:])
    assert 0.08 - 1e-3 <= (hi - lo).max() <= 0.25 + 1e-3 and 0.02 <= obj.height <= 0.25
    assert obj.footprint.is_valid and obj.footprint.area > 0
    entry = library_entry(name)
    assert entry.kind in ("shape", "mesh", "urdf") and entry.scale > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bunny", "torus"])
def test_library_meshes_decomposed_by_vhacd_load(name):
    obj = load_object(name)  # V-HACD once per machine (a few seconds), then read from the cache
    assert 2 <= len(obj.pieces) <= 32 and abs(obj.rest_z) <= 0.002
    assert obj.mesh.is_volume and obj.mass == pytest.approx(DEFAULT_DENSITY * obj.mesh.volume)
    pieces_volume = sum(ConvexHull(p).volume for p in obj.pieces)
    assert obj.mesh.volume <= pieces_volume <= 1.5 * obj.mesh.volume
    if name == "torus":
        assert len(obj.footprint.interiors) == 1  # the hole, seen from above


@pytest.mark.slow
def test_vhacd_result_is_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    u = trimesh.creation.extrude_polygon(Polygon([(0, 0), (0.12, 0), (0.12, 0.1), (0.08, 0.1), (0.08, 0.04),
                                                  (0.04, 0.04), (0.04, 0.1), (0, 0.1)]), 0.04)
    pieces = decompose.mesh_pieces(u)  # one non-convex part: V-HACD
    files = list((tmp_path / "cache" / "worldmodel4d" / "vhacd").glob("*.obj"))
    assert len(files) == 1 and len(files[0].stem) == 64 and 2 <= len(pieces) <= 32
    assert not list(files[0].parent.glob("*.tmp"))

    def no_vhacd(*args, **kwargs):
        raise AssertionError("V-HACD ran although its result is cached")

    monkeypatch.setattr(decompose, "_run_vhacd", no_vhacd)
    again = decompose.mesh_pieces(u)
    assert len(again) == len(pieces) and all(np.allclose(a, b) for a, b in zip(again, pieces, strict=True))


# ------------------------------------------------------------------------------------------------ bad input


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("make_spec, match", [
    (lambda d: "duk", r"unknown library object 'duk' \(did you mean 'duck'.*library_names\(\)"),
    (lambda d: "star/abc", r"unknown library object 'star/abc'.*library_names\(\)"),
    (lambda d: "random_urdf/168", r"left out of the library: .*non-finite"),
    (lambda d: str(d / "missing.obj"), r"file not found: .*missing\.obj"),
    (lambda d: _write(d / "notes.txt", "hello"), r"unsupported file extension '\.txt'.*\.obj, \.stl, \.ply, \.glb"),
    (lambda d: {"mesh": _write(d / "m.urdf", BOX_URDF)}, r"mesh file .* must end in one of \.obj"),
    (lambda d: _write(d / "sliver.obj", "v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n"), r"has no area"),
    (lambda d: _write(d / "sheet.obj", "v 0 0 0\nv .1 0 0\nv .1 .1 0\nv 0 .1 0\nf 1 2 3\nf 1 3 4\n"),
     r"sheet\.obj: mesh has no volume"),
    (lambda d: _write(d / "lost.urdf", BOX_URDF.replace('<box size="0.1 0.05 0.04"/>', '<mesh filename="no.obj"/>')),
     r"mesh file not found: .*no\.obj"),
    (lambda d: {"polygon": [[0, 0], [1, 0]]}, r"at least 3 distinct points, got 2"),
    (lambda d: {"polygon": [[0, 0], [0.1, 0], [0.2, 0]]}, r"zero area"),
    (lambda d: {"polygon": [[0, 0], [0.1, 0.1], [0.1, 0], [0, 0.1]]}, r"not simple: Self-intersection"),
    (lambda d: {"polygon": L_POINTS, "height": 0}, r"height must be a positive number, got 0"),
    (lambda d: {"polygon": L_POINTS, "height": -0.1}, r"height must be a positive number"),
    (lambda d: {"name": "T", "mass": 0.0}, r"mass must be a positive number"),
    (lambda d: {"name": "T", "density": -5}, r"density must be a positive number"),
    (lambda d: {"name": "T", "scale": 0}, r"scale must be a positive number"),
    (lambda d: {"name": "T", "mass": 1.0, "density": 1000.0}, r"either mass or density, not both"),
    (lambda d: {"name": "T", "colour": [1, 0, 0]}, r"unknown object option\(s\) \['colour'\]; allowed"),
    (lambda d: {"name": "T", "color": [2, 0, 0]}, r"color must be 3 or 4 numbers in \[0, 1\]"),
    (lambda d: {"name": "T", "friction": -1}, r"friction must be a non-negative number"),
    (lambda d: {"name": "T", "polygon": L_POINTS}, r"exactly one of the keys"),
    (lambda d: _write(d / "two.urdf", TWO_LINK_URDF), r"has 2 links .* exactly one link"),
    (lambda d: _write(d / "empty.urdf", EMPTY_URDF), r"no visual or collision geometry"),
    (lambda d: 3.5, r"an object spec is a library name, a file path or a dict"),
])
def test_bad_input_raises_a_helpful_value_error(tmp_path, make_spec, match):
    with pytest.raises(ValueError, match=match):
        load_object(make_spec(tmp_path))
