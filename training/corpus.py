"""A benchmark corpus of synthetic papers with known image reuse (ground truth).

Layout of `OUT` (written by `make_corpus` / `reusescan make-corpus`):

    OUT/pdf/doc_00000.pdf ...      the papers (scan this folder)
    OUT/truth.csv                  true pairs; doc_* relative to OUT/pdf
    OUT/images/doc_00000/fig1_A.png ...   every panel as an image file (image-folder variant)
    OUT/images_truth.csv           true pairs; doc_* relative to OUT/images, bbox = "0 0 w h", page 1
    OUT/panels.csv                 every placed panel (doc, page, bbox, image file, generator, specimen)
    OUT/meta/doc_00000.json        per-document placements (lets an interrupted run resume)
    OUT/corpus.json                the parameters of the run

Truth columns: doc_a,page_a,bbox_a,doc_b,page_b,bbox_b,alteration,kind,generator
(`kind` is inter/intra as in the report contract, `alteration` the '+'-joined
chain from `training.alterations`, `generator` the synthetic image kind). bbox is
"x0 y0 x1 y1" in PDF points, top-left origin: for a panel inside a compound
figure, its sub-rectangle of the figure raster mapped onto the page.

Papers: 3+ pages of text, a publisher logo (the same small image on every first
page of that publisher: boilerplate, never a true pair), single-image figures and
compound figures (one raster; panels separated by white or near-white gutters of
at least 8 px; panels whose border would be near-white get a 1 px grey frame so
gutters stay unambiguous), panel letters burned into the panel corner or as PDF
text over it. Hard negatives on purpose: other fields of the same synthetic
specimen (same style, different content; blots with the same layout and other
bands) in the same and in other papers. Each source panel is reused at most once,
so truth has no transitive pairs. Everything is deterministic in (seed, doc index).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from scanner.records import format_bbox

logger = logging.getLogger(__name__)

TRUTH_COLUMNS = ["doc_a", "page_a", "bbox_a", "doc_b", "page_b", "bbox_b", "alteration", "kind", "generator"]
PAGE_W, PAGE_H = 595.0, 842.0
MARGIN = 50.0
# aspect classes (w, h) per generator kind; blots are often short strips
_SIZES = {
    "western_blot": [(300, 110), (260, 160), (240, 240)],
    "gel": [(240, 240), (280, 200)],
    "flow": [(220, 220), (240, 200)],
}
_DEFAULT_SIZES = [(240, 240), (280, 210), (210, 280), (256, 256)]
_WORDS = (
    "cells protein expression analysis tissue samples significant increase decrease control treated "
    "mice patients antibody staining western blot fluorescence imaging quantified independent experiments "
    "representative images shown mean error bars indicate knockdown overexpression pathway signalling "
    "apoptosis proliferation migration tumour growth receptor kinase inhibitor response dose dependent "
    "markers nuclei cytoplasm localisation cohort tumours biopsy sections flow cytometry population gated "
    "compared baseline levels observed consistent previous reports suggesting mechanism regulation"
).split()


@dataclass
class Slot:
    """One panel position in a planned document and what fills it."""

    fig: int
    letter: str
    gen: str               # generator kind
    specimen: int
    field_index: int
    w: int
    h: int
    reuse_of: tuple[int, int, int] | None = None  # (doc, fig, panel index) of the source panel
    event: int = -1                                # reuse event number (alteration seed)


@dataclass
class DocPlan:
    """Everything needed to render one document, derived from (seed, index) and the reuse events."""

    index: int
    seed: int
    publisher: int
    figures: list[list[Slot]] = field(default_factory=list)
    grids: list[tuple[int, int]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"doc_{self.index:05d}"


@dataclass(frozen=True)
class CorpusConfig:
    docs: int
    reuse: int
    seed: int
    workers: int = 1
    images: bool = True          # also write the image-folder variant
    jpeg_fraction: float = 0.3   # share of figure rasters embedded as JPEG (quality 90-95)
    intra_fraction: float = 0.3  # share of reuse events within one document
    sibling_fraction: float = 0.3  # share of fresh panels that are another field of an earlier specimen


# ------------------------------------------------------------------ planning


def _plan_docs(cfg: CorpusConfig) -> list[DocPlan]:
    from training.synth import KINDS

    plans: list[DocPlan] = []
    specimens: list[tuple[str, int, int, int]] = []  # recent (gen, specimen, w, h) for hard negatives
    next_field: dict[int, int] = {}
    for i in range(cfg.docs):
        rng = np.random.default_rng([cfg.seed, i, 1])
        plan = DocPlan(index=i, seed=int(rng.integers(2**62)), publisher=int(rng.integers(3)))
        n_fig = int(rng.integers(2, 5))
        for f in range(n_fig):
            compound = rng.random() < 0.65
            rows, cols = (int(rng.integers(1, 3)), int(rng.integers(2, 4))) if compound else (1, 1)
            gen = str(rng.choice(KINDS))
            w, h = (_SIZES.get(gen, _DEFAULT_SIZES))[int(rng.integers(len(_SIZES.get(gen, _DEFAULT_SIZES))))]
            slots = []
            for p in range(rows * cols):
                if p and rng.random() < 0.4:
                    gen = str(rng.choice(KINDS))
                    if (w, h) not in _SIZES.get(gen, _DEFAULT_SIZES):
                        gen = str(rng.choice([k for k in KINDS if (w, h) in _SIZES.get(k, _DEFAULT_SIZES)] or [gen]))
                if specimens and rng.random() < cfg.sibling_fraction:
                    cand = [s for s in specimens[-200:] if (s[2], s[3]) == (w, h)]
                    if cand:
                        g, spec, _, _ = cand[int(rng.integers(len(cand)))]
                        next_field[spec] = next_field.get(spec, 1) + 1
                        slots.append(Slot(f, chr(65 + p), g, spec, next_field[spec], w, h))
                        continue
                spec = int(rng.integers(2**62))
                specimens.append((gen, spec, w, h))
                slots.append(Slot(f, chr(65 + p), gen, spec, 0, w, h))
            plan.figures.append(slots)
            plan.grids.append((rows, cols))
        plans.append(plan)
    _plan_reuse(plans, cfg)
    return plans


def _plan_reuse(plans: list[DocPlan], cfg: CorpusConfig) -> None:
    """Turn `cfg.reuse` slots into altered copies of other (fresh, never reused) slots."""
    rng = np.random.default_rng([cfg.seed, 2])
    used: set[tuple[int, int, int]] = set()
    n_docs = len(plans)
    docs_by_size: dict[tuple[int, int], list[int]] = {}
    for plan in plans:
        for size in sorted({(s.w, s.h) for slots in plan.figures for s in slots}):
            docs_by_size.setdefault(size, []).append(plan.index)
    made, attempts = 0, 0
    while made < cfg.reuse and attempts < cfg.reuse * 50 + 100:
        attempts += 1
        a = int(rng.integers(n_docs))
        fa = int(rng.integers(len(plans[a].figures)))
        pa = int(rng.integers(len(plans[a].figures[fa])))
        src = (a, fa, pa)
        if src in used:
            continue
        s_slot = plans[a].figures[fa][pa]
        intra = n_docs == 1 or rng.random() < cfg.intra_fraction
        if intra:
            b = a
        else:  # another paper that has a slot of the same size (so inter events are not rejected more often)
            others = docs_by_size[(s_slot.w, s_slot.h)]
            if len(others) < 2:
                continue
            b = int(others[int(rng.integers(len(others)))])
            if b == a:
                continue
        targets = [
            (b, f, p)
            for f, slots in enumerate(plans[b].figures)
            for p, s in enumerate(slots)
            if (b, f, p) not in used and (b, f, p) != src and (s.w, s.h) == (s_slot.w, s_slot.h)
        ]
        if not targets:
            continue
        tgt = targets[int(rng.integers(len(targets)))]
        t_slot = plans[b].figures[tgt[1]][tgt[2]]
        plans[b].figures[tgt[1]][tgt[2]] = Slot(t_slot.fig, t_slot.letter, s_slot.gen, s_slot.specimen, s_slot.field_index, t_slot.w, t_slot.h, reuse_of=src, event=made)
        used.update({src, tgt})
        made += 1
    if made < cfg.reuse:
        logger.warning("planned only %d of %d reuse events (too few panels)", made, cfg.reuse)


# ------------------------------------------------------------------ rendering


def _logo(publisher: int) -> Image.Image:
    """The publisher's small logo: the same pixels on every first page of that publisher."""
    colours = [(20, 60, 140), (150, 20, 40), (10, 110, 70)]
    img = Image.new("RGB", (120, 36), "white")
    d = ImageDraw.Draw(img)
    d.ellipse([2, 2, 33, 33], fill=colours[publisher])
    d.rectangle([40, 8, 116, 14], fill=colours[publisher])
    d.rectangle([40, 20, 96, 27], fill=(90, 90, 90))
    return img


def _sentence(rng: np.random.Generator, n: int) -> str:
    words = [str(w) for w in rng.choice(_WORDS, n)]
    return " ".join(words).capitalize() + "."


def _paragraph(rng: np.random.Generator, chars: int) -> str:
    out: list[str] = []
    while sum(len(s) + 1 for s in out) < chars:
        out.append(_sentence(rng, int(rng.integers(8, 20))))
    return " ".join(out)[:chars].rsplit(" ", 1)[0] + "."


def _panel_pixels(slot: Slot, seed: int) -> tuple[Image.Image, str, list[dict[str, Any]]]:
    """The slot's pixels before framing/lettering, its alteration label ('' for fresh panels) and records."""
    from training.alterations import label, random_alteration
    from training.synth import generate_specimen_field

    img = generate_specimen_field(slot.gen, slot.specimen, slot.field_index, (slot.w, slot.h))
    if slot.reuse_of is None:
        return img, "", []
    altered, records = random_alteration(img, np.random.default_rng([seed, 3, slot.event]), max_ops=3)
    if altered.size != (slot.w, slot.h):  # the layout fits the copy into its slot
        altered = altered.resize((slot.w, slot.h), Image.Resampling.BILINEAR)
    return altered, label(records), [{"name": r.name, "params": r.params} for r in records]


def _frame_if_light(img: Image.Image) -> Image.Image:
    """Draw a 1 px grey frame when any border pixel is near-white, so gutters stay unambiguous."""
    a = np.asarray(img)
    ring = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if (ring.min(axis=1) >= 230).any():
        img = img.copy()
        ImageDraw.Draw(img).rectangle([0, 0, img.width - 1, img.height - 1], outline=(90, 90, 90))
    return img


def _burn_letter(img: Image.Image, letter: str) -> Image.Image:
    img = img.copy()
    d = ImageDraw.Draw(img)
    d.rectangle([3, 3, 16, 17], fill=(0, 0, 0))
    d.text((6, 4), letter, fill=(255, 255, 255))
    return img


def _compose(panels: list[Image.Image], grid: tuple[int, int], gutter: int, bg: int) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """Paste equally sized panels in a grid with `gutter`-pixel gutters (and an outer margin of the same width)."""
    rows, cols = grid
    if len(panels) == 1:
        p = panels[0]
        return p, [(0, 0, p.width, p.height)]
    pw, ph = panels[0].size
    W, H = cols * pw + (cols + 1) * gutter, rows * ph + (rows + 1) * gutter
    canvas = Image.new("RGB", (W, H), (bg, bg, bg))
    boxes = []
    for i, p in enumerate(panels):
        r, c = divmod(i, cols)
        x0, y0 = gutter + c * (pw + gutter), gutter + r * (ph + gutter)
        canvas.paste(p, (x0, y0))
        boxes.append((x0, y0, x0 + pw, y0 + ph))
    return canvas, boxes


def _encode(img: Image.Image, jpeg: bool, quality: int) -> bytes:
    buf = io.BytesIO()
    if jpeg:
        img.save(buf, format="JPEG", quality=quality)
    else:
        img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def render_doc(plan: DocPlan, out: Path, cfg: CorpusConfig) -> dict[str, Any]:
    """Write one PDF (and its panel images) and return its placements, also saved to OUT/meta."""
    import pymupdf

    meta_path = out / "meta" / f"{plan.name}.json"
    pdf_path = out / "pdf" / f"{plan.name}.pdf"
    if meta_path.exists() and pdf_path.exists():
        return json.loads(meta_path.read_text())
    rng = np.random.default_rng([plan.seed, 4])
    doc = pymupdf.open()
    placements: list[dict[str, Any]] = []
    page = doc.new_page(width=PAGE_W, height=PAGE_H)
    page.insert_image(pymupdf.Rect(MARGIN, 30, MARGIN + 90, 57), stream=_encode(_logo(plan.publisher), False, 0), keep_proportion=False)
    page.insert_text((MARGIN + 100, 48), ["Journal of Synthetic Biology", "Cell Reports Synthetic", "Synthetic Pathology Letters"][plan.publisher], fontsize=9)
    page.insert_textbox(pymupdf.Rect(MARGIN, 70, PAGE_W - MARGIN, 120), _sentence(rng, int(rng.integers(6, 12))), fontsize=15, fontname="hebo")
    page.insert_textbox(pymupdf.Rect(MARGIN, 120, PAGE_W - MARGIN, 140), "A. Author, B. Author, C. Author", fontsize=9)
    y = 150.0
    text_w = PAGE_W - 2 * MARGIN
    items: list[tuple[str, int]] = [("text", 0)]
    for f in range(len(plan.figures)):
        items += [("fig", f), ("text", 0)]
    items += [("text", 0)] * int(rng.integers(1, 4))
    img_dir = out / "images" / plan.name
    if cfg.images:
        img_dir.mkdir(parents=True, exist_ok=True)

    def write_text() -> None:
        nonlocal page, y
        height = float(rng.uniform(90, 200))
        if y + height > PAGE_H - MARGIN:
            page = doc.new_page(width=PAGE_W, height=PAGE_H)
            y = MARGIN
        text = _paragraph(rng, int(height / 11 * 90))
        while page.insert_textbox(pymupdf.Rect(MARGIN, y, PAGE_W - MARGIN, y + height), text, fontsize=9) < 0 and len(text) > 40:
            text = text[: int(len(text) * 0.8)].rsplit(" ", 1)[0] + "."  # nothing is written when it overflows
        y += height + 8

    for kind, f in items:
        if kind == "text":
            write_text()
            continue
        slots = plan.figures[f]
        pixels, labels, recs = [], [], []
        for s in slots:
            img, lab, rec = _panel_pixels(s, plan.seed if s.reuse_of is None else cfg.seed)
            pixels.append(img)
            labels.append(lab)
            recs.append(rec)
        gutter = int(rng.integers(8, 21))
        bg = int(rng.choice([255, 255, 252, 248]))
        burn = len(slots) > 1 and rng.random() < 0.5
        panels = [_frame_if_light(p) for p in pixels] if len(slots) > 1 else pixels
        if burn:
            panels = [_burn_letter(p, s.letter) for p, s in zip(panels, slots)]
        raster, boxes = _compose(panels, plan.grids[f], gutter, bg)
        width = text_w if raster.width > 300 else min(text_w, float(rng.uniform(220, 330)))
        height = width * raster.height / raster.width
        if height > 380:
            width, height = width * 380 / height, 380.0
        if y + height + 40 > PAGE_H - MARGIN:
            page = doc.new_page(width=PAGE_W, height=PAGE_H)
            y = MARGIN
        x0 = MARGIN + (text_w - width) / 2
        rect = pymupdf.Rect(x0, y, x0 + width, y + height)
        jpeg = rng.random() < cfg.jpeg_fraction
        page.insert_image(rect, stream=_encode(raster, jpeg, int(rng.integers(90, 96))), keep_proportion=False)
        sx, sy = width / raster.width, height / raster.height
        for s, p, box, lab, rec in zip(slots, panels, boxes, labels, recs):
            bbox = [x0 + box[0] * sx, y + box[1] * sy, x0 + box[2] * sx, y + box[3] * sy]
            if len(slots) > 1 and not burn:
                page.insert_text((bbox[0] + 3, bbox[1] + 11), s.letter, fontsize=10, fontname="hebo", color=(1, 1, 1))
            image_file = ""
            if cfg.images:
                image_file = f"{plan.name}/fig{f + 1}_{s.letter}.png"
                tmp = out / "images" / (image_file + ".tmp")
                p.save(tmp, format="PNG", compress_level=1)
                os.replace(tmp, out / "images" / image_file)
            placements.append({
                "fig": f, "panel": slots.index(s), "page": doc.page_count, "bbox": [round(v, 3) for v in bbox],
                "image": image_file, "w": p.width, "h": p.height, "gen": s.gen, "specimen": s.specimen,
                "field": s.field_index, "alteration": lab, "records": rec,
            })
        caption = f"Figure {f + 1}. " + " ".join(f"({s.letter}) {_sentence(rng, int(rng.integers(4, 9)))}" for s in slots)
        page.insert_textbox(pymupdf.Rect(MARGIN, y + height + 4, PAGE_W - MARGIN, y + height + 40), caption[:400], fontsize=8)
        y += height + 46
    while doc.page_count < 3:  # papers have several pages
        write_text()
    tmp_pdf = pdf_path.with_suffix(".pdf.tmp")
    n_pages = doc.page_count
    doc.save(tmp_pdf, garbage=3, deflate=True)
    doc.close()
    os.replace(tmp_pdf, pdf_path)
    meta = {"doc": pdf_path.name, "name": plan.name, "pages": n_pages, "panels": placements}
    tmp_meta = meta_path.with_suffix(".json.tmp")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, meta_path)
    return meta


def _render_star(args: tuple[DocPlan, Path, CorpusConfig]) -> dict[str, Any]:
    return render_doc(*args)


def make_corpus(out: str | Path, cfg: CorpusConfig) -> dict[str, Any]:
    """Plan, render (in `cfg.workers` processes) and write truth files; returns a summary dict."""
    out = Path(out)
    t0 = time.time()
    for sub in ("pdf", "meta") + (("images",) if cfg.images else ()):
        (out / sub).mkdir(parents=True, exist_ok=True)
    plans = _plan_docs(cfg)
    args = [(p, out, cfg) for p in plans]
    if cfg.workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(cfg.workers) as pool:
            metas = list(pool.imap(_render_star, args, chunksize=max(1, min(16, len(args) // (cfg.workers * 4) or 1))))
    else:
        metas = [_render_star(a) for a in args]
    by_key = {(m_i, pl["fig"], pl["panel"]): pl for m_i, m in enumerate(metas) for pl in m["panels"]}
    truth, img_truth, all_panels = [], [], []
    for d, plan in enumerate(plans):
        for f, slots in enumerate(plan.figures):
            for p, s in enumerate(slots):
                tgt = by_key[(d, f, p)]
                all_panels.append([metas[d]["doc"], tgt["page"], format_bbox(tgt["bbox"]), tgt["image"], tgt["gen"], tgt["specimen"], tgt["field"], tgt["alteration"]])
                if s.reuse_of is None:
                    continue
                a = s.reuse_of
                src = by_key[a]
                kind = "intra" if a[0] == d else "inter"
                truth.append([metas[a[0]]["doc"], src["page"], format_bbox(src["bbox"]), metas[d]["doc"], tgt["page"], format_bbox(tgt["bbox"]), tgt["alteration"], kind, s.gen])
                if cfg.images:
                    img_truth.append([src["image"], 1, f"0 0 {src['w']} {src['h']}", tgt["image"], 1, f"0 0 {tgt['w']} {tgt['h']}", tgt["alteration"], kind, s.gen])
    _write_csv(out / "truth.csv", TRUTH_COLUMNS, truth)
    if cfg.images:
        _write_csv(out / "images_truth.csv", TRUTH_COLUMNS, img_truth)
    _write_csv(out / "panels.csv", ["doc", "page", "bbox", "image", "generator", "specimen", "field", "alteration"], all_panels)
    summary = {
        "config": asdict(cfg), "docs": len(plans), "pages": sum(int(m["pages"]) for m in metas),
        "panels": len(all_panels), "reuse_events": len(truth), "seconds": round(time.time() - t0, 2),
    }
    (out / "corpus.json").write_text(json.dumps(summary, indent=2))
    return summary


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    os.replace(tmp, path)
