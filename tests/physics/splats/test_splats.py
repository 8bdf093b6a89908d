"""3DGS PLY files, covariance <-> scale + rotation, SH rotation, and rigidly driven Gaussians."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from physics.splats import (
    GaussianSplats,
    PlyFile,
    covariance_to_scale_rotation,
    deform_splats,
    eval_sh,
    parse_ply,
    ply_bytes,
    read_ply,
    rotate_sh,
    scale_rotation_to_covariance,
    sh_basis,
    sphere_splats,
    write_ply,
)
from physics.splats.sh import C0


def random_splats(n: int, degree: int, rng: np.random.Generator) -> GaussianSplats:
    """Gaussians with random anisotropic covariances and SH of ``degree``."""
    sh = rng.normal(0.0, 0.3, (n, (degree + 1) ** 2, 3))
    quats = rng.normal(size=(n, 4)) * rng.uniform(0.5, 2.0, (n, 1))  # not normalised, as in trained scenes
    return GaussianSplats.from_arrays(rng.normal(size=(n, 3)), rng.uniform(0.01, 0.2, (n, 3)), quats,
                                      rng.uniform(0.05, 0.95, n), sh)


def handmade_ply() -> bytes:
    """A 3DGS-like PLY with comments, an unusual property order, extra properties, a uchar and a face element."""
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(9)]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3", "semantic_id"]
    rng = np.random.default_rng(3)
    header = "ply\nformat binary_little_endian 1.0\ncomment made by hand\nobj_info test\nelement vertex 5\n"
    header += "".join(f"property float32 {n}\n" for n in names[:3]) + "comment normals follow\n"
    header += ("".join(f"property float32 {n}\n" for n in names[3:]) + "property uchar label\n"
               + "comment end of vertex\n")
    header += "element face 2\nproperty list uchar int vertex_indices\nend_header\n"
    dtype = np.dtype([(n, "<f4") for n in names] + [("label", "u1")])
    rows = np.zeros(5, dtype=dtype)
    for n in names:
        rows[n] = rng.normal(size=5)
    rows["label"] = [1, 2, 3, 250, 7]
    faces = b"".join(bytes([3]) + np.array(f, dtype="<i4").tobytes() for f in ([0, 1, 2], [2, 3, 4]))
    return header.encode() + rows.tobytes() + faces


# ------------------------------------------------------------------------- PLY
def test_round_trip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    path = sphere_splats((0.0, 0.0, 0.0), 0.1, 0.02, rng).save(tmp_path / "sphere.ply")
    data = path.read_bytes()
    write_ply(tmp_path / "again.ply", read_ply(path))
    assert (tmp_path / "again.ply").read_bytes() == data
    odd = handmade_ply()
    assert ply_bytes(parse_ply(odd)) == odd
    splats = GaussianSplats(parse_ply(odd))
    assert splats.degree == 1 and list(splats.ply.vertex["label"]) == [1, 2, 3, 250, 7]
    moved = splats.updated(positions=splats.positions + 1.0)
    again = parse_ply(ply_bytes(moved.ply))
    assert again.names == splats.ply.names and np.array_equal(again.vertex["semantic_id"],
                                                              splats.ply.vertex["semantic_id"])
    assert ply_bytes(again).endswith(odd[-10:])  # the face element after the vertices is kept


def test_big_endian_and_header_spellings_round_trip():
    v = np.zeros(3, dtype=[("x", ">f4"), ("y", ">f4"), ("z", ">f8")])
    v["x"], v["y"], v["z"] = [1, 2, 3], [4, 5, 6], [7, 8, 9]
    data = (b"ply\nformat binary_big_endian 1.0\nelement vertex 3\nproperty float x\nproperty float32 y\n"
            b"property double z\nend_header\n" + v.tobytes())
    ply = parse_ply(data)
    assert ply_bytes(ply) == data and ply.vertex["z"].tolist() == [7, 8, 9]


def test_sh_layout_matches_the_inria_convention():
    rng = np.random.default_rng(1)
    splats = random_splats(4, 3, rng)
    v, sh = splats.ply.vertex, splats.sh
    assert sh.shape == (4, 16, 3)
    # f_rest is channel-major: the 15 coefficients of R, then of G, then of B
    assert np.allclose(v["f_rest_0"], sh[:, 1, 0]) and np.allclose(v["f_rest_14"], sh[:, 15, 0])
    assert np.allclose(v["f_rest_15"], sh[:, 1, 1]) and np.allclose(v["f_rest_44"], sh[:, 15, 2])
    colour = eval_sh(sh[:, :1], np.tile([0.0, 0.0, 1.0], (4, 1)))
    assert np.allclose(colour, 0.5 + C0 * np.stack([v["f_dc_0"], v["f_dc_1"], v["f_dc_2"]], axis=1))


def test_ply_is_a_point_cloud_for_open3d_and_trimesh(tmp_path):
    import open3d as o3d
    import trimesh

    splats = sphere_splats((0.1, 0.2, 0.3), 0.1, 0.02, np.random.default_rng(2))
    path = str(splats.save(tmp_path / "s.ply"))
    cloud = np.asarray(o3d.io.read_point_cloud(path).points)
    assert np.allclose(cloud, splats.positions, atol=1e-6)
    assert np.allclose(np.asarray(trimesh.load(path).vertices), splats.positions, atol=1e-6)


def test_bad_files_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_ply(tmp_path / "missing.ply")
    with pytest.raises(ValueError, match="ASCII"):
        parse_ply(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n1\n")
    with pytest.raises(ValueError, match="truncated"):
        parse_ply(b"ply\nformat binary_little_endian 1.0\nelement vertex 4\nproperty float x\nend_header\n" + b"\0" * 8)
    xyz = PlyFile(np.zeros(2, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")]))
    with pytest.raises(ValueError, match="not a 3DGS PLY"):
        GaussianSplats(xyz)


# ------------------------------------------------------------ covariances, SH
def test_covariance_decomposition_is_exact_and_proper():
    rng = np.random.default_rng(4)
    A = rng.normal(size=(500, 3, 3))
    cov = A @ A.transpose(0, 2, 1) + 1e-3 * np.eye(3)
    cov[:10] = np.diag([2e-4, 2e-4, 2e-4])  # isotropic: eigenvectors arbitrary, still exact
    scales, quats = covariance_to_scale_rotation(cov)
    assert np.allclose(np.linalg.norm(quats, axis=1), 1.0) and np.all(quats[:, 0] >= 0.0)
    assert np.all(np.linalg.det(Rotation.from_quat(quats, scalar_first=True).as_matrix()) > 0.999)
    rebuilt = scale_rotation_to_covariance(scales, quats)
    assert np.max(np.abs(rebuilt - cov) / np.abs(cov).max(axis=(1, 2))[:, None, None]) < 1e-12
    with pytest.raises(ValueError, match="positive definite"):
        covariance_to_scale_rotation(np.diag([1.0, 1.0, -1.0])[None])
    floored, _ = covariance_to_scale_rotation(np.diag([4.0, 1.0, -1e-9])[None], min_variance=1e-6)
    assert np.allclose(floored, [[1e-3, 1.0, 2.0]])


def test_sh_rotation_matches_rotated_directions():
    rng = np.random.default_rng(5)
    for degree in range(4):
        sh = rng.normal(size=(50, (degree + 1) ** 2, 3))
        R = Rotation.random(50, random_state=6).as_matrix()
        dirs = rng.normal(size=(50, 7, 3))
        dirs /= np.linalg.norm(dirs, axis=2, keepdims=True)
        turned = rotate_sh(sh, R)
        assert np.allclose(eval_sh(turned, np.einsum("nij,nmj->nmi", R, dirs)), eval_sh(sh, dirs), atol=1e-12)
        assert np.array_equal(turned[:, 0], sh[:, 0])  # the DC term is rotation invariant
    # rotations compose: rotating by A then B is rotating by B A
    A, B = Rotation.random(2, random_state=7).as_matrix()
    sh = rng.normal(size=(1, 16, 3))
    assert np.allclose(rotate_sh(rotate_sh(sh, A[None]), B[None]), rotate_sh(sh, (B @ A)[None]), atol=1e-12)
    # band 1 of the 3DGS basis is linear in the direction: its rotation is R itself in (-y, z, -x) coordinates
    d = rng.normal(size=(20, 3))
    assert np.allclose(sh_basis(d, 1)[:, 1:], 0.4886025119029199 * d[:, [1, 2, 0]] * [-1, 1, -1])


def test_rigidly_driven_gaussians_keep_shapes_and_rotate_their_colour():
    rng = np.random.default_rng(8)
    splats = random_splats(300, 3, rng)
    R = Rotation.from_rotvec([0.7, -1.9, 0.4]).as_matrix()
    t = np.array([0.3, -0.2, 1.0])
    moved = deform_splats(splats, splats.positions @ R.T + t, np.broadcast_to(R, (len(splats), 3, 3)))
    cov = splats.covariances
    assert np.allclose(moved.covariances, R @ cov @ R.T, rtol=0, atol=1e-6 * np.abs(cov).max())
    assert np.allclose(np.sort(moved.scales, axis=1), np.sort(splats.scales, axis=1), rtol=1e-5)
    assert np.allclose(moved.positions, splats.positions @ R.T + t, atol=1e-5)
    dirs = rng.normal(size=(len(splats), 6, 3))
    dirs /= np.linalg.norm(dirs, axis=2, keepdims=True)
    assert np.max(np.abs(eval_sh(moved.sh, dirs @ R.T) - eval_sh(splats.sh, dirs))) < 1e-5
    assert np.array_equal(moved.ply.vertex["opacity"], splats.ply.vertex["opacity"])
    # a pure stretch rotates nothing: SH untouched, scales stretched along the axes
    S = np.diag([1.5, 1.0, 0.8])
    stretched = deform_splats(splats, splats.positions @ S, np.broadcast_to(S, (len(splats), 3, 3)))
    assert np.allclose(stretched.sh, splats.sh, atol=1e-6)
    assert np.allclose(stretched.covariances, S @ cov @ S, rtol=0, atol=1e-6 * np.abs(cov).max())
