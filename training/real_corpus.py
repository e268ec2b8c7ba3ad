"""Real papers (or real image folders) with planted reuse, and their ground truth.

`make_pdf_corpus(out, pdf_dir, cfg)` copies every PDF of `pdf_dir` to OUT/pdf/ and,
in `cfg.reuse` of them, replaces the stream of one real embedded image (the *target*)
by an altered copy of another real image (the *source*) from another paper (inter)
or the same paper (intra). The page's drawing instructions are untouched, so the
planted copy is drawn exactly where the target was (same bbox). Writes:

    OUT/pdf/**.pdf        the modified copies and the untouched rest (same relative paths)
    OUT/truth.csv         doc_a,page_a,bbox_a,doc_b,page_b,bbox_b,alteration,kind,generator
    OUT/plants.csv        the same rows plus the source's whole bbox, pixel sizes and the alteration
                          chain with its parameters (JSON, replayable with `alterations.replay`)

`make_image_corpus(out, image_dir, cfg)` does the same for folders of images: every
input is copied to OUT/images/ and each altered copy is written as a new PNG next to
another image (in the source's folder: intra; in another folder: inter), with
OUT/images_truth.csv (page 1, bbox "0 0 w h" in pixels).

Truth sides: a = where the source is (its placement bbox; when the chain starts with a
crop, the cropped region mapped into that bbox), b = the whole planted placement /
file. bbox text is `training.scoring.format_bbox` (PDF points, top-left origin, page
1-based). Sources and targets are whole placements that are large, not noise, drawn
once, and whose pixels occur nowhere else in the input (so a publisher logo or an
image a paper legitimately shows twice never takes part). A target is drawn upright
on an unrotated page and has an aspect ratio within `cfg.aspect_tolerance` of the
altered copy (the copy is stretched into the target's bbox). Every source and target
is used once, so truth has no transitive pairs. Deterministic in `cfg.seed`.

Alteration recipes (cycled in a seeded order): crops keeping 25-50% of the area
(native resolution, `rescale=False`), such crops + rotate90, each single alteration of
`training.alterations`, random chains of 2-3, and exact copies ('none').

With `cfg.crop_share` set, that share of the pairs is crop-type (crops, crops + rotate90 and
partial overlaps, in turn) and the rest cycles through the other recipes. A partial overlap
(alteration `overlap`) is two crops of the source, each keeping 25-50% of its area and
sharing 30-60% of it with the other (neither contains the other): crop a replaces the
source itself (PDFs: its image stream, drawn in its bbox; images: a new PNG in the source's
folder, the source is not copied), crop b is planted like any copy. Its truth row names the
shared region on both sides (in each placement's bbox), so only a pair linking the two
crops matches it; plants.csv keeps both crops' records (`[a, b]`).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from scanner.records import format_bbox
from training.alterations import ALTERATION_KINDS, AlterationRecord, apply, apply_named, label, random_alteration
from training.corpus import TRUTH_COLUMNS

PLANT_COLUMNS = [*TRUTH_COLUMNS, "source_bbox", "source_px", "planted_px", "params"]
RECIPES: tuple[str, ...] = ("crop_area", "crop_area+rotate90", "none", "chain", *ALTERATION_KINDS)
OVERLAP = "overlap"  # truth alteration of a planted partial overlap (two crops of one source)
CROP_RECIPES: tuple[str, ...] = ("crop_area", OVERLAP, "crop_area+rotate90")  # crop-type, cycled under `crop_share`

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class RealCorpusConfig:
    reuse: int = 10                  # planted pairs wanted (fewer when candidates run out)
    seed: int = 0
    intra_fraction: float = 0.3      # share of pairs inside one paper / one folder
    min_side_px: int = 96            # source and target: both sides at least this many pixels ...
    min_side_pt: float = 60.0        # ... and (PDFs) drawn at least this large on the page
    min_std: float = 10.0            # grey-level standard deviation (rules out blank/flat images)
    min_levels: int = 48             # distinct grey levels (rules out line art and simple charts)
    aspect_tolerance: float = 1.25   # max ratio between the target's and the copy's aspect ratios
    max_side: int = 2000             # planted copies are downscaled to at most this many pixels
    generator: str = "real"          # value of the truth `generator` column
    crop_share: float | None = None  # share of crop-type pairs (crops, crops + rotate90, overlaps); None: recipes cycle
    overlap_share: tuple[float, float] = (0.3, 0.6)  # overlaps: shared part of each crop's area


@dataclass
class Candidate:
    doc: str                # relative path (POSIX) in the input folder
    page: int               # 1-based
    bbox: Box               # displayed placement (PDF points) or 0 0 w h (image files)
    width: int              # pixels (upright)
    height: int
    digest: str             # sha256 of the upright pixels
    xref: int = 0           # image stream (PDFs); 0 when unknown
    can_target: bool = False

    @property
    def aspect(self) -> float:
        return (self.bbox[2] - self.bbox[0]) / max(self.bbox[3] - self.bbox[1], 1e-6)


# ------------------------------------------------------------------ inventory


def _informative(rgb: np.ndarray, cfg: RealCorpusConfig) -> bool:
    g = rgb.mean(axis=2) if rgb.ndim == 3 else rgb
    step = max(1, int(max(g.shape) // 512))
    g = g[::step, ::step]
    return bool(g.std() >= cfg.min_std and len(np.unique(g.round().astype(np.uint8))) >= cfg.min_levels)


def _records(path: Path, root: Path) -> list[Any]:
    from scanner.extract import ExtractLimits, extract_document

    res = extract_document(path, root, ExtractLimits(split=False, timeout_s=None))
    return [r for r in res.records if r.parent_id is None]


def _pixels(rec: Any) -> np.ndarray:
    from scanner.decode import decode_png

    return decode_png(rec.image)


def _upright_placements(path: Path) -> dict[tuple[int, tuple[int, int, int, int]], int]:
    """(page, rounded bbox) -> xref for image placements drawn upright on unrotated pages,
    whose xref is placed exactly once in the document."""
    import pymupdf

    out: dict[tuple[int, tuple[int, int, int, int]], int] = {}
    uses: Counter[int] = Counter()
    with pymupdf.open(path) as doc:
        rows = []
        for pno in range(doc.page_count):
            page = doc.load_page(pno)
            for info in page.get_image_info(xrefs=True):
                xref = int(info.get("xref") or 0)
                uses[xref] += 1
                a, b, c, d, _, _ = info["transform"]
                upright = page.rotation == 0 and abs(b) < 1e-3 and abs(c) < 1e-3 and a > 0 and d > 0
                if xref and upright:
                    rows.append((pno + 1, tuple(round(v) for v in info["bbox"]), xref))
    for page_no, bbox, xref in rows:
        if uses[xref] == 1:
            out[(page_no, bbox)] = xref
    return out


def inventory(root: Path, files: list[Path], cfg: RealCorpusConfig, pdf: bool) -> list[Candidate]:
    """Large, informative whole placements whose pixels occur once in the whole input."""
    from scanner.discover import document_key

    cands: list[Candidate] = []
    for path in files:
        doc = document_key(path, root)
        xrefs = _upright_placements(path) if pdf else {}
        for rec in _records(path, root):
            if rec.is_noise or min(rec.width, rec.height) < cfg.min_side_px or (not pdf and rec.page != 1):
                continue
            if pdf and min(rec.x1 - rec.x0, rec.y1 - rec.y0) < cfg.min_side_pt:
                continue
            rgb = _pixels(rec)
            if not _informative(rgb, cfg):
                continue
            xref = xrefs.get((rec.page, tuple(round(v) for v in rec.bbox)), 0) if pdf else 0
            cands.append(Candidate(doc, rec.page, rec.bbox, rec.width, rec.height,
                                   hashlib.sha256(rgb.tobytes()).hexdigest(), xref, can_target=bool(xref) or not pdf))
    count = Counter(c.digest for c in cands)
    return [c for c in cands if count[c.digest] == 1]


# ------------------------------------------------------------------ alterations


def alter(img: Image.Image, recipe: str, rng: np.random.Generator) -> tuple[Image.Image, list[AlterationRecord]]:
    """Apply one recipe (see module docstring); returns (image, records) replayable with `alterations.replay`."""
    img = img.convert("RGB")
    if recipe in ("crop_area", "crop_area+rotate90"):
        area = float(rng.uniform(0.25, 0.5))
        ratio = float(rng.uniform(0.8, 1.25))
        kw = float(np.clip(np.sqrt(area * ratio), 0.3, 0.95))
        kh = float(np.clip(area / kw, 0.3, 0.95))
        rec = AlterationRecord("crop", {"keep_w": kw, "keep_h": kh, "fx": float(rng.random()), "fy": float(rng.random()), "rescale": False})
        out, records = apply(img, rec), [rec]
        if recipe.endswith("rotate90"):
            out, r90 = apply_named(out, "rotate90", rng)
            records.append(r90)
        return out, records
    if recipe == "none":
        return img, []
    if recipe == "chain":
        return random_alteration(img, rng, max_ops=3, min_ops=2)
    out, rec = apply_named(img, recipe, rng)
    return out, [rec]


def _crop_px(params: dict[str, Any], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The pixel box (x0 y0 x1 y1) a `crop` record keeps of an image of `size` (as `alterations` cuts it)."""
    w, h = size
    cw, ch = max(1, round(w * params["keep_w"])), max(1, round(h * params["keep_h"]))
    x0, y0 = round((w - cw) * params["fx"]), round((h - ch) * params["fy"])
    return x0, y0, x0 + cw, y0 + ch


def map_box(px: tuple[float, float, float, float], size: tuple[int, int], bbox: Box) -> Box:
    """A pixel box of an image of `size` mapped into the `bbox` the image is drawn in."""
    sx, sy = (bbox[2] - bbox[0]) / size[0], (bbox[3] - bbox[1]) / size[1]
    return (bbox[0] + px[0] * sx, bbox[1] + px[1] * sy, bbox[0] + px[2] * sx, bbox[1] + px[3] * sy)


def crop_box(records: list[AlterationRecord], size: tuple[int, int], bbox: Box) -> Box:
    """The part of `bbox` the planted copy comes from: the first crop's region, else all of it."""
    if not records or records[0].name != "crop":
        return bbox
    return map_box(_crop_px(records[0].params, size), size, bbox)


@dataclass(frozen=True)
class OverlapCrops:
    """Two crops of one image sharing part of their area; `shared_a`/`shared_b`: that part, in each crop's pixels."""

    a: Image.Image
    b: Image.Image
    records: tuple[AlterationRecord, AlterationRecord]
    size: tuple[int, int]                # both crops' pixel size (before any downscaling for the corpus)
    shared_a: tuple[int, int, int, int]
    shared_b: tuple[int, int, int, int]


def overlap_crops(img: Image.Image, rng: np.random.Generator, share: tuple[float, float] = (0.3, 0.6)) -> OverlapCrops:
    """Two equal crops of `img` (its aspect, 25-50% of its area each) shifted so they share `share` of it.

    The shift is horizontal, vertical or diagonal; the side kept is as large as the
    shift allows within the image, so neither crop contains the other.
    """
    img = img.convert("RGB")
    w, h = img.size
    f = float(rng.uniform(*share))
    keep_x, keep_y = [(f, 1.0), (1.0, f), (np.sqrt(f), np.sqrt(f))][int(rng.integers(3))]  # per-axis shared part
    k = float(rng.uniform(0.5, min(np.sqrt(0.5), 1 / (2 - min(keep_x, keep_y)))))  # a shift of (1-keep) k fits in 1-k
    cw, ch = max(1, round(w * k)), max(1, round(h * k))
    dx, dy = round(cw * (1 - keep_x)), round(ch * (1 - keep_y))
    x0, y0 = int(rng.integers(0, max(0, w - cw - dx) + 1)), int(rng.integers(0, max(0, h - ch - dy) + 1))
    boxes = [(x0, y0), (x0 + dx, y0 + dy)]
    if rng.random() < 0.5:
        boxes.reverse()
    recs = tuple(AlterationRecord("crop", {"keep_w": cw / w, "keep_h": ch / h, "fx": bx / max(1, w - cw),
                                           "fy": by / max(1, h - ch), "rescale": False}) for bx, by in boxes)
    px = [_crop_px(r.params, (w, h)) for r in recs]
    shared = (max(px[0][0], px[1][0]), max(px[0][1], px[1][1]), min(px[0][2], px[1][2]), min(px[0][3], px[1][3]))

    def within(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        return shared[0] - box[0], shared[1] - box[1], shared[2] - box[0], shared[3] - box[1]

    return OverlapCrops(apply(img, recs[0]), apply(img, recs[1]), (recs[0], recs[1]), (cw, ch), within(px[0]), within(px[1]))


def _fit(img: Image.Image, max_side: int) -> Image.Image:
    if max(img.size) <= max_side:
        return img
    s = max_side / max(img.size)
    return img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.Resampling.LANCZOS)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------ planning


@dataclass
class Plant:
    source: Candidate
    target: Candidate | None     # PDFs: the replaced placement
    dest: str                    # images: relative path of the new file
    kind: str
    records: list[AlterationRecord]
    image: Image.Image
    bbox_a: Box
    overlap: OverlapCrops | None = None  # a partial overlap: `image` is crop b; crop a replaces the source
    dest_a: str = ""                     # overlap (images): relative path of crop a's new file

    @property
    def alteration(self) -> str:
        """The truth `alteration` label."""
        return OVERLAP if self.overlap is not None else label(self.records)

    @property
    def image_a(self) -> Image.Image | None:
        """What replaces the source (crop a of an overlap), else None."""
        return None if self.overlap is None else self.overlap.a


class _SourcePixels:
    """Upright pixels of a candidate, re-extracted per document on demand (a few documents cached)."""

    def __init__(self, root: Path, keep: int = 8) -> None:
        self.root = root
        self.keep = keep
        self.cache: dict[str, list[Any]] = {}

    def get(self, c: Candidate) -> Image.Image:
        if c.doc not in self.cache:
            if len(self.cache) >= self.keep:
                self.cache.pop(next(iter(self.cache)))
            self.cache[c.doc] = _records(self.root / c.doc, self.root)
        for r in self.cache[c.doc]:
            if r.page == c.page and r.bbox == c.bbox:
                return Image.fromarray(_pixels(r)).convert("RGB")
        raise LookupError(f"{c.doc} page {c.page} {c.bbox}: placement not found again")


def recipe_order(cfg: RealCorpusConfig, rng: np.random.Generator) -> list[str]:
    """The recipes in the order plants take them (cycled): RECIPES shuffled, or `crop_share` crop-type ones mixed in."""
    if cfg.crop_share is None:
        return [str(r) for r in rng.permutation(np.array(RECIPES))]
    n_crop = round(cfg.crop_share * cfg.reuse)
    others = [str(r) for r in rng.permutation(np.array([r for r in RECIPES if r not in CROP_RECIPES]))]
    order = [CROP_RECIPES[i % len(CROP_RECIPES)] for i in range(n_crop)]
    order += [others[i % len(others)] for i in range(cfg.reuse - n_crop)]
    return [order[i] for i in rng.permutation(len(order))] or others


def plan(cands: list[Candidate], root: Path, cfg: RealCorpusConfig, pdf: bool) -> list[Plant]:
    rng = np.random.default_rng(cfg.seed)
    order = recipe_order(cfg, rng)
    pixels = _SourcePixels(root)
    used: set[int] = set()
    folders = sorted({str(Path(c.doc).parent) for c in cands})
    taken = {c.doc for c in cands}
    plants: list[Plant] = []
    attempts = 0
    while len(plants) < cfg.reuse and attempts < cfg.reuse * 20:
        attempts += 1
        free = [i for i in range(len(cands)) if i not in used]
        if len(free) < 2:
            break
        kind = "intra" if rng.random() < cfg.intra_fraction else "inter"
        si = free[int(rng.integers(len(free)))]
        src = cands[si]
        recipe = order[len(plants) % len(order)]
        if recipe == OVERLAP and pdf and not src.can_target:
            continue  # crop a replaces the source's own image stream
        overlap: OverlapCrops | None = None
        if recipe == OVERLAP:
            overlap = overlap_crops(pixels.get(src), rng, cfg.overlap_share)
            overlap = replace(overlap, a=_fit(overlap.a, cfg.max_side))
            img, records = overlap.b, list(overlap.records)
        else:
            img, records = alter(pixels.get(src), recipe, rng)
        img = _fit(img, cfg.max_side)
        bbox_a = crop_box(records, (src.width, src.height), src.bbox)
        if overlap is not None:  # crop a is drawn in the source's bbox: the shared part of it
            bbox_a = map_box(overlap.shared_a, overlap.size, src.bbox)
        if pdf:
            ar = img.width / img.height
            ok = [i for i in free if i != si and cands[i].can_target
                  and (cands[i].doc == src.doc) == (kind == "intra")
                  and max(cands[i].aspect / ar, ar / cands[i].aspect) <= cfg.aspect_tolerance]
            if not ok:
                continue
            ti = ok[int(rng.integers(len(ok)))]
            used.update((si, ti))
            plants.append(Plant(src, cands[ti], cands[ti].doc, kind, records, img, bbox_a, overlap))
        else:
            here = str(Path(src.doc).parent)
            others = [f for f in folders if f != here]
            if kind == "inter" and not others:
                kind = "intra"
            folder = here if kind == "intra" else others[int(rng.integers(len(others)))]
            stem = Path(src.doc).stem if kind == "intra" else Path(next(c.doc for c in cands if str(Path(c.doc).parent) == folder)).stem
            name = f"{stem}_{len(plants) + 1:03d}.png"
            dest = name if folder == "." else (Path(folder) / name).as_posix()
            dest_a = "" if overlap is None else (Path(src.doc).parent / f"{Path(src.doc).stem}_{len(plants) + 1:03d}a.png").as_posix()
            if dest in taken or dest_a in taken:
                continue
            used.add(si)
            plants.append(Plant(src, None, dest, kind, records, img, bbox_a, overlap, dest_a))
    return plants


# ------------------------------------------------------------------ writing


def _row(p: Plant, cfg: RealCorpusConfig, pdf: bool) -> list[Any]:
    if pdf:
        assert p.target is not None
        b_box = p.target.bbox if p.overlap is None else map_box(p.overlap.shared_b, p.overlap.size, p.target.bbox)
        b = (p.target.doc, p.target.page, format_bbox(b_box))
    elif p.overlap is not None:
        b = (p.dest, 1, format_bbox(map_box(p.overlap.shared_b, p.overlap.size, (0, 0, p.image.width, p.image.height))))
    else:
        b = (p.dest, 1, f"0 0 {p.image.width} {p.image.height}")
    if not pdf and p.overlap is not None:
        a_img = p.overlap.a
        a = (p.dest_a, 1, format_bbox(map_box(p.overlap.shared_a, p.overlap.size, (0, 0, a_img.width, a_img.height))))
    else:
        whole = p.bbox_a == p.source.bbox
        a_box = f"0 0 {p.source.width} {p.source.height}" if (not pdf and whole) else format_bbox(p.bbox_a)
        a = (p.source.doc, p.source.page, a_box)
    return [*a, *b, p.alteration, p.kind, cfg.generator]


def _write(out: Path, name: str, rows: list[list[Any]], plants: list[Plant], cfg: RealCorpusConfig) -> None:
    with open(out / name, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TRUTH_COLUMNS)
        w.writerows(rows)
    with open(out / name.replace("truth", "plants"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(PLANT_COLUMNS)
        for row, p in zip(rows, plants):
            w.writerow([*row, format_bbox(p.source.bbox), f"{p.source.width}x{p.source.height}", f"{p.image.width}x{p.image.height}",
                        json.dumps([asdict(r) for r in p.records], sort_keys=True)])


def _summary(plants: list[Plant], n_inputs: int, n_cands: int, cfg: RealCorpusConfig) -> dict[str, Any]:
    return {
        "inputs": n_inputs, "candidates": n_cands, "planted": len(plants), "requested": cfg.reuse,
        "by_kind": dict(sorted(Counter(p.kind for p in plants).items())),
        "by_alteration": dict(sorted(Counter(p.alteration for p in plants).items())),
        "by_op": dict(sorted(Counter(op for p in plants for op in {r.name for r in p.records} or {"none"}).items())),
    }


def make_pdf_corpus(out: str | Path, pdf_dir: str | Path, cfg: RealCorpusConfig) -> dict[str, Any]:
    """Plant `cfg.reuse` altered copies into real PDFs (see module docstring); returns a summary."""
    import pymupdf

    from scanner.discover import find_inputs

    out, root = Path(out), Path(pdf_dir)
    files = [p for p in find_inputs(root) if p.suffix.lower() == ".pdf"]
    cands = inventory(root, files, cfg, pdf=True)
    plants = plan(cands, root, cfg, pdf=True)
    (out / "pdf").mkdir(parents=True, exist_ok=True)
    by_doc: dict[str, list[tuple[int, int, Image.Image]]] = defaultdict(list)  # doc -> (page, xref, new pixels)
    for p in plants:
        assert p.target is not None
        by_doc[p.target.doc].append((p.target.page, p.target.xref, p.image))
        if p.image_a is not None:  # an overlap's crop a replaces the source
            by_doc[p.source.doc].append((p.source.page, p.source.xref, p.image_a))
    from scanner.discover import document_key

    for path in files:
        doc = document_key(path, root)
        dest = out / "pdf" / doc
        dest.parent.mkdir(parents=True, exist_ok=True)
        if doc not in by_doc:
            shutil.copyfile(path, dest)
            continue
        with pymupdf.open(path) as pdfdoc:
            for page_no, xref, image in by_doc[doc]:
                pdfdoc.load_page(page_no - 1).replace_image(xref, stream=_png(image))
            pdfdoc.save(dest, garbage=3, deflate=True)
    _write(out, "truth.csv", [_row(p, cfg, True) for p in plants], plants, cfg)
    return _summary(plants, len(files), len(cands), cfg)


def make_image_corpus(out: str | Path, image_dir: str | Path, cfg: RealCorpusConfig) -> dict[str, Any]:
    """Plant `cfg.reuse` altered copies as new files among real images (see module docstring)."""
    from scanner.discover import document_key, find_inputs

    out, root = Path(out), Path(image_dir)
    files = [p for p in find_inputs(root) if p.suffix.lower() != ".pdf"]
    cands = inventory(root, files, cfg, pdf=False)
    plants = plan(cands, root, cfg, pdf=False)
    replaced = {p.source.doc for p in plants if p.overlap is not None}  # an overlap's crop a stands in for its source
    for path in files:
        if document_key(path, root) in replaced:
            continue
        dest = out / "images" / document_key(path, root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    for p in plants:
        for rel, image in ((p.dest, p.image), (p.dest_a, p.image_a)):
            if image is None:
                continue
            dest = out / "images" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(_png(image))
    _write(out, "images_truth.csv", [_row(p, cfg, False) for p in plants], plants, cfg)
    return _summary(plants, len(files), len(cands), cfg)
