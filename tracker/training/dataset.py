"""Training samples: labelled images -> S x S crops made exactly as at run time, with augmentation.

A labelled set (:class:`LabelledSet`, the npz format of ``tracker.training.data``) holds per image: its path,
L landmarks in the image's pixels, per-landmark weights in [0, 1] (0 = unknown) and the three ROI points
[subject's right eye, left eye, mouth] for :func:`tracker.roi.roi_from_points`.

Images are decoded once into a uint8 cache (:class:`ImageCache`, a memory-mapped file in the cache dir):
each image is cut to the region its crops can reach and shrunk so that it holds no more than
``CACHE_PX_PER_CROP_PX`` image pixels per crop pixel, so the data loader only warps small arrays.
Crops then come from :func:`tracker.roi.warp_to_crop` with :func:`tracker.roi.roi_from_points` on the
(jittered) ROI points, the same two functions the tracker runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker.roi import crop_to_normalized, roi_from_points, warp_to_crop
from tracker.training.augment import AugmentConfig, augment_crop, jitter_roi_points, mirror_sample

log = logging.getLogger(__name__)

#: Image pixels per crop pixel kept in the cache at crop zoom 1 (zoom-in augmentation needs some headroom); a model
#: trained at crop zoom Z gets 1.6 / Z.
CACHE_PX_PER_CROP_PX = 1.6
#: The cached region: the crop's bounding box in the image, grown by this factor about its centre.
CACHE_REGION_GROW = 1.6
_NPZ_KEYS = ("images", "landmarks_px", "weights", "roi_points")


@dataclass(frozen=True, eq=False)
class LabelledSet:
    """M labelled images. images: (M,) str; landmarks_px: (M, L, 2) float32; weights: (M, L) float32;
    roi_points: (M, 3, 2) float32; source: (M,) str."""

    images: np.ndarray
    landmarks_px: np.ndarray
    weights: np.ndarray
    roi_points: np.ndarray
    source: np.ndarray

    def __post_init__(self) -> None:
        m = len(self.images)
        if self.landmarks_px.ndim != 3 or self.landmarks_px.shape[0] != m or self.landmarks_px.shape[2] != 2:
            raise ValueError(f"landmarks_px must be ({m}, L, 2), got {self.landmarks_px.shape}")
        if self.weights.shape != self.landmarks_px.shape[:2]:
            raise ValueError(f"weights must be {self.landmarks_px.shape[:2]}, got {self.weights.shape}")
        if self.roi_points.shape != (m, 3, 2):
            raise ValueError(f"roi_points must be ({m}, 3, 2), got {self.roi_points.shape}")
        if self.source.shape != (m,):
            raise ValueError(f"source must be ({m},), got {self.source.shape}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_landmarks(self) -> int:
        return int(self.landmarks_px.shape[1])

    @classmethod
    def from_npz(cls, path: Path) -> "LabelledSet":
        """Read one npz written by ``tracker.training.data`` (keys images, landmarks_px, weights, roi_points[, source])."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no labelled set at {path}")
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _NPZ_KEYS if k not in z.files]
            if missing:
                raise ValueError(f"{path} lacks keys {missing} (has {z.files})")
            m = len(z["images"])
            source = z["source"].astype(str) if "source" in z.files else np.full(m, path.stem)
            return cls(z["images"].astype(str), z["landmarks_px"].astype(np.float32),
                       np.clip(z["weights"].astype(np.float32), 0.0, 1.0), z["roi_points"].astype(np.float32),
                       source)

    def subset(self, index: np.ndarray) -> "LabelledSet":
        return LabelledSet(self.images[index], self.landmarks_px[index], self.weights[index], self.roi_points[index],
                           self.source[index])

    def valid(self) -> "LabelledSet":
        """Zero the weight of non-finite labels; drop samples with bad ROI points or no labelled landmark."""
        finite = np.isfinite(self.landmarks_px).all(axis=2)
        weights = np.where(finite & np.isfinite(self.weights), self.weights, 0.0).astype(np.float32)
        landmarks = np.where(finite[..., None], self.landmarks_px, 0.0).astype(np.float32)
        eyes = np.linalg.norm(self.roi_points[:, 1] - self.roi_points[:, 0], axis=1)
        ok = np.isfinite(self.roi_points).all(axis=(1, 2)) & (eyes > 2.0) & (weights.sum(1) > 0)
        clean = LabelledSet(self.images, landmarks, weights, self.roi_points, self.source)
        return clean.subset(np.flatnonzero(ok))

    @staticmethod
    def concat(sets: list["LabelledSet"]) -> "LabelledSet":
        if not sets:
            raise ValueError("no labelled sets to join")
        ls = {s.n_landmarks for s in sets}
        if len(ls) != 1:
            raise ValueError(f"labelled sets disagree on the number of landmarks: {sorted(ls)}")
        return LabelledSet(*(np.concatenate([getattr(s, f) for s in sets])
                             for f in ("images", "landmarks_px", "weights", "roi_points", "source")))


def _fingerprint(data: LabelledSet, input_size: int) -> str:
    h = hashlib.sha1()
    h.update(f"v4 {input_size} {CACHE_PX_PER_CROP_PX} {CACHE_REGION_GROW}".encode())
    h.update("\n".join(data.images.tolist()).encode())
    h.update(np.ascontiguousarray(data.roi_points).tobytes())
    return h.hexdigest()[:16]


class ImageCache:
    """Decoded, cut and shrunk RGB images in one uint8 memory-mapped file, with per-image affine maps.

    ``scale[i]`` (2,) and ``offset[i]`` (2,): cache px = image px * scale + offset (pixel-centre convention).
    """

    def __init__(self, blob: np.ndarray, starts: np.ndarray, shapes: np.ndarray, scale: np.ndarray,
                 offset: np.ndarray) -> None:
        self.blob, self.starts, self.shapes, self.scale, self.offset = blob, starts, shapes, scale, offset

    def __len__(self) -> int:
        return len(self.starts)

    def image(self, i: int) -> np.ndarray:
        h, w = self.shapes[i]
        s = int(self.starts[i])
        return self.blob[s:s + h * w * 3].reshape(h, w, 3)

    def to_cache(self, i: int, pts: np.ndarray) -> np.ndarray:
        return pts * self.scale[i] + self.offset[i]

    @classmethod
    def build(cls, data: LabelledSet, input_size: int, folder: Path) -> "ImageCache":
        """Load the cache for ``data`` from ``folder`` or make it (decoding every image once)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        key = _fingerprint(data, input_size)
        blob_path, index_path = folder / f"images_{key}.u8", folder / f"images_{key}.npz"
        if not (blob_path.is_file() and index_path.is_file()):
            cls._make(data, input_size, blob_path, index_path)
        with np.load(index_path) as z:
            starts, shapes, scale, offset = z["starts"], z["shapes"], z["scale"], z["offset"]
        blob = np.memmap(blob_path, dtype=np.uint8, mode="r")
        return cls(blob, starts, shapes, scale, offset)

    @staticmethod
    def _make(data: LabelledSet, input_size: int, blob_path: Path, index_path: Path) -> None:
        t0 = time.time()
        m = len(data)
        starts = np.zeros(m, np.int64)
        shapes = np.zeros((m, 2), np.int64)
        scale = np.ones((m, 2), np.float64)
        offset = np.zeros((m, 2), np.float64)
        tmp = blob_path.with_suffix(".tmp")
        pos = 0
        decoded: dict[str, np.ndarray | None] = {}
        with open(tmp, "wb") as f:
            for i in range(m):
                path = str(data.images[i])
                if path not in decoded:
                    decoded.clear()
                    img = cv2.imread(path, cv2.IMREAD_COLOR)
                    decoded[path] = None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
                img = decoded[path]
                if img is None:
                    log.warning("cannot read %s: it gets a blank cache entry", path)
                    img = np.zeros((8, 8, 3), np.uint8)
                    out = img
                    sc, off = np.full(2, 1e-6), np.zeros(2)
                else:
                    out, sc, off = _cut_and_shrink(img, data.roi_points[i], input_size)
                starts[i], shapes[i], scale[i], offset[i] = pos, out.shape[:2], sc, off
                f.write(np.ascontiguousarray(out).tobytes())
                pos += out.size
                if i % 2000 == 1999:
                    log.info("image cache: %d / %d decoded", i + 1, m)
        tmp.replace(blob_path)
        np.savez(index_path, starts=starts, shapes=shapes, scale=scale, offset=offset)
        log.info("image cache: %d images, %.0f MB, %.0f s", m, pos / 1e6, time.time() - t0)


def _cut_and_shrink(img: np.ndarray, roi_points: np.ndarray, size: int, px_per_crop_px: float = CACHE_PX_PER_CROP_PX,
                    grow: float = CACHE_REGION_GROW):
    """(H, W, 3) image -> (cut image, scale (2,), offset (2,)) with cache px = image px * scale + offset.

    The cut is the zoom-1 crop's bounding box grown by ``grow``, shrunk to at most ``px_per_crop_px`` image
    pixels per (zoom-1) crop pixel."""
    roi = roi_from_points(roi_points, size)
    corners = roi.crop_to_image(np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5],
                                          [size - 0.5, size - 0.5]]))
    centre = 0.5 * (corners.min(0) + corners.max(0))
    half = 0.5 * (corners.max(0) - corners.min(0)) * grow
    h, w = img.shape[:2]
    x0, y0 = (np.floor(centre - half)).astype(int)
    x1, y1 = (np.ceil(centre + half)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        x0, y0, x1, y1 = 0, 0, w, h
    cut = img[y0:y1, x0:x1]
    k = min(1.0, px_per_crop_px / max(roi.scale_px, 1e-9))
    k = max(k, 4.0 / min(cut.shape[:2]))
    if k < 1.0:  # isotropic (fx = fy), so the ROI of the cached points is the same crop of the same face
        cut = cv2.resize(cut, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        kx = ky = k
    else:
        kx = ky = 1.0
    sc = np.array([kx, ky])
    # pixel centres: c = (p - x0 + 0.5) * k - 0.5
    off = np.array([(0.5 - x0) * kx - 0.5, (0.5 - y0) * ky - 0.5])
    return cut, sc, off


def labelled_sample(data: LabelledSet, cache: ImageCache, i: int, rng: np.random.Generator,
                    augment: AugmentConfig | None, mirror: np.ndarray | None):
    """Sample ``i`` in its cached image: (image, landmarks (L, 2), weights (L,), ROI points (3, 2)), mirrored (with
    the landmark permutation ``mirror``) and its ROI points jittered when ``augment`` says so."""
    img = cache.image(i)
    lm = cache.to_cache(i, data.landmarks_px[i].astype(np.float64))
    pts = cache.to_cache(i, data.roi_points[i].astype(np.float64))
    w = data.weights[i].astype(np.float32)
    if augment is not None and mirror is not None and rng.random() < augment.p_mirror:
        img, lm, w, pts = mirror_sample(img, lm, w, pts, mirror)
    if augment is not None:
        pts = jitter_roi_points(pts, rng, augment)
    return img, lm, w, pts


@dataclass(frozen=True)
class Sample:
    """crop: (S, S, 3) uint8 RGB; target: (L, 2) float32 normalised crop coords; weights: (L,) float32."""

    crop: np.ndarray
    target: np.ndarray
    weights: np.ndarray


class CropDataset:
    """Indexable crops of a labelled set. ``augment=None`` gives the plain run-time crop from the labelled ROI."""

    def __init__(self, data: LabelledSet, cache: ImageCache, input_size: int, mirror: np.ndarray | None,
                 augment: AugmentConfig | None = None, seed: int = 0, zoom: float = 1.0) -> None:
        if len(cache) != len(data):
            raise ValueError(f"cache has {len(cache)} images for {len(data)} samples")
        if mirror is not None and sorted(np.asarray(mirror).tolist()) != list(range(data.n_landmarks)):
            raise ValueError("mirror must be a permutation of the landmarks")
        self.data, self.cache, self.size = data, cache, int(input_size)
        self.mirror = None if mirror is None else np.asarray(mirror, dtype=np.int64)
        self.augment = augment
        self.zoom = float(zoom)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.data)

    def sample(self, i: int, rng: np.random.Generator | None = None) -> Sample:
        rng = self.rng if rng is None else rng
        aug = self.augment
        img, lm, w, pts = labelled_sample(self.data, self.cache, i, rng, aug, self.mirror)
        roi = roi_from_points(pts, self.size, self.zoom)
        crop = warp_to_crop(np.ascontiguousarray(img), roi)
        target = crop_to_normalized(roi.image_to_crop(lm), self.size).astype(np.float32)
        if aug is not None:
            crop = augment_crop(crop, rng, aug, self._occluder_source)
        return Sample(crop, target, w)

    def _occluder_source(self, rng: np.random.Generator) -> np.ndarray:
        return self.cache.image(int(rng.integers(len(self.cache))))

    def batch_uint8(self, index: np.ndarray, rng: np.random.Generator | None = None):
        """(crops (B, S, S, 3) uint8 RGB, targets (B, L, 2), weights (B, L)) as numpy."""
        samples = [self.sample(int(i), rng) for i in index]
        return (np.stack([s.crop for s in samples]), np.stack([s.target for s in samples]),
                np.stack([s.weights for s in samples]))

    def batch(self, index: np.ndarray, rng: np.random.Generator | None = None):
        """(images (B, 3, S, S) float32 in [0, 1], targets (B, L, 2), weights (B, L)) as numpy."""
        crops, targets, weights = self.batch_uint8(index, rng)
        return crops.transpose(0, 3, 1, 2).astype(np.float32) / 255.0, targets, weights


def mean_target(dataset: CropDataset, n: int = 512, seed: int = 0) -> np.ndarray:
    """(L, 2) weighted mean of the plain crops' normalised labels (0 where a landmark never has a label)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(dataset), size=min(n, len(dataset)), replace=False)
    acc = np.zeros((dataset.data.n_landmarks, 2))
    wsum = np.zeros(dataset.data.n_landmarks)
    for i in idx:
        lm = dataset.cache.to_cache(int(i), dataset.data.landmarks_px[i].astype(np.float64))
        roi = roi_from_points(dataset.cache.to_cache(int(i), dataset.data.roi_points[i].astype(np.float64)),
                              dataset.size, dataset.zoom)
        t = crop_to_normalized(roi.image_to_crop(lm), dataset.size)
        w = dataset.data.weights[i]
        acc += w[:, None] * t
        wsum += w
    return np.where(wsum[:, None] > 0, acc / np.maximum(wsum, 1e-9)[:, None], 0.0)


def load_mirror(landmark_set: str, n_landmarks: int) -> np.ndarray | None:
    """The landmark set's mirror permutation from ``assets/landmarks/<set>.json`` (None when not available);
    ``ibug68`` is the 68 iBUG points themselves."""
    from tracker.paths import ASSETS_DIR

    if landmark_set == "ibug68" and n_landmarks == 68:
        from tracker.training.ibug import IBUG_MIRROR

        return IBUG_MIRROR.copy()

    path = ASSETS_DIR / "landmarks" / f"{landmark_set}.json"
    if not path.is_file():
        return None
    meta = json.loads(path.read_text())
    mirror = meta.get("mirror")
    if mirror is None or len(mirror) != n_landmarks:
        return None
    return np.asarray(mirror, dtype=np.int64)
