"""Fused scene point clouds from RGB-D + segmentation, and z-buffer visibility of tracked points.

Pipeline per step: back-project every pixel of every camera to the world frame; normals
from the cross product of neighbouring back-projected pixels (per axis, the one-sided
difference with the smaller depth jump, so silhouettes do not smear normals), oriented
toward the camera; drop background, robot pixels and points outside the workspace crop;
deduplicate on a voxel grid (cameras overlap) and pick a fixed number of points evenly
along the Morton (z-order) curve of each class — block points get up to
``object_fraction`` of the budget. Every step is deterministic: same images, same points.

`PointCloudFuser.fuse` works incrementally, over preallocated buffers: it keeps the last frames and
the sorted deduplication keys of their kept pixels (each key carries its pixel index in its low
bits, so the first pixel of every voxel is the one of lowest index, as a stable ``np.unique`` would
pick), and per call back-projects and keys only the pixels whose depth or label changed (the
moving block and robot; cameras are fixed), merging them into the kept keys. The result is that of
the whole computation, bit for bit (every value is computed per pixel by the same operations);
when most pixels change, it is the whole computation. Morton codes come from per-axis lookup
tables, camera rays and origins are computed once (axis-major), and world points and normals are
computed for the chosen points only.
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


def even_positions(n: int, count: int) -> np.ndarray:
    """Positions of ``count`` entries spread evenly over ``n`` sorted ones (cycled if too few; empty if ``n`` is 0)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    return (np.arange(count) * n) // count if count <= n else np.arange(count) % n


def even_subset(codes: np.ndarray, count: int) -> np.ndarray:
    """Indices of ``count`` entries spread evenly along ascending ``codes`` (cycled if too few)."""
    order = np.argsort(codes, kind="stable")
    return order[even_positions(len(order), count)]


_BYTE_TO_UNIT = (np.arange(256) / 255.0).astype(np.float32)  # uint8 colour -> [0, 1], as uint8 / 255.0 then float32
_MAX_TABLE_CELLS = 1 << 16  # per axis: larger crops (in voxels) compute Morton codes instead of looking them up


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
        # axis-major copies (3, P) and per-step buffers: fuse() allocates only what it returns
        n = len(self.rays_world)
        self._rays_t, self._origins_t = np.ascontiguousarray(self.rays_world.T), np.ascontiguousarray(self.origins.T)
        self._world, self._scaled = np.empty((3, n)), np.empty((3, n))
        self._keep, self._tmp = np.empty(n, dtype=bool), np.empty(n, dtype=bool)
        cells = np.floor((self.crop_max - self.crop_min) / voxel).astype(np.int64) + 2  # every cell inside the crop
        self._morton_tables = None
        if cells.max() <= _MAX_TABLE_CELLS:
            self._morton_tables = [morton_codes(np.eye(3, dtype=np.int64)[axis] * np.arange(c)[:, None])
                                   for axis, c in enumerate(cells)]
        # bits of the deduplication keys (code * 2 + is_object): short keys are sorted by 16-bit radix passes
        self._key_bits = 1 + (3 * max(1, int(cells.max() - 1).bit_length()) if self._morton_tables is not None else 63)
        # incremental fusion: keys (code * 2 + is_object) << pixel bits | pixel of the last frames' kept pixels
        self._pix_bits = max(1, (n - 1).bit_length())
        self._incremental = self._key_bits + self._pix_bits <= 63
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # depth, labels, sorted keys
        self._changed = np.empty(n, dtype=bool)
        self._crop_min_c, self._crop_max_c = self.crop_min[:, None], self.crop_max[:, None]
        # normals: every pixel's neighbours down the image, along it, then up and back (itself where there is none)
        H, W = rays.shape[1:3]
        pix = np.arange(n)
        row, col = (pix // W) % H, pix % W
        self._has_nbr = np.stack([row < H - 1, col < W - 1, row > 0, col > 0])
        self._nbr = np.where(self._has_nbr, pix + np.array([[W], [1], [-W], [-1]]), pix).astype(np.int32)

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
        return self._normals(np.ascontiguousarray(np.asarray(world).T), depth, pix).T

    def _normals(self, world: np.ndarray, depth: np.ndarray, pix: np.ndarray) -> np.ndarray:
        """`normals` of axis-major ``world`` (3, V*H*W), axis-major (3, N): per axis, the one-sided difference
        with the smaller depth jump (background neighbours never used), crossed, turned toward the camera and
        normalised."""
        V, H, W = depth.shape
        d = depth.reshape(-1)
        col, row = pix % W, (pix // W) % H
        p, dp = np.take(world, pix, axis=1), d[pix]
        # both image axes at once (rows: down the image, then along it): neighbour ahead and behind
        has_fwd, has_bwd = np.stack([row < H - 1, col < W - 1]), np.stack([row > 0, col > 0])
        step = np.array([[W], [1]])
        fwd_pix, bwd_pix = np.where(has_fwd, pix + step, pix), np.where(has_bwd, pix - step, pix)
        df, db = d[fwd_pix], d[bwd_pix]
        jf = np.where(has_fwd & (df > 0), np.abs(df - dp), np.inf)  # background: never used
        jb = np.where(has_bwd & (db > 0), np.abs(dp - db), np.inf)
        pc = p[:, None]
        diff = np.where(jf <= jb, np.take(world, fwd_pix, axis=1) - pc, pc - np.take(world, bwd_pix, axis=1))
        a, b = diff[:, 0], diff[:, 1]  # (3, N) each: down the image, along it
        nrm = np.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])
        to_cam = np.take(self._origins_t, pix, axis=1) - p
        facing = nrm[0] * to_cam[0] + nrm[1] * to_cam[1] + nrm[2] * to_cam[2]
        nrm = np.where(facing < 0, -nrm, nrm)
        norm = np.sqrt(nrm[0] * nrm[0] + nrm[1] * nrm[1] + nrm[2] * nrm[2])
        return nrm / np.where(norm > 0, norm, 1.0)

    def _codes(self, cells: np.ndarray) -> np.ndarray:
        """Morton codes of axis-major cells (3, N) inside the crop."""
        if self._morton_tables is None:
            return morton_codes(np.ascontiguousarray(cells.T))
        tx, ty, tz = self._morton_tables
        return tx[cells[0]] | ty[cells[1]] | tz[cells[2]]

    def _stable_order(self, keys: np.ndarray) -> np.ndarray:
        """``np.argsort(keys, kind="stable")`` of non-negative keys below 2 ** ``_key_bits`` (16-bit radix passes)."""
        if self._key_bits > 48:
            return np.argsort(keys, kind="stable")
        order = None
        for shift in range(0, self._key_bits, 16):  # least significant digit first; each pass stable
            digit = ((keys >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.uint16)
            step = np.argsort(digit if order is None else digit[order], kind="stable")
            order = step if order is None else order[step]
        return order

    def _keys(self, d: np.ndarray, lab: np.ndarray, pix: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Kept pixels among flat pixels ``pix`` (None: all, in the preallocated buffers) of flat depth ``d`` and
        labels ``lab`` (positive depth, not the robot, inside the crop; ascending) and their keys, code * 2 +
        is_object."""
        if pix is None:
            world, keep, tmp = self._world, self._keep, self._tmp
            np.multiply(d, self._rays_t, out=world)
            np.add(self._origins_t, world, out=world)
            np.greater(d, 0, out=keep)
            np.not_equal(lab, LABEL_ROBOT, out=tmp)
        else:
            d, lab = d[pix], lab[pix]
            world = np.take(self._origins_t, pix, axis=1) + d * np.take(self._rays_t, pix, axis=1)
            keep, tmp = d > 0, lab != LABEL_ROBOT
        keep &= tmp
        if pix is None:
            for axis in range(3):
                keep &= np.greater_equal(world[axis], self.crop_min[axis], out=tmp)
                keep &= np.less_equal(world[axis], self.crop_max[axis], out=tmp)
        else:
            keep &= np.all((world >= self._crop_min_c) & (world <= self._crop_max_c), axis=0)
        idx = np.flatnonzero(keep)
        # floor of non-negative values (every kept point is inside the crop): truncation
        scaled = self._scaled[:, : len(idx)]
        np.subtract(np.take(world, idx, axis=1), self.crop_min[:, None], out=scaled)
        np.divide(scaled, self.voxel, out=scaled)
        codes = self._codes(scaled.astype(np.int64))
        keys = codes * np.uint64(2) + (lab[idx] == LABEL_OBJECT).astype(np.uint64)
        return (idx if pix is None else pix[idx]), keys

    def _sorted_keys(self, d: np.ndarray, lab: np.ndarray) -> np.ndarray:
        """Ascending keys << pixel bits | pixel of every kept pixel (see `_keys`) of flat ``d``, ``lab``: the last
        call's, with the pixels whose depth or label changed keyed again (all of them when most changed)."""
        changed = self._changed
        if self._last is not None:
            last_d, last_lab, last_keys = self._last
            np.not_equal(d, last_d, out=changed)
            changed |= lab != last_lab
            pix = np.flatnonzero(changed)
        if self._last is None or 4 * len(pix) > len(d):
            pix, keys = self._keys(d, lab, None)
            order = self._stable_order(keys)
            merged = (keys[order] << np.uint64(self._pix_bits)) | pix[order].astype(np.uint64)
            self._last = (d.copy(), lab.copy(), merged)
            return merged
        pix, keys = self._keys(d, lab, pix)
        mask = np.uint64((1 << self._pix_bits) - 1)
        kept = last_keys[~changed[(last_keys & mask).astype(np.intp)]]
        # one ascending run and a short one: a stable sort (timsort) merges them (the values are distinct)
        merged = np.sort(np.concatenate([kept, (keys << np.uint64(self._pix_bits)) | pix.astype(np.uint64)]),
                         kind="stable")
        last_d[:] = d
        last_lab[:] = lab
        self._last = (last_d, last_lab, merged)
        return merged

    def _first_per_voxel(self, d: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The first kept pixel (lowest index) of every (voxel, class), in ascending (Morton code, class) order, and
        whether its class is the object."""
        if not self._incremental:
            pix, keys = self._keys(d, lab, None)
            _, first = np.unique(keys, return_index=True)
            return pix[first], (keys[first] & np.uint64(1)).astype(bool)
        merged = self._sorted_keys(d, lab)
        keys = merged >> np.uint64(self._pix_bits)
        first = np.empty(len(merged), dtype=bool)
        first[:1] = True
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        pix = (merged[first] & np.uint64((1 << self._pix_bits) - 1)).astype(np.intp)
        return pix, (keys[first] & np.uint64(1)).astype(bool)

    def _normals_at(self, d: np.ndarray, pix: np.ndarray, o: np.ndarray, p: np.ndarray) -> np.ndarray:
        """`normals` (axis-major (3, N)) at flat pixels ``pix`` of flat depth ``d``, whose camera origins are ``o``
        and world points ``p`` (3, N), back-projecting only the neighbours used (the same values: a neighbour is
        in the same image, so it has the same origin)."""
        has, nb = np.take(self._has_nbr, pix, axis=1), np.take(self._nbr, pix, axis=1)
        dn = d[nb]
        jump = np.where(has & (dn > 0), np.abs(dn - d[pix]), np.inf)  # background: never used
        fwd = jump[:2] <= jump[2:]  # per image axis: the neighbour ahead, else the one behind
        used = np.where(fwd, nb[:2], nb[2:])
        wn, pc = o[:, None] + d[used] * np.take(self._rays_t, used, axis=1), p[:, None]  # (3, 2, N), (3, 1, N)
        diff = np.where(fwd, wn - pc, pc - wn)
        a, b = diff[:, 0], diff[:, 1]  # (3, N) each: down the image, along it
        nrm = np.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])
        to_cam = o - p
        facing = nrm[0] * to_cam[0] + nrm[1] * to_cam[1] + nrm[2] * to_cam[2]
        nrm = np.where(facing < 0, -nrm, nrm)
        norm = np.sqrt(nrm[0] * nrm[0] + nrm[1] * nrm[1] + nrm[2] * nrm[2])
        return nrm / np.where(norm > 0, norm, 1.0)

    def fuse(self, rgb: np.ndarray, depth: np.ndarray, labels: np.ndarray) -> PointCloud:
        """The fused, cropped, robot-free and downsampled cloud of one set of frames."""
        d, lab_all = depth.reshape(-1), labels.reshape(-1)
        first, is_obj = self._first_per_voxel(d, lab_all)
        obj, stat = first[is_obj], first[~is_obj]  # each in ascending code order
        n_obj = min(len(obj), int(round(self.object_fraction * self.num_points)))
        if len(stat) == 0:
            n_obj = self.num_points
        pix = np.concatenate(
            [obj[even_positions(len(obj), n_obj)], stat[even_positions(len(stat), self.num_points - n_obj)]])
        if len(pix) == 0:
            raise RuntimeError("no scene point is visible: every camera pixel was cropped or masked")
        o = np.take(self._origins_t, pix, axis=1)
        p = o + d[pix] * np.take(self._rays_t, pix, axis=1)
        return PointCloud(
            points=p.T.astype(np.float32),
            colors=np.take(_BYTE_TO_UNIT, np.take(rgb.reshape(-1, 3), pix, axis=0)),
            normals=self._normals_at(d, pix, o, p).T.astype(np.float32),
            labels=lab_all[pix].astype(np.int32),
        )

    def visible(self, points: np.ndarray, depth: np.ndarray, labels: np.ndarray, label: int, tol: float = 0.01
                ) -> np.ndarray:
        """Whether each world point (K, 3) is seen by some camera (z-buffer test on its label's pixels)."""
        V, H, W = depth.shape
        u, w, z = (np.stack(c) for c in zip(*(project(points, cam) for cam in self.cameras), strict=True))  # (V, K)
        ui, vi = np.rint(u).astype(np.intp), np.rint(w).astype(np.intp)
        inside = (z > 0) & (ui >= 0) & (ui < W) & (vi >= 0) & (vi < H)
        flat = np.where(inside, (np.arange(V)[:, None] * H + vi) * W + ui, 0)
        seen = inside & (labels.reshape(-1)[flat] == label) & (depth.reshape(-1)[flat] > z - tol)
        return seen.any(axis=0)
