"""Pinhole cameras in OpenCV conventions: placement, back-projection and projection.

OpenCV: pixel (u, v) is column u, row v, with pixel centres at integer coordinates, so a
centred camera has cx = (W - 1) / 2. Camera axes: x right, y down, z forward; depth is
the z coordinate in the camera frame (metres).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: image size, OpenCV intrinsics and cam2world (4x4, OpenCV axes)."""

    name: str
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    cam2world: np.ndarray

    @property
    def intrinsics(self) -> np.ndarray:
        """The 3x3 OpenCV intrinsic matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def fovy_deg(self) -> float:
        """Vertical field of view in degrees."""
        return float(np.degrees(2.0 * np.arctan(self.height / 2.0 / self.fy)))


def resized(cam: Camera, width: int, height: int, name: str | None = None) -> Camera:
    """``cam`` at another image size: the same pose and vertical field of view, square pixels, centred."""
    return pinhole(cam.name if name is None else name, cam.cam2world, width, height, cam.fovy_deg)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0)) -> np.ndarray:
    """cam2world (4, 4, OpenCV axes) of a camera at ``eye`` looking at ``target``."""
    eye, target, up = (np.asarray(v, dtype=float) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("camera viewing direction is parallel to the up vector")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, eye
    return T


def pinhole(name: str, cam2world: np.ndarray, width: int, height: int, fovy_deg: float) -> Camera:
    """A centred pinhole camera with square pixels and vertical field of view ``fovy_deg``."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    f = (height / 2.0) / np.tan(np.radians(fovy_deg) / 2.0)
    return Camera(name, int(width), int(height), f, f, (width - 1) / 2.0, (height - 1) / 2.0, np.asarray(cam2world))


def pixel_rays(cam: Camera) -> np.ndarray:
    """Camera-frame rays (H, W, 3) with z = 1 for every pixel centre."""
    u, v = np.meshgrid(np.arange(cam.width), np.arange(cam.height))
    return np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones_like(u, dtype=float)], -1)


def backproject(depth: np.ndarray, rays: np.ndarray, cam2world: np.ndarray) -> np.ndarray:
    """World points (..., H, W, 3) of depth images (..., H, W) with camera rays (H, W, 3) and poses (..., 4, 4)."""
    cam = depth[..., None] * rays
    R = cam2world[..., None, None, :3, :3]
    return np.einsum("...ij,...j->...i", R, cam) + cam2world[..., None, None, :3, 3]


def project(points: np.ndarray, cam: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel coordinates u, v (N,) and depth z (N,) of world points (N, 3) in ``cam``."""
    R, t = np.asarray(cam.cam2world)[:3, :3], np.asarray(cam.cam2world)[:3, 3]
    pc = (points - t) @ R  # world -> camera: R^T (p - t)
    z = pc[:, 2]
    safe = np.where(np.abs(z) < 1e-9, 1e-9, z)
    return cam.fx * pc[:, 0] / safe + cam.cx, cam.fy * pc[:, 1] / safe + cam.cy, z


def orbit_cameras(
    num: int, width: int, height: int, radius: float = 0.9, height_m: float = 0.8, fovy_deg: float = 45.0,
    azimuth0_deg: float = -135.0, target: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> tuple[Camera, ...]:
    """``num`` cameras evenly spaced in azimuth on a circle of ``radius`` m, ``height_m`` up, looking at ``target``."""
    if num <= 0:
        raise ValueError(f"num_cameras must be a positive integer, got {num}")
    cams = []
    for i in range(num):
        a = np.radians(azimuth0_deg + 360.0 * i / num)
        eye = np.array([radius * np.cos(a), radius * np.sin(a), height_m])
        cams.append(pinhole(f"cam{i}", look_at(eye, target), width, height, fovy_deg))
    return tuple(cams)
