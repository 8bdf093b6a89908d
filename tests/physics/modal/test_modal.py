"""Modal solver: meshes, FEM on linear/quadratic tets, eigen-solve, validation against beam theory."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from physics.modal import (
    ModalModel,
    box_tet_mesh,
    euler_bernoulli_cantilever_hz,
    points_tet_mesh,
    surface_tet_mesh,
    timoshenko_cantilever_hz,
    voxel_tet_mesh,
)
from physics.modal.cholesky import MultifrontalCholesky
from physics.modal.eigen import factorize, lowest_eigenpairs
from physics.modal.mesh import tet_volumes

ALU = dict(youngs_modulus=70e9, poisson_ratio=0.33, density=2700.0)


def cantilever(size, resolution, order=2, **material):
    vertices, tets = box_tet_mesh(size, resolution)
    return ModalModel(vertices, tets, fixed=vertices[:, 0] < 1e-9, order=order, **(material or ALU))


def bending_frequencies(model, modes, axis):
    """Frequencies of the modes whose tip motion is dominantly along ``axis`` (1 = y, 2 = z)."""
    tip = np.isclose(model.vertices[:, 0], model.vertices[:, 0].max())
    motion = np.abs(modes.shapes[:, tip]).mean(axis=1)  # (k, 3)
    twist = np.abs(motion[:, 1] - motion[:, 2]) < 0.5 * motion[:, 1:].max(axis=1)  # torsion moves y and z alike
    picked = (np.argmax(motion, axis=1) == axis) & ~twist
    return modes.frequencies_hz[picked]


# ---------------------------------------------------------------- meshes


@pytest.mark.parametrize("resolution", [1, (3, 2, 1), (5, 4, 3)])
def test_box_mesh_fills_the_box_with_positive_tets(resolution):
    size = (0.3, 0.2, 0.1)
    vertices, tets = box_tet_mesh(size, resolution)
    vol = tet_volumes(vertices, tets)
    assert np.all(vol > 0)
    assert vol.sum() == pytest.approx(np.prod(size), rel=1e-12)
    cells = np.broadcast_to(resolution, (3,))
    assert len(tets) == 6 * np.prod(cells)
    assert len(vertices) == np.prod(cells + 1)
    np.testing.assert_allclose(vertices.max(axis=0), size)


def test_box_mesh_is_conforming():
    """Every interior triangle is shared by exactly two tets, boundary ones by one."""
    vertices, tets = box_tet_mesh(1.0, 3)
    faces = np.sort(tets[:, [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]].reshape(-1, 3), axis=1)
    _, counts = np.unique(faces, axis=0, return_counts=True)
    assert set(counts.tolist()) == {1, 2}
    assert (counts == 1).sum() == 6 * 2 * 3 * 3  # two triangles per boundary square


def test_voxel_and_point_meshes():
    occ = np.zeros((3, 3, 2), dtype=bool)
    occ[:, 0] = True
    occ[0, :] = True  # an L-shaped slab
    vertices, tets = voxel_tet_mesh(occ, 0.1, origin=(1.0, 0.0, 0.0))
    assert tet_volumes(vertices, tets).sum() == pytest.approx(occ.sum() * 1e-3)
    assert vertices[:, 0].min() == pytest.approx(1.0)

    rng = np.random.default_rng(0)
    shell = rng.normal(size=(30000, 3))
    shell /= np.linalg.norm(shell, axis=1, keepdims=True)  # points on the unit sphere only
    vertices, tets = points_tet_mesh(shell, 0.1)
    volume = tet_volumes(vertices, tets).sum()
    assert 4 / 3 * np.pi < volume < 4 / 3 * np.pi * (1 + 0.1 * np.sqrt(3)) ** 3  # filled, not a shell


def test_surface_mesh_of_a_closed_triangle_mesh():
    trimesh = pytest.importorskip("trimesh")
    box = trimesh.creation.box(extents=(0.4, 0.2, 0.1))
    vertices, tets = surface_tet_mesh(box, 8)
    assert tet_volumes(vertices, tets).sum() == pytest.approx(0.008, rel=1e-6)
    with pytest.raises(ValueError, match="watertight"):
        surface_tet_mesh(trimesh.Trimesh(box.vertices, box.faces[:-2]), 8)


# ---------------------------------------------------------------- validation against beam theory


def test_timoshenko_reduces_to_euler_bernoulli_for_thin_beams():
    for mode in (1, 2, 3):
        eb = euler_bernoulli_cantilever_hz(10.0, 0.01, 0.01, 70e9, 2700, mode)
        assert timoshenko_cantilever_hz(10.0, 0.01, 0.01, 70e9, 0.33, 2700, mode) == pytest.approx(eb, rel=1e-4)
    assert euler_bernoulli_cantilever_hz(1.0, 0.1, 0.1, 1.0, 1.0) == pytest.approx(
        1.8751**2 / (2 * np.pi) * np.sqrt(1 / 1200), rel=1e-4)


def test_slender_cantilever_first_bending_matches_euler_bernoulli_and_converges():
    """L/h = 20 aluminium cantilever, quadratic tets: f1 about each axis within 2% and converging."""
    size = (0.8, 0.04, 0.02)
    errors = []
    for resolution in [(10, 2, 1), (20, 2, 1), (40, 4, 2)]:
        model = cantilever(size, resolution)
        modes = model.solve(4)
        errs = []
        for axis, (width, thick) in ((1, (0.04, 0.02)), (2, (0.02, 0.04))):
            f_fem = bending_frequencies(model, modes, axis)[0]
            f_eb = euler_bernoulli_cantilever_hz(0.8, width, thick, ALU["youngs_modulus"], ALU["density"])
            errs.append(abs(f_fem / f_eb - 1))
        errors.append(errs)
    errors = np.array(errors)
    assert model.num_dofs <= 25_000
    assert np.all(errors[-1] < 0.02), errors
    assert np.all(np.diff(errors, axis=0) <= 1e-4), errors  # converging under refinement


def test_higher_bending_modes_match_timoshenko():
    """0.8 x 0.06 x 0.03 m beam: modes 1-3 about both axes within 2% of Timoshenko beam theory."""
    L, b, t = 0.8, 0.06, 0.03
    model = cantilever((L, b, t), (32, 4, 2))
    modes = model.solve(9)
    for axis, (width, thick) in ((1, (b, t)), (2, (t, b))):
        fem = bending_frequencies(model, modes, axis)[:3]
        timo = [timoshenko_cantilever_hz(L, width, thick, 70e9, 0.33, 2700, n) for n in (1, 2, 3)]
        np.testing.assert_allclose(fem, timo, rtol=0.02)
    eb3 = euler_bernoulli_cantilever_hz(L, b, t, 70e9, 2700, 3)
    assert eb3 / timoshenko_cantilever_hz(L, b, t, 70e9, 0.33, 2700, 3) > 1.05  # shear matters here


def test_axial_mode_of_clamped_bar():
    """First axial mode f = c / (4 L) of a slender clamped-free bar (Poisson correction ~ 0.1%)."""
    L = 1.0
    model = cantilever((L, 0.02, 0.02), (24, 1, 1), youngs_modulus=200e9, poisson_ratio=0.0, density=7800.0)
    modes = model.solve(12)
    axial = np.argmax(np.abs(modes.shapes[:, :, 0]).max(axis=1) / np.abs(modes.shapes).max(axis=(1, 2)))
    assert modes.frequencies_hz[axial] == pytest.approx(np.sqrt(200e9 / 7800) / (4 * L), rel=0.005)


def test_linear_tets_lock_in_bending():
    size = (0.8, 0.06, 0.03)
    quad = cantilever(size, (16, 2, 1)).solve(1).frequencies_hz[0]
    lin = cantilever(size, (32, 4, 2), order=1).solve(1).frequencies_hz[0]
    eb = euler_bernoulli_cantilever_hz(0.8, 0.03, 0.06, 70e9, 2700)
    assert lin > 1.05 * eb  # too stiff at a comparable DOF count
    assert abs(quad / eb - 1) < 0.02


# ---------------------------------------------------------------- modes: normalisation, rigid modes, materials


@pytest.mark.parametrize("order", [1, 2])
def test_modes_are_mass_orthonormal_and_stiffness_diagonal(order):
    model = cantilever((0.4, 0.1, 0.05), (8, 2, 2), order=order)
    modes = model.solve(10)
    phi = modes.node_shapes.reshape(modes.num_modes, -1).T
    np.testing.assert_allclose(phi.T @ (model.mass @ phi), np.eye(10), atol=1e-9)
    np.testing.assert_allclose(phi.T @ (model.stiffness @ phi), np.diag(modes.angular_frequencies**2), rtol=1e-8,
                               atol=1e-10 * modes.angular_frequencies[-1] ** 2)
    assert np.all(np.diff(modes.frequencies_hz) >= 0)
    assert modes.shapes.shape == (10, len(model.vertices), 3)
    np.testing.assert_array_equal(modes.shapes[:, model.vertices[:, 0] < 1e-9], 0.0)


@pytest.mark.parametrize("order", [1, 2])
def test_free_body_has_exactly_six_rigid_modes(order):
    vertices, tets = box_tet_mesh((0.3, 0.2, 0.1), (6, 4, 2))
    model = ModalModel(vertices, tets, **ALU, order=order)
    assert model.num_rigid_modes == 6
    elastic = model.solve(5)
    assert elastic.num_rigid_modes_removed == 6
    everything = model.solve(11, keep_rigid=True)
    assert everything.num_rigid_modes_removed == 0
    assert np.all(everything.frequencies_hz[:6] < 1e-4 * everything.frequencies_hz[6])
    np.testing.assert_allclose(everything.frequencies_hz[6:], elastic.frequencies_hz, rtol=1e-8)
    assert elastic.frequencies_hz[0] > 1.0


def test_rigid_mode_count_follows_supports_and_parts():
    vertices, tets = box_tet_mesh(1.0, 2)
    pin = np.zeros(len(vertices), dtype=bool)
    pin[0] = True
    assert ModalModel(vertices, tets, **ALU, fixed=pin, order=1).num_rigid_modes == 3  # rotations about the pin
    hinge = np.isclose(vertices[:, 1], 0) & np.isclose(vertices[:, 2], 0)
    assert ModalModel(vertices, tets, **ALU, fixed=hinge, order=1).num_rigid_modes == 1  # rotation about the hinge line
    two = np.concatenate([vertices, vertices + [3.0, 0, 0]]), np.concatenate([tets, tets + len(vertices)])
    assert ModalModel(*two, **ALU, order=1).num_rigid_modes == 12


def test_material_scaling_and_heterogeneous_arrays():
    vertices, tets = box_tet_mesh((0.4, 0.1, 0.05), (8, 2, 1))
    fixed = vertices[:, 0] < 1e-9
    base = ModalModel(vertices, tets, **ALU, fixed=fixed).solve(4).frequencies_hz
    stiff = ModalModel(vertices, tets, 4 * 70e9, 0.33, 2700.0, fixed=fixed).solve(4).frequencies_hz
    np.testing.assert_allclose(stiff, 2 * base, rtol=1e-8)
    per_tet = ModalModel(vertices, tets, np.full(len(tets), 70e9), np.full(len(tets), 0.33), np.full(len(tets), 2700.0),
                         fixed=fixed)
    np.testing.assert_allclose(per_tet.solve(4).frequencies_hz, base, rtol=1e-10)
    soft_tip = np.where(vertices[tets].mean(axis=1)[:, 0] > 0.2, 7e9, 70e9)
    assert np.all(ModalModel(vertices, tets, soft_tip, 0.33, 2700.0, fixed=fixed).solve(4).frequencies_hz < base)


def test_lumped_mass_is_diagonal_and_close_to_consistent():
    vertices, tets = box_tet_mesh((0.8, 0.06, 0.03), (32, 4, 2))
    fixed = vertices[:, 0] < 1e-9
    lumped = ModalModel(vertices, tets, **ALU, fixed=fixed, mass="lumped")
    assert lumped.mass.nnz == lumped.mass.shape[0]
    assert lumped.total_mass == pytest.approx(0.8 * 0.06 * 0.03 * 2700)
    f_l = lumped.solve(2).frequencies_hz
    f_c = ModalModel(vertices, tets, **ALU, fixed=fixed).solve(2).frequencies_hz
    np.testing.assert_allclose(f_l, f_c, rtol=0.02)


def test_solve_is_deterministic():
    model = cantilever((0.4, 0.1, 0.05), (8, 2, 2))
    a, b = model.solve(6), model.solve(6)
    np.testing.assert_array_equal(a.node_shapes, b.node_shapes)


# ---------------------------------------------------------------- factorisations


def test_backends_agree():
    model = cantilever((0.8, 0.06, 0.03), (24, 3, 2), order=1)
    ref = model.solve(6).frequencies_hz
    for backend in ["splu", "multifrontal"] + (["cholmod"] if _has("cholespy") else []):
        model.backend = backend
        np.testing.assert_allclose(model.solve(6).frequencies_hz, ref, rtol=1e-9)
    vals, _ = lowest_eigenpairs(model._k_free, model._m_free, 6)  # no tree: SuperLU's own ordering
    np.testing.assert_allclose(np.sqrt(vals) / (2 * np.pi), ref, rtol=1e-9)


def test_multifrontal_cholesky_solves_and_rejects_indefinite():
    model = cantilever((0.3, 0.1, 0.1), (6, 2, 2))
    tree = model.separator_tree()
    A = model._k_free.tocsr()[tree.order][:, tree.order]
    rng = np.random.default_rng(1)
    b = rng.standard_normal((A.shape[0], 3))
    x = factorize(A, "multifrontal", tree)(b)
    assert np.linalg.norm(A @ x - b) < 1e-9 * np.linalg.norm(b)
    np.testing.assert_allclose(factorize(A, "multifrontal", tree)(b[:, 0]), x[:, 0], rtol=1e-10)
    with pytest.raises(ValueError, match="positive definite"):
        MultifrontalCholesky(A - 1e30 * sp.eye(A.shape[0]), tree.ptr, tree.parent)
    with pytest.raises(ValueError, match="backend"):
        factorize(A, "pardiso")


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_value_error():
    vertices, tets = box_tet_mesh(1.0, 2)
    with pytest.raises(ValueError, match="poisson_ratio"):
        ModalModel(vertices, tets, 1e9, 0.5, 1000.0)
    with pytest.raises(ValueError, match="youngs_modulus"):
        ModalModel(vertices, tets, 0.0, 0.3, 1000.0)
    with pytest.raises(ValueError, match="density"):
        ModalModel(vertices, tets, 1e9, 0.3, -1.0)
    with pytest.raises(ValueError, match="one value per tetrahedron"):
        ModalModel(vertices, tets, np.ones(3), 0.3, 1000.0)
    with pytest.raises(ValueError, match="order"):
        ModalModel(vertices, tets, 1e9, 0.3, 1000.0, order=3)
    with pytest.raises(ValueError, match="inverted"):
        ModalModel(vertices, tets[:, [1, 0, 2, 3]], 1e9, 0.3, 1000.0)
    flat = vertices.copy()
    flat[:, 2] = 0.0
    with pytest.raises(ValueError, match="degenerate"):
        ModalModel(flat, tets, 1e9, 0.3, 1000.0)
    with pytest.raises(ValueError, match="outside"):
        ModalModel(vertices, tets + 100, 1e9, 0.3, 1000.0)
    with pytest.raises(ValueError, match="every vertex"):
        ModalModel(vertices, tets, 1e9, 0.3, 1000.0, fixed=np.ones(len(vertices), dtype=bool))
    with pytest.raises(ValueError, match="boolean mask"):
        ModalModel(vertices, tets, 1e9, 0.3, 1000.0, fixed=[0, 1])
    model = ModalModel(vertices, tets, 1e9, 0.3, 1000.0, order=1)
    with pytest.raises(ValueError, match="at most 75 modes"):
        model.solve(76)
    with pytest.raises(ValueError, match="positive integer"):
        model.solve(0)
    with pytest.raises(ValueError, match="resolution"):
        box_tet_mesh(1.0, 0)
    with pytest.raises(ValueError, match="size"):
        box_tet_mesh((1.0, -1.0, 1.0), 2)
    assert len(model.solve(75).frequencies_hz) == 75  # every elastic mode of the 81-DOF body
