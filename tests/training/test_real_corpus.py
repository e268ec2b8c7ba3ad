"""Real corpora with planted reuse (training.real_corpus): pixels, bboxes, determinism, CLI."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scanner.decode import decode_png
from scanner.extract import ExtractLimits, extract_document
from scanner.records import parse_bbox
from training.alterations import AlterationRecord, apply, replay
from training.real_corpus import RealCorpusConfig, alter, crop_box, make_image_corpus, make_pdf_corpus, overlap_crops

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "real-sample" / "images"
IMAGES = [
    "stardist/histo.png",
    "stardist/img2d.png",
    "neubias/xy_8bit__glialcell.png",
    "neubias/xyc_8bit__membranes_nuclei.png",
    "neubias/xy_16bit__bacteria_cords_thin.png",
    "cellprofiler/ExampleTrackObjects/images/Sequence1/DrosophilaEmbryo_GFPHistone_0000.png",
    "neubias/xyz_8bit__em_volume_tiff_series/c_elegans_em_z0000.png",
    "cellprofiler/ExampleIlluminationCorrection/images/AS_09047_050428030001_O01f00d2.png",
]


def _small(name: str, size: tuple[int, int]) -> bytes:
    with Image.open(SAMPLE / name) as im:
        img = im.convert("RGB")
    # a centred crop of the wanted aspect, then downscaled: real pixels, tiny files
    w, h = img.size
    ar = size[0] / size[1]
    cw, ch = (w, round(w / ar)) if w / h < ar else (round(h * ar), h)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    img = img.crop((x0, y0, x0 + cw, y0 + ch)).resize(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _make_pdfs(root: Path) -> None:
    """Three 2-page papers; each image drawn once, except one drawn twice in paper c (legitimate)."""
    import pymupdf

    root.mkdir(parents=True, exist_ok=True)
    layout = {
        "a.pdf": [(0, (200, 150), (72, 72, 272, 222)), (1, (160, 160), (300, 72, 460, 232)), (2, (240, 120), (72, 400, 312, 520))],
        "b.pdf": [(3, (200, 150), (80, 90, 280, 240)), (4, (160, 160), (72, 300, 232, 460)), (5, (240, 120), (300, 420, 540, 540))],
        "c.pdf": [(6, (200, 150), (72, 72, 272, 222)), (7, (160, 160), (300, 300, 460, 460))],
    }
    for name, items in layout.items():
        doc = pymupdf.open()
        for _pno in range(2):
            doc.new_page(width=612, height=792)
        for k, (i, size, rect) in enumerate(items):
            doc[k % 2].insert_image(pymupdf.Rect(rect), stream=_small(IMAGES[i], size))
        if name == "c.pdf":  # image 6 drawn a second time, on page 2
            doc[1].insert_image(pymupdf.Rect(72, 500, 272, 650), stream=_small(IMAGES[6], (200, 150)))
        doc.save(root / name)
        doc.close()


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _record_at(pdf: Path, page: int, bbox: tuple[float, ...]) -> tuple[tuple[float, ...], np.ndarray]:
    res = extract_document(pdf, pdf.parent, ExtractLimits(split=False, timeout_s=None))
    hits = [r for r in res.records if r.parent_id is None and r.page == page and max(abs(a - b) for a, b in zip(r.bbox, bbox)) <= 1.0]
    assert len(hits) == 1, (pdf, page, bbox, [(r.page, r.bbox) for r in res.records])
    return hits[0].bbox, decode_png(hits[0].image)


def _records(params: str) -> list[AlterationRecord]:
    return [AlterationRecord(r["name"], r["params"]) for r in json.loads(params)]


@pytest.fixture(scope="module")
def pdf_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    base = tmp_path_factory.mktemp("real")
    _make_pdfs(base / "in")
    summary = make_pdf_corpus(base / "out", base / "in", RealCorpusConfig(reuse=3, seed=5, min_side_px=64, aspect_tolerance=1.6))
    return base / "in", base / "out", summary


def test_planted_pixels_are_the_replayed_alteration_at_the_truth_bbox(pdf_corpus: tuple[Path, Path, dict]) -> None:
    src_root, out, summary = pdf_corpus
    truth, plants = _rows(out / "truth.csv"), _rows(out / "plants.csv")
    assert summary["planted"] == len(truth) == len(plants) >= 2
    assert sorted(p.name for p in (out / "pdf").iterdir()) == ["a.pdf", "b.pdf", "c.pdf"]
    for row, plant in zip(truth, plants):
        assert row["generator"] == "real" and row["kind"] in ("inter", "intra")
        assert (row["kind"] == "intra") == (row["doc_a"] == row["doc_b"])
        # source: the original pixels, read from the input (the source is never modified)
        _, src = _record_at(src_root / row["doc_a"], int(row["page_a"]), parse_bbox(plant["source_bbox"]))
        expected = np.asarray(replay(Image.fromarray(src), _records(plant["params"])))
        # planted: what a scan of the output finds at bbox_b
        got_bbox, got = _record_at(out / "pdf" / row["doc_b"], int(row["page_b"]), parse_bbox(row["bbox_b"]))
        assert max(abs(a - b) for a, b in zip(got_bbox, parse_bbox(row["bbox_b"]))) <= 1.0
        assert got.shape == expected.shape
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
        # the truth side a is the source bbox, or the cropped part of it
        a = parse_bbox(row["bbox_a"])
        s = parse_bbox(plant["source_bbox"])
        assert s[0] - 0.01 <= a[0] < a[2] <= s[2] + 0.01 and s[1] - 0.01 <= a[1] < a[3] <= s[3] + 0.01


def test_untouched_papers_are_byte_copies_and_the_twice_drawn_image_is_not_used(pdf_corpus: tuple[Path, Path, dict]) -> None:
    src_root, out, _ = pdf_corpus
    truth = _rows(out / "truth.csv")
    targets = {r["doc_b"] for r in truth}
    for name in ("a.pdf", "b.pdf", "c.pdf"):
        if name not in targets:
            assert (out / "pdf" / name).read_bytes() == (src_root / name).read_bytes()
    for r in truth:
        for doc, bbox in ((r["doc_a"], r["bbox_a"]), (r["doc_b"], r["bbox_b"])):
            # image 6 (drawn on both pages of c.pdf) is neither a source nor a target
            assert not (doc == "c.pdf" and parse_bbox(bbox)[0] < 280 and parse_bbox(bbox)[1] < 660 and parse_bbox(bbox)[3] > 150)


def test_deterministic_per_seed(pdf_corpus: tuple[Path, Path, dict], tmp_path: Path) -> None:
    src_root, out, _ = pdf_corpus
    make_pdf_corpus(tmp_path / "again", src_root, RealCorpusConfig(reuse=3, seed=5, min_side_px=64, aspect_tolerance=1.6))
    assert (tmp_path / "again" / "truth.csv").read_text() == (out / "truth.csv").read_text()
    assert (tmp_path / "again" / "plants.csv").read_text() == (out / "plants.csv").read_text()


def test_crop_recipes_keep_a_quarter_to_half_and_map_into_the_source_bbox() -> None:
    rng = np.random.default_rng(0)
    img = Image.new("RGB", (200, 100))
    for recipe in ("crop_area", "crop_area+rotate90"):
        for _ in range(20):
            out, recs = alter(img, recipe, rng)
            assert recs[0].name == "crop" and recs[0].params["rescale"] is False
            w, h = apply(img, recs[0]).size
            assert sorted(out.size) == sorted((w, h)) and len(recs) == (2 if recipe.endswith("rotate90") else 1)
            assert 0.22 <= (w * h) / (200 * 100) <= 0.53
            box = crop_box(recs, (200, 100), (10.0, 20.0, 110.0, 70.0))
            assert box[2] - box[0] == pytest.approx(w / 2, abs=1e-6) and box[3] - box[1] == pytest.approx(h / 2, abs=1e-6)
            assert 10 <= box[0] and box[2] <= 110 and 20 <= box[1] and box[3] <= 70
    assert crop_box([AlterationRecord("hflip", {})], (200, 100), (1.0, 2.0, 3.0, 4.0)) == (1.0, 2.0, 3.0, 4.0)


def _image_folder(src: Path) -> Path:
    """Six small real images in two subfolders."""
    for i, name in enumerate(IMAGES[:6]):
        d = src / ("g1" if i % 2 else "g2")
        d.mkdir(parents=True, exist_ok=True)
        (d / f"im{i}.png").write_bytes(_small(name, (180, 140)))
    return src


def test_image_corpus_plants_new_files_with_their_truth(tmp_path: Path) -> None:
    src = _image_folder(tmp_path / "in")
    summary = make_image_corpus(tmp_path / "out", src, RealCorpusConfig(reuse=3, seed=2, min_side_px=64))
    truth, plants = _rows(tmp_path / "out" / "images_truth.csv"), _rows(tmp_path / "out" / "images_plants.csv")
    assert summary["planted"] == len(truth) == 3
    assert summary["inputs"] == 6
    for row, plant in zip(truth, plants):
        new = tmp_path / "out" / "images" / row["doc_b"]
        assert new.is_file() and not (src / row["doc_b"]).exists()
        assert (tmp_path / "out" / "images" / row["doc_a"]).read_bytes() == (src / row["doc_a"]).read_bytes()
        with Image.open(new) as im:
            got = np.asarray(im.convert("RGB"))
        assert row["page_a"] == row["page_b"] == "1"
        assert parse_bbox(row["bbox_b"]) == (0, 0, got.shape[1], got.shape[0])
        with Image.open(src / row["doc_a"]) as im:
            expected = np.asarray(replay(im.convert("RGB"), _records(plant["params"])))
        assert np.array_equal(got, expected)
        assert (row["kind"] == "intra") == (Path(row["doc_a"]).parent == Path(row["doc_b"]).parent)


def test_make_corpus_cli_from_pdfs(pdf_corpus: tuple[Path, Path, dict], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from jobs.cli import main

    src_root, _, _ = pdf_corpus
    res = CliRunner().invoke(main, ["make-corpus", str(tmp_path / "o"), "--from-pdfs", str(src_root), "--reuse", "1", "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["pdf"]["planted"] == 1
    rows = _rows(tmp_path / "o" / "truth.csv")
    assert len(rows) == 1 and list(rows[0]) == ["doc_a", "page_a", "bbox_a", "doc_b", "page_b", "bbox_b", "alteration", "kind", "generator"]


def _region(pixels: np.ndarray, placement: tuple[float, ...], box: tuple[float, ...]) -> np.ndarray:
    """The pixels of `box` (page coordinates) of an image of `pixels` drawn in `placement`."""
    sx, sy = pixels.shape[1] / (placement[2] - placement[0]), pixels.shape[0] / (placement[3] - placement[1])
    x0, x1 = round((box[0] - placement[0]) * sx), round((box[2] - placement[0]) * sx)
    y0, y1 = round((box[1] - placement[1]) * sy), round((box[3] - placement[1]) * sy)
    return pixels[y0:y1, x0:x1]


def test_overlap_crops_share_part_of_their_area_and_neither_contains_the_other() -> None:
    rng = np.random.default_rng(1)
    with Image.open(SAMPLE / IMAGES[0]) as im:
        img = im.convert("RGB").resize((240, 180))
    for _ in range(30):
        o = overlap_crops(img, rng, (0.3, 0.6))
        assert o.a.size == o.b.size == o.size
        assert 0.22 <= o.size[0] * o.size[1] / (240 * 180) <= 0.53
        wa, ha = o.shared_a[2] - o.shared_a[0], o.shared_a[3] - o.shared_a[1]
        assert (wa, ha) == (o.shared_b[2] - o.shared_b[0], o.shared_b[3] - o.shared_b[1])
        assert 0.27 <= wa * ha / (o.size[0] * o.size[1]) <= 0.63  # 30-60 %, up to rounding
        a, b = np.asarray(o.a), np.asarray(o.b)
        assert np.array_equal(a[o.shared_a[1]:o.shared_a[3], o.shared_a[0]:o.shared_a[2]],
                              b[o.shared_b[1]:o.shared_b[3], o.shared_b[0]:o.shared_b[2]])
        assert o.shared_a != o.shared_b  # shifted: neither crop holds the other


def test_crop_share_plants_overlaps_whose_truth_is_the_shared_region_in_both_pdfs(tmp_path: Path) -> None:
    _make_pdfs(tmp_path / "in")
    summary = make_pdf_corpus(tmp_path / "out", tmp_path / "in",
                              RealCorpusConfig(reuse=3, seed=3, min_side_px=64, aspect_tolerance=1.6, crop_share=1.0))
    truth, plants = _rows(tmp_path / "out" / "truth.csv"), _rows(tmp_path / "out" / "plants.csv")
    assert set(summary["by_alteration"]) <= {"crop", "crop+rotate90", "overlap"} and summary["by_alteration"].get("overlap") == 1
    row, plant = next((r, p) for r, p in zip(truth, plants) if r["alteration"] == "overlap")
    crop_a, crop_b = _records(plant["params"])
    _, src = _record_at(tmp_path / "in" / row["doc_a"], int(row["page_a"]), parse_bbox(plant["source_bbox"]))
    # side a: the source's placement now shows crop a; side b: the target's shows crop b
    placed_a, got_a = _record_at(tmp_path / "out" / "pdf" / row["doc_a"], int(row["page_a"]), parse_bbox(plant["source_bbox"]))
    assert np.array_equal(got_a, np.asarray(apply(Image.fromarray(src), crop_a)))
    box_a, box_b = parse_bbox(row["bbox_a"]), parse_bbox(row["bbox_b"])
    target = next(r for r in extract_document(tmp_path / "out" / "pdf" / row["doc_b"], tmp_path / "out" / "pdf",
                                              ExtractLimits(split=False, timeout_s=None)).records
                  if r.page == int(row["page_b"]) and r.x0 <= box_b[0] + 0.01 and box_b[2] <= r.x1 + 0.01
                  and r.y0 <= box_b[1] + 0.01 and box_b[3] <= r.y1 + 0.01 and r.parent_id is None)
    got_b = decode_png(target.image)
    assert np.array_equal(got_b, np.asarray(apply(Image.fromarray(src), crop_b)))
    # the truth boxes are exactly the shared region: the same pixels on both sides, a strict part of each
    region_a, region_b = _region(got_a, placed_a, box_a), _region(got_b, target.bbox, box_b)
    assert region_a.shape == region_b.shape and np.array_equal(region_a, region_b)
    assert 0.27 <= region_a.shape[0] * region_a.shape[1] / (got_a.shape[0] * got_a.shape[1]) <= 0.63


def test_crop_share_overlap_in_an_image_corpus_replaces_the_source(tmp_path: Path) -> None:
    src = _image_folder(tmp_path / "in")
    make_image_corpus(tmp_path / "out", src, RealCorpusConfig(reuse=3, seed=2, min_side_px=64, crop_share=1.0))
    truth, plants = _rows(tmp_path / "out" / "images_truth.csv"), _rows(tmp_path / "out" / "images_plants.csv")
    row, plant = next((r, p) for r, p in zip(truth, plants) if r["alteration"] == "overlap")
    source = parse_bbox(plant["source_bbox"])
    original = next(p for p in src.rglob("*.png") if Path(row["doc_a"]).stem.startswith(p.stem + "_"))
    assert not (tmp_path / "out" / "images" / original.relative_to(src)).exists()
    with Image.open(original) as im:
        assert im.size == (source[2], source[3])
    out = {}
    for side in "ab":
        with Image.open(tmp_path / "out" / "images" / row[f"doc_{side}"]) as im:
            pix = np.asarray(im.convert("RGB"))
        box = parse_bbox(row[f"bbox_{side}"])
        out[side] = _region(pix, (0, 0, pix.shape[1], pix.shape[0]), box)
        assert 0.27 <= out[side].shape[0] * out[side].shape[1] / (pix.shape[0] * pix.shape[1]) <= 0.63
    assert np.array_equal(out["a"], out["b"])


def test_default_recipes_unchanged_without_crop_share() -> None:
    from training.real_corpus import RECIPES, recipe_order

    order = recipe_order(RealCorpusConfig(seed=3), np.random.default_rng(3))
    assert order == [str(r) for r in np.random.default_rng(3).permutation(np.array(RECIPES))] and "overlap" not in order
    shared = recipe_order(RealCorpusConfig(reuse=30, seed=3, crop_share=0.4), np.random.default_rng(3))
    assert len(shared) == 30 and sum(r in ("crop_area", "crop_area+rotate90", "overlap") for r in shared) == 12
    assert shared.count("overlap") == 4
