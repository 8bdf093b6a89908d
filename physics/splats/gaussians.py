"""A set of 3D Gaussians (a 3DGS scene) as typed arrays over its PLY vertex rows.

Properties of the INRIA 3DGS PLY: ``x y z`` (centre), ``nx ny nz`` (normals, often 0),
``f_dc_0..2`` (SH DC per channel), ``f_rest_*`` (higher SH bands stored channel-major:
all coefficients of R, then G, then B), ``opacity`` (logit), ``scale_0..2`` (log of the
standard deviations along the Gaussian's axes), ``rot_0..3`` (quaternion w, x, y, z, not
necessarily normalised). Covariance Sigma = R diag(s)^2 R^T.

:class:`GaussianSplats` reads those arrays from a :class:`~physics.splats.ply.PlyFile`
and returns a new one with positions, covariances (written back as scales + rotations,
exactly for SPD matrices) and SH coefficients replaced, every other property untouched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from .ply import PlyFile, read_ply, write_ply
from .sh import sh_degree

__all__ = ["GaussianSplats", "covariance_to_scale_rotation", "scale_rotation_to_covariance", "REQUIRED"]

REQUIRED = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
            "rot_0", "rot_1", "rot_2", "rot_3")


def scale_rotation_to_covariance(scales: np.ndarray, quaternions: np.ndarray) -> np.ndarray:
    """Covariances (N, 3, 3) R diag(s^2) R^T of standard deviations ``scales`` (N, 3) and quaternions (N, 4)
    w, x, y, z."""
    s = np.asarray(scales, dtype=np.float64)
    q = np.asarray(quaternions, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != 3 or q.shape != (len(s), 4):
        raise ValueError(f"scales must be (N, 3) and quaternions (N, 4), got {s.shape} and {q.shape}")
    norm = np.linalg.norm(q, axis=1)
    if np.any(~np.isfinite(norm) | (norm == 0.0)):
        raise ValueError("quaternions must be finite and non-zero")
    R = Rotation.from_quat(q / norm[:, None], scalar_first=True).as_matrix()
    return np.einsum("nij,nj,nkj->nik", R, s * s, R)


def covariance_to_scale_rotation(covariances: np.ndarray, min_variance: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Standard deviations (N, 3) and unit quaternions (N, 4; w, x, y, z with w >= 0) of SPD ``covariances``.

    Eigen-decomposition Sigma = V diag(lambda) V^T, made a proper rotation (det V = +1) by
    flipping an eigenvector; scales = sqrt(lambda) in ascending order. Reconstructing
    R diag(s^2) R^T gives Sigma back to rounding. With ``min_variance`` > 0, eigenvalues
    below it (e.g. rounding noise of a simulated, nearly flat Gaussian) are raised to it;
    with 0 a matrix that is not positive definite raises ``ValueError``.
    """
    cov = np.asarray(covariances, dtype=np.float64)
    if cov.ndim != 3 or cov.shape[1:] != (3, 3) or not np.all(np.isfinite(cov)):
        raise ValueError(f"covariances must be finite with shape (N, 3, 3), got {cov.shape}")
    if not (np.isfinite(min_variance) and min_variance >= 0.0):
        raise ValueError(f"min_variance must be finite and >= 0, got {min_variance}")
    lam, V = np.linalg.eigh(0.5 * (cov + cov.transpose(0, 2, 1)))
    if min_variance > 0.0:
        lam = np.maximum(lam, min_variance)
    elif np.any(lam <= 0.0):
        bad = np.flatnonzero(lam.min(axis=1) <= 0.0)
        raise ValueError(f"covariances must be symmetric positive definite; {len(bad)} are not "
                         f"(first: {bad[:10].tolist()})")
    V[:, :, 0] *= np.sign(np.linalg.det(V))[:, None]
    q = Rotation.from_matrix(V).as_quat(scalar_first=True)
    q *= np.where(q[:, :1] < 0.0, -1.0, 1.0)
    return np.sqrt(lam), q


@dataclass
class GaussianSplats:
    """Gaussians of a 3DGS PLY; arrays are float64 views converted from the file's rows.

    Build one with :meth:`load`, from a :class:`PlyFile`, or with :meth:`from_arrays`.
    """

    ply: PlyFile

    def __post_init__(self) -> None:
        missing = [n for n in REQUIRED if n not in self.ply.names]
        if missing:
            raise ValueError(f"not a 3DGS PLY: vertex properties {missing} are missing "
                             f"(required: {', '.join(REQUIRED)})")
        rest = len(self._rest_names())
        if rest % 3:
            raise ValueError(f"f_rest_* must come in 3 channels of (degree+1)^2 - 1 coefficients, "
                             f"got {rest} properties")
        sh_degree(1 + rest // 3)

    # -------------------------------------------------------------- construction
    @classmethod
    def load(cls, path: str | os.PathLike) -> "GaussianSplats":
        """Read a 3DGS PLY file."""
        return cls(read_ply(path))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the Gaussians as a 3DGS PLY file (atomically)."""
        return write_ply(path, self.ply)

    @classmethod
    def from_arrays(
        cls,
        positions: np.ndarray,
        scales: np.ndarray,
        quaternions: np.ndarray,
        opacities: np.ndarray,
        sh: np.ndarray,
        normals: np.ndarray | None = None,
    ) -> "GaussianSplats":
        """Gaussians from centres (N, 3), standard deviations (N, 3), quaternions (N, 4; w, x, y, z),
        opacities in (0, 1) (N,) and SH coefficients (N, K, 3); normals (N, 3) default to 0 as 3DGS writes them."""
        x = np.asarray(positions, dtype=np.float64)
        n = len(x)
        shapes = {"positions": (x, (n, 3)), "scales": (scales, (n, 3)), "quaternions": (quaternions, (n, 4)),
                  "opacities": (opacities, (n,))}
        for name, (arr, shape) in shapes.items():
            if np.shape(arr) != shape or not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite with shape {shape}, got {np.shape(arr)}")
        if np.any(np.asarray(scales) <= 0.0):
            raise ValueError("scales must be > 0 (standard deviations)")
        o = np.asarray(opacities, dtype=np.float64)
        if np.any((o <= 0.0) | (o >= 1.0)):
            raise ValueError("opacities must lie in (0, 1) (they are stored as logits)")
        c = np.asarray(sh, dtype=np.float64)
        if c.ndim != 3 or c.shape[0] != n or c.shape[2] != 3:
            raise ValueError(f"sh must have shape ({n}, K, 3), got {c.shape}")
        k = c.shape[1]
        sh_degree(k)
        names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        names += [f"f_rest_{i}" for i in range(3 * (k - 1))]
        names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
        vertex = np.zeros(n, dtype=[(name, "<f4") for name in names])
        splats = cls(PlyFile(vertex))
        nrm = np.zeros((n, 3)) if normals is None else np.asarray(normals, dtype=np.float64)
        splats._set(["nx", "ny", "nz"], nrm)
        splats._set(["opacity"], np.log(o / (1.0 - o))[:, None])
        q = np.asarray(quaternions, dtype=np.float64)
        return splats.updated(positions=x, log_scales=np.log(np.asarray(scales, dtype=np.float64)), quaternions=q, sh=c)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self.ply.vertex)

    def _get(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        v = self.ply.vertex
        return np.stack([v[n].astype(np.float64) for n in names], axis=1) if names else np.zeros((len(v), 0))

    def _set(self, names: list[str] | tuple[str, ...], values: np.ndarray) -> None:
        for i, n in enumerate(names):
            self.ply.vertex[n] = values[:, i]

    def _rest_names(self) -> list[str]:
        rest = [n for n in self.ply.names if n.startswith("f_rest_")]
        return sorted(rest, key=lambda n: int(n[7:]))

    @property
    def degree(self) -> int:
        """SH degree (0..3)."""
        return sh_degree(1 + len(self._rest_names()) // 3)

    @property
    def positions(self) -> np.ndarray:
        """(N, 3) centres."""
        return self._get(("x", "y", "z"))

    @property
    def has_normals(self) -> bool:
        """Whether the file has ``nx ny nz``."""
        return all(n in self.ply.names for n in ("nx", "ny", "nz"))

    @property
    def normals(self) -> np.ndarray | None:
        """(N, 3) normals, or None when the file has none."""
        return self._get(("nx", "ny", "nz")) if self.has_normals else None

    @property
    def opacities(self) -> np.ndarray:
        """(N,) opacities in (0, 1): sigmoid of the stored logits."""
        return 1.0 / (1.0 + np.exp(-self.ply.vertex["opacity"].astype(np.float64)))

    @property
    def log_scales(self) -> np.ndarray:
        """(N, 3) stored log standard deviations."""
        return self._get(("scale_0", "scale_1", "scale_2"))

    @property
    def scales(self) -> np.ndarray:
        """(N, 3) standard deviations along the Gaussians' axes."""
        return np.exp(self.log_scales)

    @property
    def quaternions(self) -> np.ndarray:
        """(N, 4) stored quaternions w, x, y, z (as in the file, not normalised)."""
        return self._get(("rot_0", "rot_1", "rot_2", "rot_3"))

    @property
    def rotations(self) -> np.ndarray:
        """(N, 3, 3) rotation matrices of the normalised quaternions."""
        q = self.quaternions
        return Rotation.from_quat(q / np.linalg.norm(q, axis=1, keepdims=True), scalar_first=True).as_matrix()

    @property
    def covariances(self) -> np.ndarray:
        """(N, 3, 3) covariances R diag(s^2) R^T."""
        return scale_rotation_to_covariance(self.scales, self.quaternions)

    @property
    def sh_dc(self) -> np.ndarray:
        """(N, 3) DC (view-independent) SH coefficients ``f_dc_0..2``."""
        return self._get(("f_dc_0", "f_dc_1", "f_dc_2"))

    @property
    def sh(self) -> np.ndarray:
        """(N, K, 3) SH coefficients, coefficient-major (row 0 is the DC term)."""
        dc = self.sh_dc
        rest = self._get(self._rest_names())  # channel-major: (N, 3 * (K-1))
        k = 1 + rest.shape[1] // 3
        return np.concatenate([dc[:, None, :], rest.reshape(len(self), 3, k - 1).transpose(0, 2, 1)], axis=1)

    # ----------------------------------------------------------------- updating
    def subset(self, index: np.ndarray) -> "GaussianSplats":
        """The Gaussians selected by ``index`` (boolean mask or integer indices), other file parts kept."""
        return GaussianSplats(self.ply.with_vertex(self.ply.vertex[index].copy()))

    def updated(
        self,
        positions: np.ndarray | None = None,
        covariances: np.ndarray | None = None,
        sh: np.ndarray | None = None,
        normals: np.ndarray | None = None,
        log_scales: np.ndarray | None = None,
        quaternions: np.ndarray | None = None,
        rows: np.ndarray | None = None,
        min_variance: float = 0.0,
    ) -> "GaussianSplats":
        """A copy with the given arrays replaced (every other property kept bit for bit).

        ``covariances`` (M, 3, 3) are written as scales + unit quaternions (exact for SPD
        matrices; eigenvalues below ``min_variance`` > 0 are raised to it); alternatively give
        ``log_scales`` and ``quaternions`` directly. ``rows`` (M indices or an N mask)
        restricts the update to those Gaussians (default: all).
        """
        out = GaussianSplats(self.ply.with_vertex(self.ply.vertex.copy()))
        sel = None if rows is None else np.arange(len(self))[rows]
        m = len(self) if sel is None else len(sel)
        sub = out.ply.vertex if sel is None else out.ply.vertex[sel]  # a view when updating all rows

        def put(names: list[str] | tuple[str, ...], values: np.ndarray, what: str, width: int) -> None:
            arr = np.asarray(values, dtype=np.float64).reshape(m, -1) if np.size(values) == m * width else None
            if arr is None or not np.all(np.isfinite(arr)):
                raise ValueError(f"{what} must be finite with {m} rows of {width} values, got shape {np.shape(values)}")
            for i, n in enumerate(names):
                sub[n] = arr[:, i]

        if positions is not None:
            put(("x", "y", "z"), positions, "positions", 3)
        if covariances is not None:
            if log_scales is not None or quaternions is not None:
                raise ValueError("give either covariances or log_scales + quaternions, not both")
            s, q = covariance_to_scale_rotation(np.asarray(covariances, dtype=np.float64).reshape(m, 3, 3),
                                                min_variance)
            log_scales, quaternions = np.log(s), q
        if log_scales is not None:
            put(("scale_0", "scale_1", "scale_2"), log_scales, "log_scales", 3)
        if quaternions is not None:
            put(("rot_0", "rot_1", "rot_2", "rot_3"), quaternions, "quaternions", 4)
        if normals is not None and self.has_normals:
            put(("nx", "ny", "nz"), normals, "normals", 3)
        if sh is not None:
            c = np.asarray(sh, dtype=np.float64)
            k = (self.degree + 1) ** 2
            if c.shape != (m, k, 3):
                raise ValueError(f"sh must have shape ({m}, {k}, 3) (degree {self.degree}), got {c.shape}")
            put(("f_dc_0", "f_dc_1", "f_dc_2"), c[:, 0, :], "sh", 3)
            if k > 1:
                put(self._rest_names(), c[:, 1:, :].transpose(0, 2, 1).reshape(m, -1), "sh", 3 * (k - 1))
        if sel is not None:
            out.ply.vertex[sel] = sub
        return out
