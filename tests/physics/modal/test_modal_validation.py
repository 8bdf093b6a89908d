"""Modal solver against closed forms beyond the cantilever: other supports, axial and torsional
bar modes, a simply supported plate, a two-material beam, a surface-meshed cylinder,
near-incompressible material and exact material/size scaling laws.

Default resolution here means elements about as long as the section is thick (one to four
quadratic-tet cells across the section), which is what the 2% tolerances are held to.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import scipy.linalg as sla
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.spatial.transform import Rotation

from physics.modal import (
    ModalModel,
    Modes,
    box_tet_mesh,
    euler_bernoulli_cantilever_hz,
    points_tet_mesh,
    surface_tet_mesh,
)
from physics.modal.beams import (
    bar_axial_hz,
    bar_torsion_hz,
    beam_beta_l,
    euler_bernoulli_beam_hz,
    saint_venant_torsion_constant,
    simply_supported_plate_hz,
)
from physics.modal.mesh import tet_volumes

ALU = dict(youngs_modulus=70e9, poisson_ratio=0.33, density=2700.0)
STEEL = dict(youngs_modulus=200e9, poisson_ratio=0.3, density=7800.0)
AXIAL, BEND_Y, BEND_Z, TWIST = 0, 1, 2, 3


def classify(vertices: NDArray[np.float64], modes: Modes) -> NDArray[np.int64]:
    """Kind of each mode of a bar along x: AXIAL, BEND_Y, BEND_Z or TWIST.

    Vertices are grouped into cross-sections (equal x); each mode's vertex motion is
    projected on the section-wise rigid patterns (mean u_x, mean u_y, mean u_z, twist
    about the section centroid) and the pattern holding the largest share wins.
    """
    sec = np.unique(np.round(vertices[:, 0], 9), return_inverse=True)[1].ravel()
    count = np.bincount(sec)
    centre = np.stack([np.bincount(sec, vertices[:, d]) / count for d in (1, 2)], axis=1)[sec]
    ry, rz = (vertices[:, 1:] - centre).T
    r2 = np.bincount(sec, ry**2 + rz**2)
    shares = []
    for shape in modes.shapes:
        means = [np.bincount(sec, shape[:, d]) / count for d in range(3)]
        twist = np.bincount(sec, -rz * shape[:, 1] + ry * shape[:, 2]) / r2
        shares.append([(m**2 * count).sum() for m in means] + [(twist**2 * r2).sum()])
    return np.argmax(np.array(shares), axis=1)


def frequencies_of(vertices: NDArray[np.float64], modes: Modes, kind: int, count: int) -> NDArray[np.float64]:
    """The ``count`` lowest frequencies of modes of the given kind (fails if fewer were found)."""
    found = modes.frequencies_hz[classify(vertices, modes) == kind][:count]
    assert len(found) == count, f"only {len(found)} modes of kind {kind} among {modes.num_modes}"
    return found


# ---------------------------------------------------------------- 1D references computed here


def hermite_beam_hz(length: float, ei: Callable[[float], float], rho_a: Callable[[float], float], clamped_left: bool,
                    count: int, elements: int = 160) -> NDArray[np.float64]:
    """Euler-Bernoulli frequencies of a beam with piecewise EI(x), rho A(x) by Rayleigh-Ritz on
    cubic Hermite elements (converged to < 1e-5 at 160 elements for the first modes)."""
    le = length / elements
    ke = np.array([[12, 6 * le, -12, 6 * le], [6 * le, 4 * le**2, -6 * le, 2 * le**2],
                   [-12, -6 * le, 12, -6 * le], [6 * le, 2 * le**2, -6 * le, 4 * le**2]]) / le**3
    me = np.array([[156, 22 * le, 54, -13 * le], [22 * le, 4 * le**2, 13 * le, -3 * le**2],
                   [54, 13 * le, 156, -22 * le], [-13 * le, -3 * le**2, -22 * le, 4 * le**2]]) * le / 420
    n = 2 * (elements + 1)
    K, M = np.zeros((n, n)), np.zeros((n, n))
    for e in range(elements):
        x = (e + 0.5) * le
        K[2 * e : 2 * e + 4, 2 * e : 2 * e + 4] += ei(x) * ke
        M[2 * e : 2 * e + 4, 2 * e : 2 * e + 4] += rho_a(x) * me
    keep = slice(2, None) if clamped_left else slice(None)
    skip = 0 if clamped_left else 2  # the free beam's two rigid modes
    w2 = sla.eigh(K[keep, keep], M[keep, keep], eigvals_only=True, subset_by_index=(0, skip + count - 1))
    return np.sqrt(np.maximum(w2[skip:], 0.0)) / (2 * np.pi)


def two_segment_rod_hz(lengths: tuple[float, float], moduli: tuple[float, float], densities: tuple[float, float],
                       count: int) -> NDArray[np.float64]:
    """Free-free longitudinal frequencies of two rods in series by the transfer matrix of
    ``(u, N / A)``: each segment maps it by ``[[cos kl, sin kl / (E k)], [-E k sin kl, cos kl]]``,
    ``k = omega sqrt(rho / E)``; free ends need the (2, 1) entry of the product to vanish."""

    def residual(omega: float) -> float:
        total = np.eye(2)
        for length, e, rho in zip(lengths, moduli, densities, strict=True):
            k = omega * np.sqrt(rho / e)
            c, s = np.cos(k * length), np.sin(k * length)
            total = np.array([[c, s / (e * k)], [-e * k * s, c]]) @ total
        return total[1, 0] / omega

    c_min = min(np.sqrt(e / r) for e, r in zip(moduli, densities, strict=True))
    grid = np.linspace(1e-3, (count + 1) * np.pi * c_min / min(lengths), 20000)
    values = np.array([residual(w) for w in grid])
    roots = [brentq(residual, grid[i], grid[i + 1])
             for i in np.flatnonzero(np.sign(values[:-1]) != np.sign(values[1:]))]
    return np.array(roots[:count]) / (2 * np.pi)


def test_one_dimensional_references_reproduce_closed_forms():
    assert beam_beta_l(1, "free-free") == pytest.approx(4.7300, abs=1e-4)
    assert beam_beta_l(2, "clamped-clamped") == pytest.approx(7.8532, abs=1e-4)
    assert saint_venant_torsion_constant(1.0, 1.0) == pytest.approx(0.1406, abs=1e-4)
    assert saint_venant_torsion_constant(0.02, 0.04) == pytest.approx(0.229 * 0.04 * 0.02**3, rel=2e-3)
    ref = [euler_bernoulli_beam_hz(0.8, 0.02, 0.01, 70e9, 2700, n, "free-free") for n in (1, 2)]
    ei, rho_a = 70e9 * 0.01 * 0.02**3 / 12, 2700 * 0.02 * 0.01
    np.testing.assert_allclose(hermite_beam_hz(0.8, lambda x: ei, lambda x: rho_a, False, 2), ref, rtol=1e-5)
    cant = [euler_bernoulli_cantilever_hz(0.8, 0.02, 0.01, 70e9, 2700, n) for n in (1, 2)]
    np.testing.assert_allclose(hermite_beam_hz(0.8, lambda x: ei, lambda x: rho_a, True, 2), cant, rtol=1e-5)
    rod = two_segment_rod_hz((0.1, 0.2), (70e9, 70e9), (2700.0, 2700.0), 2)
    np.testing.assert_allclose(rod, [bar_axial_hz(0.3, 70e9, 2700.0, n) for n in (1, 2)], rtol=1e-9)


# ---------------------------------------------------------------- beams with other supports


@pytest.mark.parametrize("boundary", ["free-free", "clamped-clamped"])
def test_beam_bending_with_free_or_clamped_ends_matches_euler_bernoulli(boundary):
    """L/h = 40 aluminium beam, (32, 2, 1) cells: the first two bending modes about each axis
    within 2% of beta L = 4.7300, 7.8532 (measured: free-free <= 0.6%, clamped-clamped <= 1.3%)."""
    L, b, t = 0.8, 0.02, 0.01
    vertices, tets = box_tet_mesh((L, b, t), (32, 2, 1))
    ends = (vertices[:, 0] < 1e-9) | (vertices[:, 0] > L - 1e-9)
    model = ModalModel(vertices, tets, **ALU, fixed=ends if boundary == "clamped-clamped" else None)
    assert model.num_rigid_modes == (6 if boundary == "free-free" else 0)
    modes = model.solve(6)
    for kind, (width, thick) in ((BEND_Y, (b, t)), (BEND_Z, (t, b))):
        fem = frequencies_of(vertices, modes, kind, 2)
        ref = [euler_bernoulli_beam_hz(L, width, thick, ALU["youngs_modulus"], ALU["density"], n, boundary)
               for n in (1, 2)]
        np.testing.assert_allclose(fem, ref, rtol=0.02)


# ---------------------------------------------------------------- axial and torsional bar modes


@pytest.mark.parametrize("section, cells", [((0.03, 0.03), (10, 3, 3)), ((0.04, 0.02), (12, 4, 2))])
def test_free_bar_axial_and_torsional_modes(section, cells):
    """Free-free steel bar, L = 0.3 m: axial f_n = n/(2L) sqrt(E/rho) (Rayleigh's lateral-inertia
    correction, < 0.2%) within 0.5%; Saint-Venant torsion f_n = n/(2L) sqrt(GJ/(rho I_p)) within 2%
    (measured: axial <= 0.2%; torsion <= 1.0% square, <= 1.4% for 2:1)."""
    L, (b, t) = 0.3, section
    vertices, tets = box_tet_mesh((L, b, t), cells)
    modes = ModalModel(vertices, tets, **STEEL).solve(20)
    axial = frequencies_of(vertices, modes, AXIAL, 2)
    twist = frequencies_of(vertices, modes, TWIST, 2)
    e, nu, rho = STEEL["youngs_modulus"], STEEL["poisson_ratio"], STEEL["density"]
    ref_axial = [bar_axial_hz(L, e, rho, n, "free-free", nu, (b * b + t * t) / 12) for n in (1, 2)]
    ref_twist = [bar_torsion_hz(L, b, t, e, nu, rho, n) for n in (1, 2)]
    np.testing.assert_allclose(axial, ref_axial, rtol=0.005)
    np.testing.assert_allclose(twist, ref_twist, rtol=0.02)


# ---------------------------------------------------------------- thin plate


def test_simply_supported_square_plate_matches_navier():
    """0.2 m square steel plate, a/h = 50, mid-surface edge lines pinned (hard simple support):
    f_11 and the (1,2)/(2,1) pair within 2% of Kirchhoff theory (shear correction ~0.3% here;
    measured +0.8%, +0.5%, +1.2% at 16 x 16 x 2 cells)."""
    a, h = 0.2, 0.004
    vertices, tets = box_tet_mesh((a, a, h), (16, 16, 2))
    x, y, z = vertices.T
    edge = np.isclose(x, 0) | np.isclose(x, a) | np.isclose(y, 0) | np.isclose(y, a)
    model = ModalModel(vertices, tets, **STEEL, fixed=edge & np.isclose(z, h / 2))
    modes = model.solve(3)
    e, nu, rho = STEEL["youngs_modulus"], STEEL["poisson_ratio"], STEEL["density"]
    ref = [simply_supported_plate_hz(a, a, h, e, nu, rho, m, n) for m, n in ((1, 1), (1, 2), (2, 1))]
    np.testing.assert_allclose(modes.frequencies_hz, ref, rtol=0.02)
    # the (1, 1) shape: transverse, one sign, largest at the centre
    w = modes.shapes[0, np.isclose(z, h / 2), 2]
    centre = np.argmin(np.hypot(x[np.isclose(z, h / 2)] - a / 2, y[np.isclose(z, h / 2)] - a / 2))
    assert np.all(w >= -1e-12 * np.abs(w).max()) and np.argmax(w) == centre


def test_square_cantilever_plate_matches_leissa_and_wide_beam_theory():
    """0.2 m square steel plate, a/h = 50, clamped along x = 0, 12 x 12 x 2 cells. Frequency
    parameters lambda = omega a^2 sqrt(rho h / D): Leissa, Vibration of Plates (NASA SP-160,
    1969), square cantilever plate, nu = 0.3: 3.492 (first bending) and 8.525 (first twisting);
    a beam with the plane-strain modulus E / (1 - nu^2) gives 1.8751^2 = 3.516. Within 2%
    (measured +0.2% and +0.7% vs Leissa, -0.5% vs the wide beam)."""
    a, h = 0.2, 0.004
    e, nu, rho = STEEL["youngs_modulus"], STEEL["poisson_ratio"], STEEL["density"]
    vertices, tets = box_tet_mesh((a, a, h), (12, 12, 2))
    modes = ModalModel(vertices, tets, **STEEL, fixed=vertices[:, 0] < 1e-9).solve(2)
    rigidity = e * h**3 / (12 * (1 - nu**2))
    lam = modes.angular_frequencies * a * a * np.sqrt(rho * h / rigidity)
    np.testing.assert_allclose(lam, [3.492, 8.525], rtol=0.02)
    wide_beam = euler_bernoulli_cantilever_hz(a, h, a, e / (1 - nu**2), rho)
    assert modes.frequencies_hz[0] == pytest.approx(wide_beam, rel=0.02)
    tip = np.isclose(vertices[:, 0], a)
    w = modes.shapes[:, tip, 2]
    y = vertices[tip, 1] - a / 2
    assert np.all(w[0] > 0) and np.ptp(w[0]) < 0.1 * w[0].max()  # bending: the free edge moves as one
    assert np.corrcoef(w[1], y)[0, 1] ** 2 > 0.95  # twisting: tip deflection linear across the width


# ---------------------------------------------------------------- heterogeneous material


def test_two_material_cantilever_matches_one_dimensional_rayleigh_ritz():
    """Steel root half, aluminium tip half, L/h = 40 cantilever: the first two bending modes
    about each axis within 2% of a Hermite-element Euler-Bernoulli model with the same
    piecewise EI and rho A (measured <= 0.6%)."""
    L, b, t = 0.8, 0.02, 0.01
    vertices, tets = box_tet_mesh((L, b, t), (32, 2, 1))
    root = vertices[tets].mean(axis=1)[:, 0] < L / 2
    e = np.where(root, 200e9, 70e9)
    rho = np.where(root, 7800.0, 2700.0)
    modes = ModalModel(vertices, tets, e, 0.3, rho, fixed=vertices[:, 0] < 1e-9).solve(6)
    for kind, (width, thick) in ((BEND_Y, (b, t)), (BEND_Z, (t, b))):
        inertia, area = thick * width**3 / 12, width * thick
        ref = hermite_beam_hz(L, lambda x, inertia=inertia: (200e9 if x < L / 2 else 70e9) * inertia,
                              lambda x, area=area: (7800.0 if x < L / 2 else 2700.0) * area, True, 2)
        np.testing.assert_allclose(frequencies_of(vertices, modes, kind, 2), ref, rtol=0.02)


def test_two_material_free_bar_axial_matches_transfer_matrix():
    """Free-free bar of 0.1 m steel then 0.2 m aluminium: the first two axial modes within 0.5% of
    the two-segment transfer-matrix roots (nu = 0 makes the 1D rod the exact 3D answer; measured
    +0.01%)."""
    vertices, tets = box_tet_mesh((0.3, 0.02, 0.02), (12, 2, 2))
    steel = vertices[tets].mean(axis=1)[:, 0] < 0.1
    model = ModalModel(vertices, tets, np.where(steel, 200e9, 70e9), 0.0, np.where(steel, 7800.0, 2700.0))
    modes = model.solve(16)
    ref = two_segment_rod_hz((0.1, 0.2), (200e9, 70e9), (7800.0, 2700.0), 2)
    np.testing.assert_allclose(frequencies_of(vertices, modes, AXIAL, 2), ref, rtol=0.005)


# ---------------------------------------------------------------- surface-meshed and voxelised geometry


def polar_gyration_sq(vertices: NDArray[np.float64], tets: NDArray[np.int64]) -> float:
    """``I_p / A`` of a prismatic body along x: the volume mean of ``(y - y_c)^2 + (z - z_c)^2``
    (exact per tetrahedron: ``int y^2 dV = V / 20 (sum y_i^2 + (sum y_i)^2)``)."""
    vol = tet_volumes(vertices, tets)
    corners = vertices[tets]
    centroid = np.einsum("t,tad->d", vol, corners) / (4 * vol.sum())
    y = corners[:, :, 1:] - centroid[1:]
    return float(np.sum(vol[:, None] / 20 * ((y**2).sum(axis=1) + y.sum(axis=1) ** 2)) / vol.sum())


@pytest.mark.parametrize("source", ["surface", "points"])
def test_voxelised_cylinder_longitudinal_modes(source):
    """A cylinder (L = 0.4 m, r = 0.04 m) meshed from a closed triangle mesh (surface mesher, 20
    voxels along the axis) or from points filling it (point-set voxeliser, 2.5 cm voxels): both
    are staircase prisms, whose free-free axial modes depend on the length only,
    f_n = n/(2L) sqrt(E/rho), with Rayleigh's correction from the meshed section; within 2%
    (measured: surface -0.1%, -0.5%; points -0.2%, -1.0%)."""
    L, r = 0.4, 0.04
    if source == "surface":
        trimesh = pytest.importorskip("trimesh")
        rot = trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0])
        vertices, tets = surface_tet_mesh(trimesh.creation.cylinder(radius=r, height=L, sections=48, transform=rot), 20)
        assert tet_volumes(vertices, tets).sum() == pytest.approx(np.pi * r * r * L, rel=0.1)
    else:
        axis = np.linspace(-L / 2, L / 2, 161)  # a dense regular cloud (2.5 mm) filling the cylinder
        grid = np.stack(np.meshgrid(axis, axis[(axis >= -r) & (axis <= r)], axis[(axis >= -r) & (axis <= r)],
                                    indexing="ij"), -1)
        points = grid.reshape(-1, 3)
        vertices, tets = points_tet_mesh(points[np.hypot(points[:, 1], points[:, 2]) <= r], 0.025)
    length = np.ptp(vertices[:, 0])
    assert L - 1e-9 <= length <= L + 0.025 + 1e-9  # the point voxeliser may add up to one voxel
    model = ModalModel(vertices, tets, **STEEL)
    assert model.num_rigid_modes == 6
    modes = model.solve(12)
    e, nu, rho = STEEL["youngs_modulus"], STEEL["poisson_ratio"], STEEL["density"]
    ref = [bar_axial_hz(length, e, rho, k, "free-free", nu, polar_gyration_sq(vertices, tets)) for k in (1, 2)]
    np.testing.assert_allclose(frequencies_of(vertices, modes, AXIAL, 2), ref, rtol=0.02)


# ---------------------------------------------------------------- near-incompressible material, scaling laws


def test_near_incompressible_material_stays_finite_and_converges():
    """nu = 0.49: modes stay finite, M-orthonormal and well separated from zero; free-free
    bending (no clamp) stays within 2% of Euler-Bernoulli at the default resolution. A clamped
    root makes 10-node tets mildly stiff (volumetric locking at the clamp: +5.8% on a one-cell-thick
    mesh), which shrinks under refinement (+1.9% at 40 x 4 x 2)."""
    L, b, t = 0.8, 0.02, 0.01
    vertices, tets = box_tet_mesh((L, b, t), (32, 2, 1))
    free = ModalModel(vertices, tets, 70e9, 0.49, 2700.0)
    modes = free.solve(6)
    assert np.all(np.isfinite(modes.node_shapes)) and np.all(np.isfinite(modes.frequencies_hz))
    phi = modes.node_shapes.reshape(modes.num_modes, -1).T
    np.testing.assert_allclose(phi.T @ (free.mass @ phi), np.eye(6), atol=1e-8)
    for kind, (width, thick) in ((BEND_Y, (b, t)), (BEND_Z, (t, b))):
        ref = [euler_bernoulli_beam_hz(L, width, thick, 70e9, 2700.0, n, "free-free") for n in (1, 2)]
        np.testing.assert_allclose(frequencies_of(vertices, modes, kind, 2), ref, rtol=0.02)

    errors = []
    for cells in [(20, 2, 1), (40, 4, 2)]:
        v, tt = box_tet_mesh((0.8, 0.04, 0.02), cells)
        clamped = ModalModel(v, tt, 70e9, 0.49, 2700.0, fixed=v[:, 0] < 1e-9).solve(1)
        errors.append(clamped.frequencies_hz[0] / euler_bernoulli_cantilever_hz(0.8, 0.02, 0.04, 70e9, 2700.0) - 1)
    assert 0 < errors[1] < errors[0] < 0.07, errors


def test_frequencies_scale_exactly_with_wave_speed_and_size():
    """f ~ sqrt(E / rho) / L exactly for any geometry, supports or per-tet material pattern, and
    invariant under rigid motions of the mesh."""
    vertices, tets = box_tet_mesh((0.4, 0.1, 0.05), (8, 2, 1))
    rotation = Rotation.from_euler("xyz", [0.3, -0.7, 1.1]).as_matrix()
    rng = np.random.default_rng(3)
    e = 70e9 * rng.uniform(0.5, 2.0, len(tets))
    rho = 2700.0 * rng.uniform(0.5, 2.0, len(tets))
    for fixed in (None, vertices[:, 0] < 1e-9):
        base = ModalModel(vertices, tets, e, 0.3, rho, fixed=fixed).solve(5).frequencies_hz
        faster = ModalModel(vertices, tets, 9 * e, 0.3, 4 * rho, fixed=fixed).solve(5).frequencies_hz
        np.testing.assert_allclose(faster, 1.5 * base, rtol=1e-8)
        same_speed = ModalModel(vertices, tets, 3e-5 * e, 0.3, 3e-5 * rho, fixed=fixed).solve(5).frequencies_hz
        np.testing.assert_allclose(same_speed, base, rtol=1e-8)
        bigger = ModalModel(2.5 * vertices, tets, e, 0.3, rho, fixed=fixed).solve(5).frequencies_hz
        np.testing.assert_allclose(bigger, base / 2.5, rtol=1e-8)
        moved = ModalModel(vertices @ rotation.T + [1e3, -20.0, 3.0], tets, e, 0.3, rho,
                           fixed=fixed).solve(5).frequencies_hz
        np.testing.assert_allclose(moved, base, rtol=1e-8)  # rotated and translated far from the origin
