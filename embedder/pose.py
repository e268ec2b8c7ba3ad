"""Where a crop or a partial copy lies in its source: a pose from matched keypoints, checked on pixels (issue 13).

`embedder.verify.align_pair` searches placements of one whole panel inside the other on a
grid of scales and angles; it stops at about half a side and at the D4 views, so a panel
keeping a quarter to half of its source, turned, or two panels sharing only a strip of one
field are found at the wrong place or not at all, and their fused score stays low.
Keypoints give the placement directly: ORB keypoints of both panels (and of b's mirror
image) are matched (mutual nearest descriptors passing a ratio test), a similarity transform
(scale, rotation, shift) is fitted to the matches by RANSAC, b is warped onto a by it, and
the grey levels and their fine detail are correlated over the region the two panels share.

A pose counts as a partial copy (`PoseRule.accepts`) when many matches agree on it, the shared
region is only part of at least one panel (a whole-panel match is `align_pair`'s), and both
the region's grey levels and its detail correlate closely: consecutive frames of a movie or
neighbouring sections share many keypoints too, but at the whole-panel pose, and a crop of one
frame put on the next frame matches its detail far less than its source (`docs/pixel-check.md`).
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image
from scipy import ndimage

from embedder.d4 import IDENTITY, transform_name

DESCRIPTOR_BYTES = 32  # ORB: 256 binary tests
Box = tuple[float, float, float, float]  # x0 y0 x1 y1 as fractions of a panel's width and height


@dataclass(frozen=True)
class Overlap:
    """The region two panels a and b share, as the report shows it: a crop of one in the other, or a partial copy.

    `correlation` is the NCC over the region, `transform` the D4 view mapping b onto a,
    `share_a` / `share_b` the region's area as a share of each panel's, `box_a` / `box_b`
    the region in each panel (fractions of its width and height, top-left origin, b in its
    own orientation).
    """

    correlation: float
    share_a: float = 0.0
    share_b: float = 0.0
    transform: str = IDENTITY
    box_a: Box = (0.0, 0.0, 0.0, 0.0)
    box_b: Box = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class PoseOptions:
    """How keypoints are found and matched and a pose fitted and checked (defaults tuned on a corpus of their own)."""

    side: int = 256           # panels are compared as grey images of this geometric-mean side
    n_keypoints: int = 800    # ORB keypoints kept per panel (and per mirror image)
    fast_threshold: int = 10  # FAST corner threshold, grey levels of 255
    patch: int = 31           # ORB patch side (pixels)
    max_distance: int = 80    # Hamming distance (of 256 bits) at which two descriptors may match
    max_ratio: float = 0.85   # ... and only when clearly nearer than the second-nearest
    residual: float = 2.5     # pixels (at the grey images' side) within which a match agrees with a pose
    trials: int = 300         # RANSAC hypotheses
    erode: int = 4            # pixels of the shared region's border left out of the correlations
    detail_sigma: float = 2.0  # detail = grey minus its Gaussian blur of this sigma (pixels)


@dataclass(frozen=True)
class PanelKeypoints:
    """ORB keypoints of one grey image: (n, 2) float32 positions (x, y) in pixels and (n, 32) packed descriptors."""

    points: np.ndarray
    descriptors: np.ndarray

    @classmethod
    def empty(cls) -> PanelKeypoints:
        return cls(np.zeros((0, 2), np.float32), np.zeros((0, DESCRIPTOR_BYTES), np.uint8))

    def __len__(self) -> int:
        return len(self.descriptors)


def orb_keypoints(grey: np.ndarray, n_keypoints: int = 400, fast_threshold: int = 10, patch: int = 31) -> PanelKeypoints:
    """OpenCV ORB keypoints of a grey (H, W) uint8 image; none when it is tiny, flat or has too few corners."""
    import cv2  # imported here: only the stages that match keypoints pay for it

    image = np.ascontiguousarray(grey, dtype=np.uint8)
    if image.ndim != 2 or min(image.shape) < 2 * patch or int(image.max()) == int(image.min()):
        return PanelKeypoints.empty()
    orb = cv2.ORB.create(nfeatures=n_keypoints, scaleFactor=1.2, nlevels=8, edgeThreshold=patch, patchSize=patch,
                         fastThreshold=fast_threshold)
    found, descriptors = orb.detectAndCompute(image, None)
    if descriptors is None or not len(found):
        return PanelKeypoints.empty()
    points = _full_image_positions(np.array([k.pt for k in found], dtype=np.float64),
                                   np.array([k.octave & 0xFF for k in found]), image.shape, 1.2)
    return PanelKeypoints(points, np.ascontiguousarray(descriptors, dtype=np.uint8))


def _full_image_positions(points: np.ndarray, levels: np.ndarray, shape: tuple[int, ...], factor: float) -> np.ndarray:
    """(n, 2) float32 (x, y) pixel-centre positions in the full image of ORB keypoints found on pyramid `levels`.

    OpenCV reports a keypoint of pyramid level k at (its level position) × factor^k; a level
    pixel's centre, however, lies at (position + 0.5) × (full size / level size) - 0.5, and level
    sizes are rounded. The difference (up to a pixel or two) does not cancel when one panel is a
    turned or mirrored copy of the other, and spoils the pose's correlations.
    """
    h, w = float(shape[0]), float(shape[1])
    level_size = np.array([[round(w / factor ** k), round(h / factor ** k)] for k in range(int(levels.max(initial=0)) + 1)])
    ratio = np.array([w, h]) / level_size[levels]
    level_position = points / (factor ** levels)[:, None]
    return ((level_position + 0.5) * ratio - 0.5).astype(np.float32)


@dataclass(frozen=True)
class PanelPose:
    """What the pose check needs of one panel: its grey image and the keypoints of it and of its mirror image."""

    grey: np.ndarray
    own: PanelKeypoints
    mirror: PanelKeypoints


def panel_pose(grey: np.ndarray, options: PoseOptions = PoseOptions()) -> PanelPose:
    """The keypoints of a grey uint8 image (at `options.side`) and of its left-right mirror image."""
    find = {"n_keypoints": options.n_keypoints, "fast_threshold": options.fast_threshold, "patch": options.patch}
    return PanelPose(grey, orb_keypoints(grey, **find), orb_keypoints(np.ascontiguousarray(grey[:, ::-1]), **find))


def encoded_panel_pose(data: bytes, options: PoseOptions = PoseOptions()) -> PanelPose:
    """`panel_pose` of an encoded panel image (a stored PNG) at `options.side`; OSError or ValueError when unreadable."""
    from embedder.verify import grey_image

    with Image.open(io.BytesIO(data)) as image:
        return panel_pose(grey_image(image, options.side), options)


# The grey image the pose check compares a panel as, stored with the panel when it is embedded
# (the store's `pose_grey` column): a scan then reads ~30 kB a panel instead of its full-size PNG
# (~140-340 kB) and skips decoding it (14 ms a real panel, twice the keypoints' 7 ms).
_GREY_HEADER = struct.Struct("<4sH")  # magic, side; then the grey image as a PNG
_GREY_MAGIC = b"RSG1"


def pose_grey_bytes(image: Image.Image, side: int = PoseOptions.side) -> bytes:
    """The grey image `encoded_panel_pose` would take of `image` at `side`, PNG-encoded with its side."""
    from embedder.verify import grey_image  # imports torch, which the pose check itself does not need

    buf = io.BytesIO()
    Image.fromarray(grey_image(image, side), "L").save(buf, format="PNG", compress_level=1)
    return _GREY_HEADER.pack(_GREY_MAGIC, side) + buf.getvalue()


def pose_grey_side(data: bytes | memoryview | None) -> int | None:
    """The side of a stored pose grey image (`pose_grey_bytes`); None when `data` is not one."""
    if data is None or len(data) < _GREY_HEADER.size:
        return None
    magic, side = _GREY_HEADER.unpack_from(data)
    return int(side) if magic == _GREY_MAGIC else None


def stored_panel_pose(data: bytes | memoryview, options: PoseOptions = PoseOptions()) -> PanelPose:
    """`panel_pose` of a stored pose grey image (`pose_grey_bytes` at `options.side`): the same as
    `encoded_panel_pose` of the panel's PNG. ValueError for another side, OSError for damaged bytes."""
    if pose_grey_side(data) != options.side:
        raise ValueError(f"not a pose grey image of side {options.side}")
    with Image.open(io.BytesIO(bytes(data[_GREY_HEADER.size:]))) as image:
        if image.mode != "L":
            raise ValueError(f"pose grey image of mode {image.mode}")
        return panel_pose(np.asarray(image, dtype=np.uint8), options)


def hamming_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) int32 Hamming distances between two sets of packed binary descriptors."""
    import faiss  # imported here: only keypoint scans pay for it

    a, b = np.ascontiguousarray(a, dtype=np.uint8), np.ascontiguousarray(b, dtype=np.uint8)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:  # faiss would read past the end of `b`
        raise ValueError(f"descriptors of {a.shape} and {b.shape}: two (n, bytes) arrays of one width expected")
    out = np.empty((len(a), len(b)), np.int32)
    # the SWIG wrapper of faiss' C++ `hammings`, which faiss' type hints do not list
    faiss.hammings(faiss.swig_ptr(a), faiss.swig_ptr(b), len(a), len(b), a.shape[1],  # type: ignore[attr-defined]
                   faiss.swig_ptr(out))
    return out


def mutual_matches(a: np.ndarray, b: np.ndarray, max_distance: int, max_ratio: float) -> np.ndarray:
    """(k, 2) index pairs (i in a, j in b): mutual nearest descriptors, within `max_distance`, passing the ratio test.

    Among equally near descriptors the first counts as the nearest (as a k-NN search would give it).
    One distance matrix serves both directions: 4x faster than two binary k-NN searches.
    """
    if len(a) < 2 or len(b) < 2:
        return np.zeros((0, 2), np.int64)
    d = hamming_distances(a, b)
    rows = np.arange(len(a))
    nearest = d.argmin(axis=1)  # argmin takes the first of equals
    first = d[rows, nearest]
    d[rows, nearest] = np.iinfo(np.int32).max  # the second nearest: the row's least without the nearest
    second = d.min(axis=1)                     # (6x faster than `np.partition(d, 1)` at 400 x 400)
    d[rows, nearest] = first
    mutual = d.argmin(axis=0)[nearest] == rows
    ok = mutual & (first <= max_distance) & (first < max_ratio * np.maximum(second, 1))
    return np.stack([np.flatnonzero(ok), nearest[ok]], axis=1).astype(np.int64)


def _fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[complex, complex]:
    """Least-squares similarity dst ≈ m·src + t, points as complex numbers (m = scale·e^{iθ})."""
    sc, dc = src - src.mean(), dst - dst.mean()
    denom = float(np.sum(np.abs(sc) ** 2))
    m = complex(np.sum(np.conj(sc) * dc) / denom) if denom > 0 else 1.0 + 0j
    return m, complex(dst.mean() - m * src.mean())


def ransac_similarity(src: np.ndarray, dst: np.ndarray, residual: float, trials: int,
                      seed: int = 0) -> tuple[complex, complex, np.ndarray]:
    """(m, t, inlier mask) of the similarity dst ≈ m·src + t that most matched points (complex) agree on."""
    n = len(src)
    none = (1.0 + 0j, 0j, np.zeros(n, dtype=bool))
    if n < 3:
        return none
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, trials)
    j = (i + rng.integers(1, n, trials)) % n  # a different second point
    ds = src[j] - src[i]
    ok = np.abs(ds) > 1e-6
    m = np.where(ok, (dst[j] - dst[i]) / np.where(ok, ds, 1), 0)
    t = dst[i] - m * src[i]
    err = np.abs(m[:, None] * src[None, :] + t[:, None] - dst[None, :])  # (trials, n)
    counts = np.where(ok, (err <= residual).sum(axis=1), 0)
    best = int(counts.argmax())
    inliers = err[best] <= residual
    if inliers.sum() < 3:
        return none
    m_best, t_best = complex(m[best]), complex(t[best])
    for _ in range(2):  # refit on the inliers, keep it while it gathers at least as many
        m_fit, t_fit = _fit_similarity(src[inliers], dst[inliers])
        refit = np.abs(m_fit * src + t_fit - dst) <= residual
        if refit.sum() < inliers.sum():
            break
        m_best, t_best, inliers = m_fit, t_fit, refit
    return m_best, t_best, inliers


@dataclass(frozen=True)
class Pose:
    """The similarity transform most keypoint matches of panels a and b agree on, and how well it holds.

    `scale` is the size of b's content on a over its size on b, `angle` the degrees b is
    turned (clockwise as displayed) onto a, after a left-right mirror when `mirrored`;
    `share_a` / `share_b` the share of each panel's area in the region they share,
    `box_a` / `box_b` that region (fractions of width and height, top-left origin, b in its
    own orientation); `correlation` / `detail` the NCC of grey levels / of fine detail over it.
    """

    inliers: int
    matches: int = 0
    scale: float = 1.0
    angle: float = 0.0
    mirrored: bool = False
    share_a: float = 0.0
    share_b: float = 0.0
    correlation: float = 0.0
    detail: float = 0.0
    box_a: Box = (0.0, 0.0, 0.0, 0.0)
    box_b: Box = (0.0, 0.0, 0.0, 0.0)

    @property
    def part(self) -> float:
        """The smaller of the two shares: under 1 when one panel is only partly in the other."""
        return min(self.share_a, self.share_b)

    @property
    def transform(self) -> str:
        """The D4 transform nearest to the pose (maps b onto a, as the report's `transform`)."""
        quarter_turns_ccw = round(-self.angle / 90.0)
        return transform_name(quarter_turns_ccw, self.mirrored)

    def as_overlap(self) -> Overlap:
        """The pose as the report's shared-region record (`embedder.verify.Overlap`)."""
        return Overlap(self.correlation, self.share_a, self.share_b, self.transform, self.box_a, self.box_b)


# Many pairs' `Pose`s as one structured array, a row each: what the pose check of a scan returns.
# As objects they held ~550 bytes a pair in the driver, as rows 121 (`benchmarks/bench_pair_results.py`).
POSE_DTYPE = np.dtype([("inliers", "i4"), ("matches", "i4"), ("scale", "f8"), ("angle", "f8"), ("mirrored", "?"),
                       ("share_a", "f8"), ("share_b", "f8"), ("correlation", "f8"), ("detail", "f8"),
                       ("box_a", "f8", (4,)), ("box_b", "f8", (4,))])


def pack_poses(poses: list[Pose]) -> np.ndarray:
    """`poses` as rows of `POSE_DTYPE`."""
    return np.array([(p.inliers, p.matches, p.scale, p.angle, p.mirrored, p.share_a, p.share_b, p.correlation,
                      p.detail, p.box_a, p.box_b) for p in poses], dtype=POSE_DTYPE)


def unpack_pose(row: np.void) -> Pose:
    """The `Pose` of one row of `POSE_DTYPE`."""
    def box(values: np.ndarray) -> Box:
        x0, y0, x1, y1 = (float(v) for v in values)
        return (x0, y0, x1, y1)

    return Pose(int(row["inliers"]), int(row["matches"]), float(row["scale"]), float(row["angle"]),
                bool(row["mirrored"]), float(row["share_a"]), float(row["share_b"]), float(row["correlation"]),
                float(row["detail"]), box(row["box_a"]), box(row["box_b"]))


def unpack_poses(rows: np.ndarray) -> list[Pose]:
    """The `Pose` of each row of `POSE_DTYPE`."""
    return [unpack_pose(row) for row in rows]


@dataclass(frozen=True)
class PoseRule:
    """When a pose shows a partial copy: many matches agree, it covers part of a panel, pixels and detail match."""

    min_inliers: int = 12
    max_part: float = 0.85
    min_correlation: float = 0.95
    min_detail: float = 0.88

    def accepts(self, pose: Pose) -> bool:
        return (pose.inliers >= self.min_inliers and pose.part <= self.max_part
                and pose.correlation >= self.min_correlation and pose.detail >= self.min_detail)

    def accepts_rows(self, rows: np.ndarray) -> np.ndarray:
        """`accepts` of each row of `POSE_DTYPE`, as a mask."""
        part = np.minimum(rows["share_a"], rows["share_b"])
        return ((rows["inliers"] >= self.min_inliers) & (part <= self.max_part)
                & (rows["correlation"] >= self.min_correlation) & (rows["detail"] >= self.min_detail))


def _complex(points: np.ndarray) -> np.ndarray:
    return points[:, 0].astype(np.float64) + 1j * points[:, 1].astype(np.float64)


def _box(mask: np.ndarray) -> Box:
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return (0.0, 0.0, 0.0, 0.0)
    h, w = mask.shape
    return (float(xs.min()) / w, float(ys.min()) / h, float(xs.max() + 1) / w, float(ys.max() + 1) / h)


def _ncc(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    denom = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    return max(0.0, float(np.dot(x, y)) / denom) if denom > 1e-9 else 0.0


def _detail(grey: np.ndarray, sigma: float) -> np.ndarray:
    return grey - ndimage.gaussian_filter(grey, sigma)


def best_pose_fit(a: PanelKeypoints, b: PanelKeypoints, b_mirror: PanelKeypoints,
                  options: PoseOptions = PoseOptions()) -> tuple[int, int, complex, complex, bool]:
    """(inliers, matches, m, t, mirrored) of the similarity a ≈ m·b + t (b mirrored left-right when `mirrored`)."""
    best: tuple[int, int, complex, complex, bool] = (0, 0, 1.0 + 0j, 0j, False)
    for mirrored, kb in ((False, b), (True, b_mirror)):
        pairs = mutual_matches(a.descriptors, kb.descriptors, options.max_distance, options.max_ratio)
        if len(pairs) < 3:
            best = max(best, (0, len(pairs), 1.0 + 0j, 0j, False), key=lambda x: (x[0], x[1]))
            continue
        m, t, inliers = ransac_similarity(_complex(kb.points[pairs[:, 1]]), _complex(a.points[pairs[:, 0]]),
                                          options.residual, options.trials)
        if int(inliers.sum()) > best[0]:
            best = (int(inliers.sum()), len(pairs), m, t, mirrored)
    return best


def _covered(shape: tuple[int, int], other: tuple[int, int], m: complex, t: complex) -> np.ndarray:
    """Mask of the pixels of an image of `shape` that an image of shape `other`, carried on by z ≈ m·z' + t, covers."""
    (h, w), (ho, wo) = shape, other
    ys, xs = np.mgrid[0:h, 0:w]
    back = ((xs + 1j * ys) - t) / m
    return (back.real >= -0.5) & (back.real <= wo - 0.5) & (back.imag >= -0.5) & (back.imag <= ho - 0.5)


def _affine(m: complex, t: complex) -> np.ndarray:
    """The 2×3 float32 matrix of z ↦ m·z + t on (x, y)."""
    return np.array([[m.real, -m.imag, t.real], [m.imag, m.real, t.imag]], dtype=np.float32)


def _refined(fixed: np.ndarray, moving: np.ndarray, warp: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`warp` (fixed's pixels → moving's) refined to sub-pixel by OpenCV's ECC; unchanged when ECC fails."""
    import cv2

    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 1e-4)
    try:
        _, found = cv2.findTransformECCWithMask(fixed, moving, mask.astype(np.uint8), np.ones(moving.shape, np.uint8),
                                                warp.copy(), cv2.MOTION_AFFINE, criteria, 1)
    except cv2.error:  # no convergence (flat region, a bad start): keep the keypoints' pose
        return warp
    return np.asarray(found, dtype=np.float32)


def verify_pose(a: PanelPose, b: PanelPose, options: PoseOptions = PoseOptions(), rule: PoseRule | None = None) -> Pose:
    """The pose of panel b on panel a from their keypoints (b's mirror image's too), checked on their grey pixels.

    The keypoints' pose is refined on the pixels (ECC), and the correlations are taken on
    the grid of the panel whose shared content has fewer pixels (the crop's source when b
    is the crop), the other warped onto it, blurred first when it is shrunk so that its
    finer detail does not alias. With a `rule`, a pose it would refuse whatever the pixels
    (too few matches agree, or it covers both panels whole) is returned without looking at them
    (correlations 0): most candidate pairs stop there, cheaply.
    """
    import cv2

    inliers, matches, m, t, mirrored = best_pose_fit(a.own, b.own, b.mirror, options)
    if inliers < max(3, rule.min_inliers if rule else 0) or abs(m) < 1e-6:
        return Pose(inliers, matches)
    ga = np.asarray(a.grey, dtype=np.float32) / 255.0
    gb = np.asarray(b.grey, dtype=np.float32) / 255.0
    view_b = np.ascontiguousarray(gb[:, ::-1]) if mirrored else gb
    in_b = _covered(ga.shape, view_b.shape, m, t)  # a's pixels that b covers
    in_a = _covered(view_b.shape, ga.shape, 1.0 / m, -t / m)  # and b's that a covers
    pose = Pose(inliers, matches, float(abs(m)), float(np.degrees(np.angle(m))), mirrored,
                float(in_b.mean()), float(in_a.mean()), box_a=_box(in_b),
                box_b=_box(in_a[:, ::-1] if mirrored else in_a))
    if rule is not None and pose.part > rule.max_part:
        return pose
    # compare on the coarser grid: a's when b's content is larger there (|m| < 1), else b's
    if abs(m) < 1.0:
        fixed, moving, region, warp, shrink = ga, view_b, in_b, _affine(1.0 / m, -t / m), abs(m)
    else:
        fixed, moving, region, warp, shrink = view_b, ga, in_a, _affine(m, t), 1.0 / abs(m)
    region = ndimage.binary_erosion(region, iterations=options.erode)
    if region.sum() < 64:
        return pose
    if shrink < 1.0:
        moving = cv2.GaussianBlur(moving, (0, 0), 0.5 * float(np.sqrt(1.0 / shrink ** 2 - 1.0)))
    warp = _refined(fixed, moving, warp, region)
    size = (fixed.shape[1], fixed.shape[0])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(moving, warp, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.ones_like(moving), warp, size, flags=flags, borderValue=0.0) > 0.999
    region &= inside
    if region.sum() < 64:
        return pose
    correlation = _ncc(fixed[region], warped[region])
    detail = _ncc(_detail(fixed, options.detail_sigma)[region], _detail(warped, options.detail_sigma)[region])
    return replace(pose, correlation=correlation, detail=detail)
