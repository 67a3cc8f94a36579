"""Synthetic training images: renders of the head model with exact labels for every landmark.

Each sample (deterministic from its seed):
- identity beta ~ N(0, 1) (all modes); expression: 50% the expression of a real image's fit (plus noise),
  else a few random blendshapes (jaw open, smiles, blinks, ...), weights in [0, 1];
- head pose: yaw ~ N(0, 40 deg) clipped to +-95 (profiles included), pitch ~ N(0, 15), roll ~ N(0, 12);
  gaze: both eyes yaw ~ N(0, 12), pitch ~ N(0, 9) degrees (eye joints);
- camera: horizontal field of view 25-65 deg, the head at a distance giving 35-95 px between the eyes in a
  256 x 256 image, off-centre;
- skin: texture from a real face image projected onto the mesh through that image's pseudo-label fit
  (front-facing, MediaPipe-observed skin); elsewhere its median skin colour; hair caps with a random hairline
  and colour; random iris colour;
- lighting: Lambert with a random direction, ambient and tint, normalised to keep the texture's brightness;
- occluders (45%): random polygons (hand-, object-like) textured from real images or flat colours;
- background: a random patch near the edge of a real image (blurred or not), or procedural colour noise;
- a little blur and noise.
Labels: the landmark set's vertices projected with the perspective camera, weight 1 for every landmark
(hidden ones included: the label is exact). Train samples take textures and backgrounds from train-split
images only; validation samples from held-out ones.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial import cKDTree

from tracker.roi import roi_points_from_ibug68
from tracker.types import FitParams, Intrinsics, MODEL_TO_CAMERA_AXES

log = logging.getLogger(__name__)

IMAGE_SIZE = 256
#: Parts not drawn: ICT's transparent eye overlays and the eyelash shells (they render as thick black rings).
HIDDEN_PARTS = ("EyeOcclusion", "LacrimalFluid", "EyeBlend", "EyeLashes")
CHUNK = 200
HAIR_COLOURS = np.array([(20, 22, 25), (30, 40, 60), (40, 60, 95), (70, 110, 160), (140, 150, 160), (25, 30, 45),
                         (90, 130, 190), (15, 15, 18)], np.float64) / 255.0
IRIS_COLOURS = np.array([(30, 50, 80), (20, 35, 55), (110, 90, 60), (80, 110, 70), (50, 60, 70)], np.float64) / 255.0


@dataclass(frozen=True, eq=False)
class TexturePool:
    """Real images with fits usable as skin textures. paths: (T,) str; identity (T, K); expression (T, E);
    scale (T,); rotation (T, 3, 3); translation (T, 3)."""

    paths: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    scale: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def from_tables(cls, tables, keep) -> "TexturePool":
        """Rows of FitTables where ``keep(path)`` and the face is near-frontal (|yaw| < 25 deg)."""
        rows = []
        for t in tables:
            for i in range(len(t)):
                r = t.rotation[i] @ MODEL_TO_CAMERA_AXES  # model -> camera-like axes
                fwd = r @ np.array([0.0, 0.0, 1.0])  # the face's forward direction in camera axes
                if keep(str(t.images[i])) and fwd[2] < -np.cos(np.radians(25)) and t.rms_px[i] < 4.0:
                    rows.append((t.images[i], t.identity[i], t.expression[i], t.scale[i], t.rotation[i],
                                 t.translation[i]))
        if not rows:
            raise ValueError("no near-frontal fitted images to take skin textures from")
        cols = list(zip(*rows))
        return cls(np.array(cols[0]), *[np.asarray(c) for c in cols[1:]])

    def __len__(self) -> int:
        return len(self.paths)


def _smoothstep(x, a, b):
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _euler_to_axis_angle(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-space rotation (applied after the model->camera axis flip): yaw about y, pitch about x, roll
    about z (radians) -> axis-angle (3,)."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    rvec, _ = cv2.Rodrigues(rz @ rx @ ry)
    return rvec.ravel()


class SyntheticGenerator:
    """Makes samples: ``sample(seed) -> (image (S, S, 3) uint8, landmarks_px (L, 2), roi_points (3, 2))``."""

    def __init__(self, model, landmark_ids: np.ndarray, corr, textures: TexturePool, backgrounds: list[str],
                 size: int = IMAGE_SIZE):
        if not backgrounds:
            raise ValueError("no background images")
        self.model = model
        self.ids = np.asarray(landmark_ids, np.int64)
        self.textures = textures
        self.backgrounds = list(backgrounds)
        self.size = size
        neutral = model.neutral_cm.astype(np.float64)
        parts = model.part_names
        self.part = np.array([parts[p] for p in model.vertex_part])
        dist, _ = cKDTree(corr.points(neutral)).query(neutral)
        skin = np.isin(self.part, ["Face"])
        self.tex_region = _smoothstep(-dist, -2.0, -0.8) * skin  # 1 inside MediaPipe's area, 0 beyond 2 cm
        self.is_eye = np.array([q.startswith(("Sclera", "Iris")) for q in self.part])
        self.k = textures.identity.shape[1]
        self.neutral = neutral
        self.y_model = neutral[:, 1]
        from tracker.face.render import default_vertex_colours, eye_regions

        self._iris, self._pupil = eye_regions(model)
        self._cols = default_vertex_colours(model)

    # ---------------------------------------------------------------------------------------------- parts
    def _params(self, rng: np.random.Generator, intr_size: int) -> tuple[FitParams, Intrinsics]:
        m = self.model
        beta = rng.normal(0.0, 1.0, m.n_identity)
        psi = np.zeros(m.n_expression)
        if rng.random() < 0.5 and len(self.textures):
            psi = self.textures.expression[rng.integers(len(self.textures))].copy()
            psi += rng.normal(0, 0.08, m.n_expression) * (rng.random(m.n_expression) < 0.2)
        else:
            for j in rng.choice(m.n_expression, rng.integers(0, 6), replace=False):
                psi[j] = rng.random()
        names = m.expression_names
        if rng.random() < 0.3:
            psi[names.index("jawOpen")] = rng.uniform(0.2, 1.0)
        if rng.random() < 0.1:
            psi[[names.index("eyeBlink_L"), names.index("eyeBlink_R")]] = rng.uniform(0.6, 1.0)
        psi = np.clip(psi, 0.0, 1.0)
        yaw = float(np.clip(rng.normal(0, np.radians(40)), -np.radians(95), np.radians(95)))
        pitch = float(rng.normal(0, np.radians(15)))
        roll = float(rng.normal(0, np.radians(12)))
        joints = np.zeros((4, 3))
        gy, gp = rng.normal(0, np.radians(12)), rng.normal(0, np.radians(9))
        for e in (2, 3):
            joints[e] = [gp + rng.normal(0, 0.02), gy + rng.normal(0, 0.02), 0.0]
        hfov = rng.uniform(25, 65)
        intr = Intrinsics.from_fov(intr_size, intr_size, hfov)
        iod_px = rng.uniform(35, 95) * intr_size / 256
        # ~62 mm between the eye centres, which lie ~85 mm in front of the model origin.
        z = intr.focal_px * 62.0 / iod_px + 85.0
        off = rng.normal(0, 0.08, 2) * intr_size
        x = off[0] * z / intr.focal_px
        y = (off[1] + 0.05 * intr_size) * z / intr.focal_px
        params = FitParams(beta, psi, _euler_to_axis_angle(yaw, pitch, roll), np.array([x, y, z]), joints,
                           intr.focal_px)
        return params, intr

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        s = self.size
        if rng.random() < 0.25:
            small = rng.uniform(0, 255, (rng.integers(2, 8), rng.integers(2, 8), 3)).astype(np.float32)
            bg = cv2.resize(small, (s, s), interpolation=cv2.INTER_CUBIC)
            noise = cv2.GaussianBlur(rng.normal(0, 25, (s, s, 3)).astype(np.float32), (0, 0), rng.uniform(1, 6))
            return np.clip(bg + noise, 0, 255).astype(np.uint8)
        img = cv2.imread(self.backgrounds[rng.integers(len(self.backgrounds))], cv2.IMREAD_COLOR)
        if img is None:
            return np.full((s, s, 3), 128, np.uint8)
        h, w = img.shape[:2]
        # A patch of 25-50% of the image's side near an edge: the (centred) face of a crop is mostly avoided.
        ps = max(int(min(h, w) * rng.uniform(0.25, 0.5)), 1)
        edge = int(rng.integers(4))
        lo_y, lo_x = rng.integers(0, h - ps + 1), rng.integers(0, w - ps + 1)
        y0 = 0 if edge == 0 else h - ps if edge == 1 else lo_y
        x0 = 0 if edge == 2 else w - ps if edge == 3 else lo_x
        bg = cv2.resize(img[y0:y0 + ps, x0:x0 + ps], (s, s), interpolation=cv2.INTER_LINEAR)
        if rng.random() < 0.5:
            bg = cv2.flip(bg, int(rng.integers(-1, 2)))
        if rng.random() < 0.5:
            bg = cv2.GaussianBlur(bg, (0, 0), rng.uniform(1, 4))
        return bg

    def _appearance(self, rng: np.random.Generator):
        """Texture image, per-vertex texture uv and weight, and per-vertex fallback colours."""
        t = self.textures
        i = int(rng.integers(len(t)))
        tex = cv2.imread(str(t.paths[i]), cv2.IMREAD_COLOR)
        m = self.model
        rest = self.neutral + (t.identity[i] @ m.identity_basis_cm[:self.k].reshape(self.k, -1)
                               + t.expression[i] @ m.expression_basis_cm.reshape(m.n_expression, -1)).reshape(-1, 3)
        a = t.scale[i] * t.rotation[i] @ MODEL_TO_CAMERA_AXES
        uv = rest @ a[:2].T + t.translation[i][:2]
        from tracker.face.render import vertex_normals

        n = vertex_normals(rest, m.faces) @ (t.rotation[i] @ MODEL_TO_CAMERA_AXES).T
        facing = _smoothstep(-n[:, 2], 0.15, 0.5)
        weight = facing * self.tex_region
        if tex is None:
            tex = np.full((8, 8, 3), 150, np.uint8)
            weight = weight * 0
        # Median skin colour from well-observed cheek/forehead vertices.
        good = np.flatnonzero(weight > 0.9)
        if good.size:
            pick = good[rng.integers(0, good.size, min(400, good.size))]
            xy = np.clip(np.rint(uv[pick]).astype(int), 0, [tex.shape[1] - 1, tex.shape[0] - 1])
            skin = np.median(tex[xy[:, 1], xy[:, 0]].astype(np.float64), 0) / 255.0
        else:
            skin = np.array([0.55, 0.65, 0.85])
        iris = IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))] * rng.uniform(0.7, 1.3)
        cols = default_vertex_colours(m, np.clip(iris, 0, 1)) if self._cols is None else self._cols.copy()
        if self._cols is not None:
            cols[self._iris & ~self._pupil] = np.clip(iris, 0, 1)
        cols[np.isin(self.part, ["Face", "BackHead"])] = skin
        hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * rng.uniform(0.7, 1.3)
        cols[self.part == "BackHead"] = hair if rng.random() < 0.85 else skin
        cols[np.isin(self.part, ["ScleraLeft", "ScleraRight"])] *= rng.uniform(0.8, 1.05)
        return tex, uv, weight, np.clip(cols, 0, 1), hair

    def _hair(self, rng, image, result, hair_colour):
        """Paint a hair cap over scalp pixels above a random hairline (model-space height, cm)."""
        tri = result.raster.triangle
        mask = tri >= 0
        if not mask.any() or rng.random() < 0.1:
            return
        fids = result.faces[tri[mask]]
        bary = result.raster.barycentric[mask]
        ym = (self.y_model[fids] * bary).sum(1)
        zm = (self.neutral[fids, 2] * bary).sum(1)
        hairline = rng.uniform(6.0, 9.5)  # cm above the model origin (brows ~ 6)
        # front: above the hairline; back and sides: above the ears' top (lower when long hair)
        back_line = rng.uniform(-4.0, 4.0)
        hair_px = ((ym > hairline) & (zm > 2.0)) | ((ym > back_line) & (zm <= 2.0))
        hm = np.zeros(mask.shape, np.float32)
        hm[mask] = hair_px
        hm = cv2.GaussianBlur(hm, (0, 0), 1.2)
        s = image.shape[0]
        strands = cv2.GaussianBlur(rng.normal(0, 1, (s, s)).astype(np.float32), (0, 0), 0.8)
        strands = cv2.blur(strands, (1, int(rng.integers(3, 9))))
        colour = np.clip(hair_colour[None, None] * (1 + 0.25 * strands[..., None]), 0, 1) * 255
        a = hm[..., None]
        image[:] = np.clip(image * (1 - a) + colour * a, 0, 255).astype(np.uint8)

    def _occluder(self, rng, image, pts):
        s = image.shape[0]
        centre = pts[rng.integers(len(pts))] + rng.normal(0, 5, 2)
        face_size = max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]), 10.0)
        radius = face_size * rng.uniform(0.12, 0.45)
        k = int(rng.integers(5, 12))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        stretch = np.array([1.0, rng.uniform(0.3, 1.0)])
        rot = rng.uniform(0, np.pi)
        r = radius * rng.uniform(0.5, 1.0, k)
        poly = np.stack([np.cos(ang), np.sin(ang)], 1) * r[:, None] * stretch
        c, sn = np.cos(rot), np.sin(rot)
        poly = poly @ np.array([[c, -sn], [sn, c]]).T + centre
        mask = np.zeros((s, s), np.uint8)
        cv2.fillPoly(mask, [np.rint(poly * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
        if rng.random() < 0.6:
            fill = self._background(rng)
        else:
            fill = np.empty((s, s, 3), np.uint8)
            fill[:] = rng.integers(0, 256, 3)
            fill = np.clip(fill.astype(np.float32) + rng.normal(0, 8, (s, s, 1)), 0, 255).astype(np.uint8)
        a = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.7)[..., None]
        # a soft shadow and shading across the occluder
        image[:] = np.clip(image * (1 - a) + fill * a * rng.uniform(0.6, 1.1), 0, 255).astype(np.uint8)

    # ---------------------------------------------------------------------------------------------- sample
    def sample(self, seed: int):
        from tracker.face.forward import posed_vertices, project
        from tracker.face.render import render_head

        rng = np.random.default_rng(seed)
        m = self.model
        params, intr = self._params(rng, self.size)
        verts = posed_vertices(m, params)
        px = project(verts, intr)
        tex, uv, tw, cols, hair = self._appearance(rng)
        light = np.array([rng.uniform(-1, 1), rng.uniform(-1, 0.6), rng.uniform(0.3, 1.5)])
        # The textures are lit photographs already: shading is normalised so that a surface at ~50 degrees
        # to the light keeps its texture's brightness (shade = 1), brighter facing it, darker turned away.
        ambient, diffuse = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.9)
        norm = ambient + 0.65 * diffuse
        result = render_head(m, params, intr, hidden_parts=HIDDEN_PARTS, background=self._background(rng),
                             vertex_colours=cols, texture=tex, texture_uv=uv, texture_weight=tw, light_dir=-light,
                             ambient=ambient / norm, diffuse=diffuse / norm, vertices_mm=verts)
        image = result.image.copy()
        self._hair(rng, image, result, hair)
        tint = rng.uniform(0.85, 1.15, 3)
        image = np.clip(image * tint, 0, 255).astype(np.uint8)
        lm = px[self.ids]
        if rng.random() < 0.45:
            for _ in range(int(rng.integers(1, 3))):
                self._occluder(rng, image, lm)
        if rng.random() < 0.5:
            image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.0))
        if rng.random() < 0.5:
            image = np.clip(image + rng.normal(0, rng.uniform(1, 6), image.shape), 0, 255).astype(np.uint8)
        roi = roi_points_from_ibug68(px[m.ibug68_vertex_ids])
        return image, lm.astype(np.float32), roi.astype(np.float32)


def _write_split(gen: SyntheticGenerator, count: int, folder: Path, seed0: int, source: str,
                 partial: Path | None = None) -> dict:
    """Render ``count`` samples into ``folder`` in chunks (resumable); with ``partial``, the dataset so far is
    rewritten there after every chunk, so training can start before the end."""
    from tracker.training.data import schema

    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for c0 in range(0, count, CHUNK):
        n = min(CHUNK, count - c0)
        label_file = folder / f"labels_{c0 // CHUNK:04d}_{n}.npz"
        if label_file.is_file():
            z = np.load(label_file)
            parts.append({k: z[k] for k in z.files})
            continue
        t0 = time.perf_counter()
        imgs, lms, rois = [], [], []
        for i in range(c0, c0 + n):
            image, lm, roi = gen.sample(seed0 + i)
            path = folder / f"{i:06d}.png"
            cv2.imwrite(str(path), image)
            imgs.append(str(path.resolve()))
            lms.append(lm)
            rois.append(roi)
        d = {"images": np.array(imgs), "landmarks_px": np.stack(lms), "weights": np.ones((n, len(gen.ids)), np.float32),
             "roi_points": np.stack(rois), "source": np.full(n, source)}
        tmp = label_file.with_name(label_file.stem + ".tmp.npz")
        np.savez(tmp, **d)
        tmp.replace(label_file)
        parts.append(d)
        if partial is not None:
            schema.write_dataset(partial, schema.concat(parts))
        log.info("%s: %d/%d rendered, %.0f ms per sample", folder.name, c0 + n, count,
                 1000 * (time.perf_counter() - t0) / n)
    return schema.concat(parts)


def build_synthetic(opts) -> dict[str, Path]:
    """Render ``synthetic_train`` and ``synthetic_val`` (needs the real fits for textures: run after real)."""
    from tracker.face.build import load_head_model
    from tracker.splits import is_held_out_300w, is_held_out_video
    from tracker.training.data import schema
    from tracker.training.data.build import load_landmark_vertex_ids
    from tracker.training.data.correspondence import load_correspondence
    from tracker.training.data.pseudo_labels import FitTable

    from tracker.training.data.build import fits_dir

    fit_files = sorted(fits_dir(opts.out).glob("*.npz"))
    if not fit_files:
        raise ValueError(f"no fits in {fits_dir(opts.out)}: build the real data first (--only real)")
    tables = [FitTable.load(f) for f in fit_files]
    model = load_head_model()
    ids = load_landmark_vertex_ids(model)
    corr = load_correspondence()

    def held_out(path: str) -> bool:
        p = Path(path)
        if "300w-train" in p.parts:
            return is_held_out_300w(p.name)
        if p.parent.parent.name == "frames":  # <out>/frames/<video stem>/<index>.jpg
            return is_held_out_video(p.parent.name + ".mp4")
        return False

    written = {}
    for split, count, seed0 in (("val", opts.synthetic_val, 1_000_000 * (opts.seed + 1) + 900_000),
                                ("train", opts.synthetic_train, 1_000_000 * (opts.seed + 1))):
        if count <= 0:
            continue
        keep = (lambda p: held_out(p)) if split == "val" else (lambda p: not held_out(p))
        pool = TexturePool.from_tables(tables, keep)
        # Backgrounds: not the tight UTKFace crops (all face).
        bgs = [str(p) for t in tables for p, src in zip(t.images, t.source) if keep(str(p)) and src != "utkface"]
        gen = SyntheticGenerator(model, ids, corr, pool, bgs)
        log.info("synthetic %s: %d samples, %d texture sources, %d backgrounds", split, count, len(pool), len(bgs))
        target = opts.out / f"synthetic_{split}.npz"
        d = _write_split(gen, count, opts.out / "synthetic" / split, seed0, "synthetic", partial=target)
        written[f"synthetic_{split}"] = schema.write_dataset(target, d)
    return written
