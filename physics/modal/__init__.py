"""Modal dynamics: FEM vibration modes, damped interactive response, spectral modes from tracks.

Formulation (stated once here; the modules implement it):

- Linear elasticity on tetrahedra (4-node linear or 10-node quadratic), isotropic with
  Lame parameters per tetrahedron, gives sparse stiffness K and (consistent or lumped)
  mass M over the free DOFs. Clamped nodes are removed from the system.
- Modes solve ``K phi = omega^2 M phi`` for the k lowest omega by shift-invert Lanczos,
  normalised ``Phi^T M Phi = I``. Rigid-body modes (six for a free body) are counted
  exactly from the supports and dropped; free bodies use a small negative shift.
- Displacement ``u(x, t) = sum_i phi_i(x) q_i(t)``. With Rayleigh damping
  ``C = alpha M + beta K`` (or given ratios) each mode obeys
  ``q_i'' + 2 xi_i omega_i q_i' + omega_i^2 q_i = phi_i^T f``,
  ``xi_i = alpha / (2 omega_i) + beta omega_i / 2``. For a force held constant over a
  step, the update of ``(q, q')`` is the exact solution of that ODE (stable for any dt);
  an impulse p adds ``phi_i^T p`` to ``q_i'``, so from rest
  ``q_i(t) = phi_i^T p / omega_d e^{-xi omega t} sin(omega_d t)``, ``omega_d = omega sqrt(1 - xi^2)``.
- Query points (e.g. Gaussian centres) take the element's shape functions at their
  barycentric coordinates in the containing tetrahedron (inverse-distance weights of the
  k nearest vertices outside the mesh); the deformation gradient there is ``I + grad u``.
- Spectral modes (Davis et al. 2015; Generative Image Dynamics): the temporal FFT of point
  tracks; resonant peaks give frequencies, the complex FFT coefficients there give
  point-space mode shapes driven by the same per-mode oscillators.

Query points live in :mod:`physics.modal.embedding` (``PointEmbedding``, ``PointModes``;
imported on demand because they use torch). Contact with kinematic points (a gripper) is
imported on demand too (it uses Warp and torch): :mod:`physics.modal.contact_object`
(``ModalObject``: a union of boxes clamped to the table, its modes and surface samples),
:mod:`physics.modal.pullback` (pulling world points back to the rest frame, a Warp kernel) and
:mod:`physics.modal.contact` (the penalty contact solve and ``ContactScheduler``, its substeps).
"""

from .beams import (
    bar_axial_hz,
    bar_torsion_hz,
    beam_beta_l,
    euler_bernoulli_beam_hz,
    euler_bernoulli_cantilever_hz,
    saint_venant_torsion_constant,
    simply_supported_plate_hz,
    timoshenko_cantilever_hz,
)
from .dynamics import ModalDynamics, RayleighDamping
from .mesh import box_tet_mesh, points_tet_mesh, surface_tet_mesh, voxel_tet_mesh
from .model import ModalModel, Modes
from .spectral import SpectralVolume, spectral_modes, spectral_volume

__all__ = [
    "ModalModel",
    "Modes",
    "ModalDynamics",
    "RayleighDamping",
    "SpectralVolume",
    "spectral_modes",
    "spectral_volume",
    "box_tet_mesh",
    "voxel_tet_mesh",
    "points_tet_mesh",
    "surface_tet_mesh",
    "euler_bernoulli_cantilever_hz",
    "timoshenko_cantilever_hz",
    "beam_beta_l",
    "euler_bernoulli_beam_hz",
    "bar_axial_hz",
    "bar_torsion_hz",
    "saint_venant_torsion_constant",
    "simply_supported_plate_hz",
]
