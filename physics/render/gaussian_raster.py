"""Render 3D Gaussian splats by EWA splatting and front-to-back alpha blending, as 3D Gaussian Splatting does.

Each Gaussian (mean, world covariance, opacity, RGB) is projected to a 2D Gaussian on the image:
covariance ``J W Σ Wᵀ Jᵀ`` with the perspective Jacobian ``J`` at its mean and the world-to-camera
rotation ``W``, dilated by 0.3 px² (the low-pass filter of 3DGS). A pixel at offset ``d`` from the
projected mean gets ``alpha = min(0.99, opacity * exp(-0.5 dᵀ Σ₂⁻¹ d))``; alphas below 1/255 are
skipped, and a pixel stops once its transmittance would fall below 1e-4. Gaussians are blended
front to back in the order of their mean's depth, over an optional checkerboard floor (an opaque
surface at its ray depth: Gaussians farther than it are hidden) and then over the background.

The work runs as Warp kernels on ``device`` (``"cpu"`` or ``"cuda"``), tile-based as in 3DGS:

1. ``project_gaussians``: one thread per Gaussian: screen-space mean, inverse 2D covariance
   (conic), depth and the 16×16-pixel tiles its footprint's bounding box touches (the box holds
   every pixel where its alpha can reach 1/255, at most 3 sigma); culls Gaussians behind the near
   plane, outside the image or too faint to show.
2. The visible Gaussians are sorted by depth (stable radix sort), packed in that order by
   ``gather_splats`` (so the blending reads memory in order) and cut into depth-ordered chunks of at
   most ``MAX_TILE_ENTRIES`` (Gaussian, tile) pairs, so memory stays bounded for any N.
3. Per chunk: ``emit_tile_entries`` writes the pairs, a stable radix sort by tile keeps each tile's
   list in depth order, ``find_tile_ranges`` marks each tile's slice, and ``blend_tile_pixels``
   (one thread per pixel) blends its tile's list into the pixel's running colour and
   transmittance. Chunks are blended front to back, so the result is that of one pass; once every
   pixel is done (opaque, or at its floor) the farther chunks are skipped.

``floor_depth`` intersects every pixel's ray with the floor plane beforehand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import warp as wp

from .cameras import Camera, look_at, pinhole

TILE = 16  # tile side in pixels
NEAR = 0.01  # Gaussians whose mean is nearer than this (camera z, world units) are culled
LOW_PASS = 0.3  # px², added to the projected covariance's diagonal
MIN_ALPHA = 1.0 / 255.0
MAX_ALPHA = 0.99
MIN_TRANSMITTANCE = 1e-4
MAX_TILE_ENTRIES = 1 << 22  # (Gaussian, tile) pairs sorted at once; more are blended in depth-ordered chunks
FLOOR_GREYS = (0.86, 0.70)  # the checkerboard's two greys

_AXES = {"+x": (1, 0, 0), "-x": (-1, 0, 0), "+y": (0, 1, 0), "-y": (0, -1, 0), "+z": (0, 0, 1), "-z": (0, 0, -1)}


@dataclass(frozen=True)
class Floor:
    """A square of the ground plane drawn as a checkerboard of two greys under the object.

    ``point`` (3,) lies on the plane (world) and is the square's centre; ``normal`` (3,) points up (it is
    normalised); ``half_extent`` is half the square's side; ``cell`` the checker cell size (None: half_extent / 8).
    """

    point: np.ndarray
    normal: np.ndarray
    half_extent: float
    cell: float | None = None

    def __post_init__(self) -> None:
        point = np.asarray(self.point, dtype=np.float64)
        normal = np.asarray(self.normal, dtype=np.float64)
        if point.shape != (3,) or normal.shape != (3,):
            raise ValueError(f"Floor point and normal must have shape (3,), got {point.shape} and {normal.shape}")
        if not (np.all(np.isfinite(point)) and np.all(np.isfinite(normal))):
            raise ValueError("Floor point and normal must be finite")
        length = np.linalg.norm(normal)
        if length < 1e-12:
            raise ValueError("Floor normal must be a non-zero vector")
        if not (np.isfinite(self.half_extent) and self.half_extent > 0):
            raise ValueError(f"Floor half_extent must be a positive finite number, got {self.half_extent}")
        cell = self.half_extent / 8.0 if self.cell is None else float(self.cell)
        if not (np.isfinite(cell) and cell > 0):
            raise ValueError(f"Floor cell must be a positive finite number or None, got {self.cell}")
        object.__setattr__(self, "point", point)
        object.__setattr__(self, "normal", normal / length)
        object.__setattr__(self, "half_extent", float(self.half_extent))
        object.__setattr__(self, "cell", cell)

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Two unit vectors spanning the plane (the checkerboard's axes), normal = first × second."""
        n = self.normal
        e1 = np.cross(n, np.eye(3)[int(np.argmin(np.abs(n)))])
        e1 /= np.linalg.norm(e1)
        return e1, np.cross(n, e1)


@wp.struct
class View:
    """The camera as the kernels see it: world-to-camera rotation and translation, intrinsics, image and tile
    grid sizes."""

    rotation: wp.mat33  # world -> camera
    translation: wp.vec3
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    tiles_x: int
    tiles_y: int


@wp.kernel
def project_gaussians(
    view: View,
    means: wp.array(dtype=wp.vec3),
    covariances: wp.array(dtype=wp.mat33),
    opacities: wp.array(dtype=float),
    centre: wp.array(dtype=wp.vec2),
    conic: wp.array(dtype=wp.vec3),
    depth: wp.array(dtype=float),
    tile_box: wp.array(dtype=wp.vec4i),
    tile_count: wp.array(dtype=wp.int32),
):
    """EWA projection of Gaussian i: pixel centre, conic (inverse 2D covariance: xx, xy, yy), depth and the tile
    box [x0, x1) x [y0, y1) of its footprint; culled Gaussians get depth +inf and no tiles."""
    i = wp.tid()
    depth[i] = wp.inf
    tile_count[i] = 0
    o = opacities[i]
    if o < MIN_ALPHA:
        return
    p = view.rotation * means[i] + view.translation
    if p[2] < NEAR:
        return
    # the Jacobian at a point clamped to 1.3x the field of view, as 3DGS does (far-off-axis Gaussians stay stable)
    lim_x = 1.3 * 0.5 * float(view.width) / view.fx
    lim_y = 1.3 * 0.5 * float(view.height) / view.fy
    z = p[2]
    x = wp.clamp(p[0] / z, -lim_x, lim_x) * z
    y = wp.clamp(p[1] / z, -lim_y, lim_y) * z
    J = wp.mat33(view.fx / z, 0.0, -view.fx * x / (z * z), 0.0, view.fy / z, -view.fy * y / (z * z), 0.0, 0.0, 0.0)
    T = J * view.rotation
    cov = T * covariances[i] * wp.transpose(T)
    a = cov[0, 0] + LOW_PASS
    b = 0.5 * (cov[0, 1] + cov[1, 0])
    c = cov[1, 1] + LOW_PASS
    det = a * c - b * b
    if det <= 0.0:
        return
    u = view.fx * p[0] / z + view.cx
    v = view.fy * p[1] / z + view.cy
    # alpha >= 1/255 needs a Mahalanobis distance m with m^2 <= 2 ln(255 o); never beyond 3 sigma
    m = wp.min(3.0, wp.sqrt(2.0 * wp.log(o / MIN_ALPHA)))
    ex = m * wp.sqrt(a)  # the ellipse's bounding box half-sizes
    ey = m * wp.sqrt(c)
    # pixel centres are at integers: the footprint covers columns ceil(u - ex) .. floor(u + ex)
    fw = float(view.width)
    fh = float(view.height)
    x0 = int(wp.ceil(wp.clamp(u - ex, -1.0, fw))) // TILE
    x1 = int(wp.floor(wp.clamp(u + ex, -1.0, fw)))
    y0 = int(wp.ceil(wp.clamp(v - ey, -1.0, fh))) // TILE
    y1 = int(wp.floor(wp.clamp(v + ey, -1.0, fh)))
    if x1 < 0 or y1 < 0:
        return
    x0 = wp.max(x0, 0)
    y0 = wp.max(y0, 0)
    x1 = wp.min(x1 // TILE + 1, view.tiles_x)
    y1 = wp.min(y1 // TILE + 1, view.tiles_y)
    if x1 <= x0 or y1 <= y0:
        return
    centre[i] = wp.vec2(u, v)
    conic[i] = wp.vec3(c / det, -b / det, a / det)
    depth[i] = z
    tile_box[i] = wp.vec4i(x0, x1, y0, y1)
    tile_count[i] = (x1 - x0) * (y1 - y0)


@wp.struct
class Splat:
    """A projected Gaussian as the blending reads it: pixel centre, conic (xx, xy, yy), opacity, depth, RGB."""

    centre: wp.vec2
    conic: wp.vec3
    opacity: float
    depth: float
    color: wp.vec3


@wp.kernel
def gather_splats(
    order: wp.array(dtype=wp.int32),
    centre: wp.array(dtype=wp.vec2),
    conic: wp.array(dtype=wp.vec3),
    depth: wp.array(dtype=float),
    opacities: wp.array(dtype=float),
    colors: wp.array(dtype=wp.vec3),
    splats: wp.array(dtype=Splat),
):
    """Pack the r-th nearest Gaussian's projection into splats[r] (depth order keeps the blending's reads local)."""
    r = wp.tid()
    i = order[r]
    s = Splat()
    s.centre = centre[i]
    s.conic = conic[i]
    s.opacity = opacities[i]
    s.depth = depth[i]
    s.color = colors[i]
    splats[r] = s


@wp.kernel
def emit_tile_entries(
    view: View,
    order: wp.array(dtype=wp.int32),
    first: int,
    offset: wp.array(dtype=wp.int32),
    tile_box: wp.array(dtype=wp.vec4i),
    tile_key: wp.array(dtype=wp.int32),
    rank: wp.array(dtype=wp.int32),
):
    """Write one (tile, depth rank) entry per tile of the chunk's j-th Gaussian, at its offset in the chunk."""
    j = wp.tid()
    r = first + j
    box = tile_box[order[r]]
    k = offset[r]
    for ty in range(box[2], box[3]):
        for tx in range(box[0], box[1]):
            tile_key[k] = ty * view.tiles_x + tx
            rank[k] = r
            k += 1


@wp.kernel
def find_tile_ranges(
    tile_key: wp.array(dtype=wp.int32), count: int, start: wp.array(dtype=wp.int32), end: wp.array(dtype=wp.int32)
):
    """Mark each tile's slice [start, end) of the entries sorted by tile."""
    k = wp.tid()
    t = tile_key[k]
    if k == 0:
        start[t] = k
    elif tile_key[k - 1] != t:
        start[t] = k
    if k == count - 1:
        end[t] = k + 1
    elif tile_key[k + 1] != t:
        end[t] = k + 1


@wp.kernel
def floor_depth(
    view: View,
    eye: wp.vec3,
    point: wp.vec3,
    normal: wp.vec3,
    axis_a: wp.vec3,
    axis_b: wp.vec3,
    half_extent: float,
    cell: float,
    grey_a: float,
    grey_b: float,
    surface_depth: wp.array(dtype=float),
    surface_color: wp.array(dtype=wp.vec3),
):
    """Depth (camera z) and checkerboard colour of the floor square along each pixel's ray; +inf where it misses."""
    pix = wp.tid()
    u = float(pix % view.width)
    v = float(pix // view.width)
    ray = wp.transpose(view.rotation) * wp.vec3((u - view.cx) / view.fx, (v - view.cy) / view.fy, 1.0)
    surface_depth[pix] = wp.inf
    denom = wp.dot(normal, ray)
    if wp.abs(denom) < 1e-12:
        return
    s = wp.dot(normal, point - eye) / denom  # the ray's camera z is 1, so s is the hit's depth
    if s <= 0.0:
        return
    q = eye + s * ray - point
    a = wp.dot(q, axis_a)
    b = wp.dot(q, axis_b)
    if wp.abs(a) > half_extent or wp.abs(b) > half_extent:
        return
    surface_depth[pix] = s
    parity = (int(wp.floor(a / cell)) + int(wp.floor(b / cell))) % 2
    g = grey_a
    if parity != 0:
        g = grey_b
    surface_color[pix] = wp.vec3(g, g, g)


@wp.kernel
def blend_tile_pixels(
    view: View,
    start: wp.array(dtype=wp.int32),
    end: wp.array(dtype=wp.int32),
    rank: wp.array(dtype=wp.int32),
    splats: wp.array(dtype=Splat),
    surface_depth: wp.array(dtype=float),
    transmittance: wp.array(dtype=float),
    accumulated: wp.array(dtype=wp.vec3),
    done: wp.array(dtype=wp.int32),
):
    """Blend the pixel's tile list (depth order) into its colour and transmittance, front to back; the pixel is
    done once a Gaussian lies beyond the floor or the transmittance would drop below MIN_TRANSMITTANCE."""
    pix = wp.tid()
    if done[pix] != 0:
        return
    u = pix % view.width
    v = pix // view.width
    tile = (v // TILE) * view.tiles_x + u // TILE
    p = wp.vec2(float(u), float(v))
    T = transmittance[pix]
    rgb = accumulated[pix]
    floor_z = surface_depth[pix]
    finished = int(0)
    for k in range(start[tile], end[tile]):
        s = splats[rank[k]]
        if s.depth > floor_z:
            finished = 1
            break
        d = s.centre - p
        power = -0.5 * (s.conic[0] * d[0] * d[0] + s.conic[2] * d[1] * d[1]) - s.conic[1] * d[0] * d[1]
        if power > 0.0:
            continue
        alpha = wp.min(MAX_ALPHA, s.opacity * wp.exp(power))
        if alpha < MIN_ALPHA:
            continue
        next_T = T * (1.0 - alpha)
        if next_T < MIN_TRANSMITTANCE:
            finished = 1
            break
        rgb = rgb + s.color * (alpha * T)
        T = next_T
    transmittance[pix] = T
    accumulated[pix] = rgb
    done[pix] = finished


def _as_float_array(name: str, value: np.ndarray, shape: tuple[int | None, ...]) -> np.ndarray:
    """``value`` as a finite float array of ``shape`` (None: any size), or a ValueError saying what is wrong."""
    a = np.asarray(value, dtype=np.float64)
    if a.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, a.shape, strict=True)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"{name} must have shape {want}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {int(np.size(a) - np.isfinite(a).sum())} NaN or inf values")
    return a


def _view(camera: Camera) -> tuple[View, np.ndarray]:
    """The kernels' `View` of ``camera`` and its eye (world)."""
    c2w = np.asarray(camera.cam2world, dtype=np.float64)
    if c2w.shape != (4, 4) or not np.all(np.isfinite(c2w)):
        raise ValueError(f"camera.cam2world must be a finite 4x4 matrix, got shape {c2w.shape}")
    R, eye = c2w[:3, :3], c2w[:3, 3]
    view = View()
    view.rotation = wp.mat33(*R.T.astype(np.float32).ravel())
    view.translation = wp.vec3(*(-R.T @ eye).astype(np.float32))
    view.fx, view.fy, view.cx, view.cy = (float(camera.fx), float(camera.fy), float(camera.cx), float(camera.cy))
    view.width, view.height = int(camera.width), int(camera.height)
    view.tiles_x, view.tiles_y = -(-view.width // TILE), -(-view.height // TILE)
    return view, eye


def _chunks(counts: np.ndarray, budget: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Cut depth-sorted tile counts into consecutive chunks of at most ``budget`` entries (a single Gaussian
    may exceed it alone): their [begin, end) and every Gaussian's entry offset within its chunk."""
    cum = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
    bounds, begin = [], 0
    while begin < len(counts):
        end = max(int(np.searchsorted(cum, cum[begin] + budget, side="right")) - 1, begin + 1)
        bounds.append((begin, end))
        begin = end
    offset = np.empty(len(counts), dtype=np.int32)
    for b, e in bounds:
        offset[b:e] = cum[b:e] - cum[b]
    return bounds, offset


def render_gaussians(
    means: np.ndarray,
    covariances: np.ndarray,
    opacities: np.ndarray,
    colors: np.ndarray,
    camera: Camera,
    background: tuple[float, float, float] | np.ndarray = (1.0, 1.0, 1.0),
    floor: Floor | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """Render Gaussians into ``camera``: an RGB image (camera.height, camera.width, 3) uint8.

    ``means`` (N, 3) and ``covariances`` (N, 3, 3) are world-frame; ``opacities`` (N,) in [0, 1] are already
    activated; ``colors`` (N, 3) are RGB (the SH DC term's colour), clipped to [0, 1]. ``background`` is an RGB
    triple in [0, 1]; ``floor`` an optional checkerboard `Floor` square, depth-tested against the Gaussians.
    ``device`` is a Warp device (``"cpu"``, ``"cuda"``, ``"cuda:N"``). See the module docstring for the method.
    """
    means = _as_float_array("means", means, (None, 3))
    n = len(means)
    covariances = _as_float_array("covariances", covariances, (n, 3, 3))
    opacities = _as_float_array("opacities", opacities, (n,))
    colors = np.clip(_as_float_array("colors", colors, (n, 3)), 0.0, 1.0)
    background = _as_float_array("background", background, (3,))
    if np.any((opacities < 0) | (opacities > 1)):
        raise ValueError("opacities must lie in [0, 1] (activated, e.g. by a sigmoid)")
    if np.any((background < 0) | (background > 1)):
        raise ValueError(f"background must be an RGB triple in [0, 1], got {background.tolist()}")
    if floor is not None and not isinstance(floor, Floor):
        raise ValueError(f"floor must be a Floor or None, got {type(floor).__name__}")
    try:
        wp.get_device(device)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"device {device!r} is not available ({e}); use 'cpu' or an available 'cuda:N'") from e
    view, eye = _view(camera)
    if view.width <= 0 or view.height <= 0:
        raise ValueError(f"camera image size must be positive, got {view.width}x{view.height}")
    pixels, tiles = view.width * view.height, view.tiles_x * view.tiles_y

    with wp.ScopedDevice(device):
        surface_depth = wp.full(pixels, wp.inf, dtype=float)
        surface_color = wp.zeros(pixels, dtype=wp.vec3)
        if floor is not None:
            a, b = floor.axes()
            vec = [wp.vec3(*np.asarray(x, dtype=np.float32)) for x in (eye, floor.point, floor.normal, a, b)]
            wp.launch(floor_depth, dim=pixels, inputs=[view, *vec, floor.half_extent, floor.cell, *FLOOR_GREYS],
                      outputs=[surface_depth, surface_color])
        transmittance = wp.ones(pixels, dtype=float)
        accumulated = wp.zeros(pixels, dtype=wp.vec3)
        if n:
            _blend(view, means, covariances, opacities, colors, surface_depth, transmittance, accumulated, tiles)
        T, rgb = transmittance.numpy()[:, None], accumulated.numpy().astype(np.float64)
        floor_z, floor_rgb = surface_depth.numpy(), surface_color.numpy()
    behind = np.where(np.isfinite(floor_z)[:, None], floor_rgb, background[None, :])
    image = rgb + T * behind
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8).reshape(view.height, view.width, 3)


def _blend(
    view: View, means: np.ndarray, covariances: np.ndarray, opacities: np.ndarray, colors: np.ndarray,
    surface_depth: wp.array, transmittance: wp.array, accumulated: wp.array, tiles: int,
) -> None:
    """Project, sort, bin and blend the Gaussians into the running transmittance and colour (current device)."""
    n, pixels = len(means), view.width * view.height
    g_means = wp.array(means.astype(np.float32), dtype=wp.vec3)
    g_covs = wp.array(covariances.astype(np.float32), dtype=wp.mat33)
    g_opac = wp.array(opacities.astype(np.float32), dtype=float)
    g_cols = wp.array(colors.astype(np.float32), dtype=wp.vec3)
    centre, conic = wp.zeros(n, dtype=wp.vec2), wp.zeros(n, dtype=wp.vec3)
    depth, tile_box = wp.zeros(n, dtype=float), wp.zeros(n, dtype=wp.vec4i)
    tile_count = wp.zeros(n, dtype=wp.int32)
    wp.launch(project_gaussians, dim=n, inputs=[view, g_means, g_covs, g_opac],
              outputs=[centre, conic, depth, tile_box, tile_count])
    # sort by depth (culled ones, at +inf, last); the sort is stable, so ties keep index order
    sort_key = wp.zeros(2 * n, dtype=float)
    wp.copy(sort_key, depth, count=n)
    order = wp.array(np.concatenate([np.arange(n, dtype=np.int32), np.zeros(n, np.int32)]), dtype=wp.int32)
    wp.utils.radix_sort_pairs(sort_key, order, n)
    counts = tile_count.numpy()[order.numpy()[:n]]
    visible = int(np.count_nonzero(counts))  # the culled (no tiles) are exactly those sorted last
    if visible == 0:
        return
    bounds, offsets = _chunks(counts[:visible], max(MAX_TILE_ENTRIES, tiles))
    capacity = max(int(counts[b:e].sum()) for b, e in bounds)
    offset = wp.array(offsets, dtype=wp.int32)
    tile_key = wp.zeros(2 * capacity, dtype=wp.int32)
    rank = wp.zeros(2 * capacity, dtype=wp.int32)
    splats = wp.zeros(visible, dtype=Splat)
    wp.launch(gather_splats, dim=visible, inputs=[order, centre, conic, depth, g_opac, g_cols], outputs=[splats])
    start, end = wp.zeros(tiles, dtype=wp.int32), wp.zeros(tiles, dtype=wp.int32)
    done = wp.zeros(pixels, dtype=wp.int32)
    end_bit = max(1, int(tiles - 1).bit_length())
    for b, e in bounds:
        count = int(counts[b:e].sum())
        wp.launch(emit_tile_entries, dim=e - b, inputs=[view, order, b, offset, tile_box], outputs=[tile_key, rank])
        wp.utils.radix_sort_pairs(tile_key, rank, count, end_bit=end_bit)
        start.zero_()
        end.zero_()
        wp.launch(find_tile_ranges, dim=count, inputs=[tile_key, count], outputs=[start, end])
        wp.launch(blend_tile_pixels, dim=pixels,
                  inputs=[view, start, end, rank, splats, surface_depth], outputs=[transmittance, accumulated, done])
        if done.numpy().all():  # every pixel is opaque or at its floor: farther chunks cannot show
            break


def _up_vector(up: np.ndarray | str) -> np.ndarray:
    """The unit up vector of an axis name (``"+z"``, ``"-y"``, ...) or a 3-vector."""
    if isinstance(up, str):
        key = up.strip().lower()
        key = key if key[:1] in "+-" else "+" + key
        if key not in _AXES:
            raise ValueError(f"up must be one of {sorted(_AXES)} or a 3-vector, got {up!r}")
        return np.array(_AXES[key], dtype=np.float64)
    vec = np.asarray(up, dtype=np.float64)
    if vec.shape != (3,) or not np.all(np.isfinite(vec)) or np.linalg.norm(vec) < 1e-12:
        raise ValueError(f"up must be an axis name or a finite non-zero 3-vector, got {up!r}")
    return vec / np.linalg.norm(vec)


def preview_camera(
    means: np.ndarray,
    up: np.ndarray | str = "+z",
    width: int = 640,
    height: int = 480,
    azimuth_deg: float = 30.0,
    elevation_deg: float = 25.0,
    fovy_deg: float = 40.0,
) -> Camera:
    """A camera framing the robust bounds (1st-99th percentile box) of ``means`` (N, 3), looking at the box's
    centre from ``azimuth_deg`` about ``up`` and ``elevation_deg`` above the plane normal to it.

    ``up`` is an axis name (``"+z"``, ``"-y"``, ...) or a vector. Azimuth 0 looks from the world axis least
    aligned with ``up`` (+x for "+z" and "-y"). The box's bounding sphere fits both fields of view with 10% margin.
    """
    means = _as_float_array("means", means, (None, 3))
    if len(means) == 0:
        raise ValueError("means must hold at least one point to frame")
    if not -90.0 < elevation_deg < 90.0:
        raise ValueError(f"elevation_deg must lie in (-90, 90), got {elevation_deg}")
    if not 0.0 < fovy_deg < 180.0:
        raise ValueError(f"fovy_deg must lie in (0, 180), got {fovy_deg}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    up_vec = _up_vector(up)
    lo, hi = np.percentile(means, [1.0, 99.0], axis=0)
    target = 0.5 * (lo + hi)
    radius = max(0.5 * float(np.linalg.norm(hi - lo)), 1e-3)
    e1 = np.eye(3)[int(np.argmin(np.abs(up_vec)))]
    e1 = e1 - up_vec * (e1 @ up_vec)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up_vec, e1)
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    direction = np.cos(el) * (np.cos(az) * e1 + np.sin(az) * e2) + np.sin(el) * up_vec
    half_fov = 0.5 * min(np.radians(fovy_deg), 2.0 * np.arctan(np.tan(np.radians(fovy_deg) / 2.0) * width / height))
    distance = 1.1 * radius / np.sin(half_fov)
    return pinhole("preview", look_at(target + distance * direction, target, up_vec), width, height, fovy_deg)
