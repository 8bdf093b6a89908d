"""Fused scene point clouds from RGB-D + segmentation, and z-buffer visibility of tracked points.

Pipeline per step: back-project every pixel of every camera to the world frame; normals
from the cross product of neighbouring back-projected pixels (per axis, the one-sided
difference with the smaller depth jump, so silhouettes do not smear normals), oriented
toward the camera; drop background, robot pixels and points outside the workspace crop;
deduplicate on a voxel grid (cameras overlap) and pick a fixed number of points evenly
along the Morton (z-order) curve of each class — block points get up to
``object_fraction`` of the budget. Every step is deterministic: same images, same points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physics.render import LABEL_OBJECT, LABEL_ROBOT, Camera, pixel_rays, project


def morton_codes(cells: np.ndarray) -> np.ndarray:
    """Z-order codes of non-negative integer cells (N, 3), each coordinate < 2**21."""
    def spread(v):
        v = v.astype(np.uint64) & np.uint64(0x1FFFFF)
        v = (v | (v << np.uint64(32))) & np.uint64(0x1F00000000FFFF)
        v = (v | (v << np.uint64(16))) & np.uint64(0x1F0000FF0000FF)
        v = (v | (v << np.uint64(8))) & np.uint64(0x100F00F00F00F00F)
        v = (v | (v << np.uint64(4))) & np.uint64(0x10C30C30C30C30C3)
        v = (v | (v << np.uint64(2))) & np.uint64(0x1249249249249249)
        return v

    return spread(cells[:, 0]) | (spread(cells[:, 1]) << np.uint64(1)) | (spread(cells[:, 2]) << np.uint64(2))


def even_subset(codes: np.ndarray, count: int) -> np.ndarray:
    """Indices of ``count`` entries spread evenly along ascending ``codes`` (cycled if too few)."""
    order = np.argsort(codes, kind="stable")
    if len(order) == 0:
        return order
    pos = (np.arange(count) * len(order)) // count if count <= len(order) else np.arange(count) % len(order)
    return order[pos]


@dataclass
class PointCloud:
    """A fused cloud: points, colours in [0, 1], unit normals (N, 3) and labels (N,)."""

    points: np.ndarray
    colors: np.ndarray
    normals: np.ndarray
    labels: np.ndarray


class PointCloudFuser:
    """Fuses the RGB-D frames of fixed ``cameras`` into a `PointCloud` of ``num_points``."""

    def __init__(
        self, cameras: tuple[Camera, ...], num_points: int, crop_min: np.ndarray, crop_max: np.ndarray,
        object_fraction: float = 0.25, voxel: float = 0.004,
    ):
        if num_points <= 0:
            raise ValueError(f"num_scene_points must be a positive integer, got {num_points}")
        if not 0.0 <= object_fraction <= 1.0:
            raise ValueError(f"object_fraction must lie in [0, 1], got {object_fraction}")
        self.cameras = cameras
        self.num_points = int(num_points)
        self.crop_min, self.crop_max = np.asarray(crop_min, float), np.asarray(crop_max, float)
        self.object_fraction = object_fraction
        self.voxel = voxel
        self.cam2world = np.stack([np.asarray(c.cam2world, dtype=float) for c in cameras])
        rays = np.stack([pixel_rays(c) for c in cameras])  # camera frame, z = 1
        # world-frame rays and origins per flat pixel: point = origin + depth * ray
        self.rays_world = np.matmul(rays, np.transpose(self.cam2world[:, None, :3, :3], (0, 1, 3, 2))).reshape(-1, 3)
        self.origins = np.repeat(self.cam2world[:, :3, 3], rays.shape[1] * rays.shape[2], axis=0)

    def capacity(self, plane_z: float = 0.0) -> int:
        """The number of distinct points (voxels) the cameras see of the plane z = ``plane_z`` inside the crop:
        the most distinct static points a fused cloud of the empty table can hold."""
        dz = self.rays_world[:, 2]
        down = dz < -1e-12
        t = np.where(down, (plane_z - self.origins[:, 2]) / np.where(down, dz, -1.0), -1.0)
        hit = self.origins + t[:, None] * self.rays_world
        keep = t > 0
        for axis in range(2):
            keep &= (hit[:, axis] >= self.crop_min[axis]) & (hit[:, axis] <= self.crop_max[axis])
        cells = np.floor((hit[keep] - self.crop_min) / self.voxel).astype(np.int64)
        return len(np.unique(morton_codes(cells)))

    def require_capacity(self, plane_z: float = 0.0) -> None:
        """ValueError unless the cameras can give ``num_points`` distinct points (see `capacity`).

        Near the limit the robot hides part of the table (up to ~15% of it for the arm), and the
        cloud then repeats points; stay well below it for distinct points every step.
        """
        cap = self.capacity(plane_z)
        if self.num_points > cap:
            cam = self.cameras[0]
            raise ValueError(
                f"num_scene_points={self.num_points} is more than the {cap} distinct points that {len(self.cameras)} "
                f"camera(s) of {cam.width}x{cam.height} px see of the workspace; allowed: at most {cap} "
                "(or a larger image_size)")

    def world_points(self, depth: np.ndarray, pix: np.ndarray | None = None) -> np.ndarray:
        """World coordinates (N, 3) of flat pixel indices ``pix`` (default: all pixels)."""
        d = depth.reshape(-1)
        if pix is None:
            return self.origins + d[:, None] * self.rays_world
        return self.origins[pix] + d[pix, None] * self.rays_world[pix]

    def normals(self, world: np.ndarray, depth: np.ndarray, pix: np.ndarray) -> np.ndarray:
        """Unit normals (N, 3) at flat pixel indices ``pix`` from neighbouring pixels, facing the camera.

        ``world`` (V*H*W, 3) are the back-projected pixels of ``depth`` (V, H, W).
        """
        V, H, W = depth.shape
        d = depth.reshape(-1)
        col, row = pix % W, (pix // W) % H
        p = world[pix]

        def one_sided(step: int, has_fwd: np.ndarray, has_bwd: np.ndarray) -> np.ndarray:
            fwd_pix, bwd_pix = np.where(has_fwd, pix + step, pix), np.where(has_bwd, pix - step, pix)
            df, db = d[fwd_pix], d[bwd_pix]
            jf = np.where(has_fwd & (df > 0), np.abs(df - d[pix]), np.inf)  # background: never used
            jb = np.where(has_bwd & (db > 0), np.abs(d[pix] - db), np.inf)
            return np.where((jf <= jb)[:, None], world[fwd_pix] - p, p - world[bwd_pix])

        nrm = np.cross(one_sided(W, row < H - 1, row > 0), one_sided(1, col < W - 1, col > 0))
        to_cam = self.origins[pix] - p
        nrm = np.where((np.sum(nrm * to_cam, -1) < 0)[:, None], -nrm, nrm)
        norm = np.linalg.norm(nrm, axis=-1, keepdims=True)
        return nrm / np.where(norm > 0, norm, 1.0)

    def fuse(self, rgb: np.ndarray, depth: np.ndarray, labels: np.ndarray) -> PointCloud:
        """The fused, cropped, robot-free and downsampled cloud of one set of frames."""
        world = self.world_points(depth)
        keep = ((depth > 0) & (labels != LABEL_ROBOT)).reshape(-1)
        for axis in range(3):
            keep &= (world[:, axis] >= self.crop_min[axis]) & (world[:, axis] <= self.crop_max[axis])
        idx = np.flatnonzero(keep)
        pts = world[idx]
        lab = labels.reshape(-1)[idx]
        cells = np.floor((pts - self.crop_min) / self.voxel).astype(np.int64)
        codes = morton_codes(cells)
        _, first = np.unique(codes * np.uint64(2) + (lab == LABEL_OBJECT).astype(np.uint64), return_index=True)
        is_obj = lab[first] == LABEL_OBJECT
        obj, stat = first[is_obj], first[~is_obj]
        n_obj = min(len(obj), int(round(self.object_fraction * self.num_points)))
        if len(stat) == 0:
            n_obj = self.num_points
        chosen = np.concatenate(
            [obj[even_subset(codes[obj], n_obj)], stat[even_subset(codes[stat], self.num_points - n_obj)]]
        )
        if len(chosen) == 0:
            raise RuntimeError("no scene point is visible: every camera pixel was cropped or masked")
        pix = idx[chosen]
        nrm = self.normals(world, depth, pix)
        return PointCloud(
            points=pts[chosen].astype(np.float32),
            colors=(rgb.reshape(-1, 3)[pix] / 255.0).astype(np.float32),
            normals=nrm.astype(np.float32),
            labels=lab[chosen].astype(np.int32),
        )

    def visible(self, points: np.ndarray, depth: np.ndarray, labels: np.ndarray, label: int, tol: float = 0.01
                ) -> np.ndarray:
        """Whether each world point (K, 3) is seen by some camera (z-buffer test on its label's pixels)."""
        seen = np.zeros(len(points), dtype=bool)
        for v, cam in enumerate(self.cameras):
            u, w, z = project(points, cam)
            ui, vi = np.rint(u).astype(int), np.rint(w).astype(int)
            inside = (z > 0) & (ui >= 0) & (ui < cam.width) & (vi >= 0) & (vi < cam.height)
            ui, vi = np.clip(ui, 0, cam.width - 1), np.clip(vi, 0, cam.height - 1)
            seen |= inside & (labels[v, vi, ui] == label) & (depth[v, vi, ui] > z - tol)
        return seen
