"""Bad input never raises: one-line named errors, and whatever is readable is still extracted."""
from __future__ import annotations

from pathlib import Path

import pytest

from scanner.decode import decode_png
from scanner.extract import DocumentTimeout, ExtractLimits, extract_document
from tests.scanner import pdf_factory as F


def one_line(errors: list) -> None:
    for e in errors:
        assert "\n" not in e.error and e.error


def test_zero_byte(tmp_path: Path) -> None:
    res = extract_document(F.zero_byte(tmp_path / "empty.pdf"), tmp_path)
    assert res.records == []
    assert [(e.input, e.stage) for e in res.errors] == [("empty.pdf", "open")]
    assert "empty" in res.errors[0].error


def test_not_a_pdf_with_a_pdf_name(tmp_path: Path) -> None:
    res = extract_document(F.not_a_pdf(tmp_path / "paper.pdf"), tmp_path)
    assert res.records == []
    (err,) = res.errors
    assert err.stage == "open" and "not a PDF" in err.error and "<html>" in err.error


def test_png_named_pdf_is_read_as_an_image(tmp_path: Path) -> None:
    img = F.texture(50, 70, 1)
    path = tmp_path / "figure.pdf"
    path.write_bytes(F.png_bytes(img))
    res = extract_document(path, tmp_path)
    assert res.errors == []
    assert (decode_png(res.records[0].image) == img).all()


def test_encrypted(tmp_path: Path) -> None:
    res = extract_document(F.encrypted(tmp_path / "locked.pdf", F.texture(40, 40, 2)), tmp_path)
    assert res.records == []
    (err,) = res.errors
    assert err.stage == "open" and "encrypted" in err.error


def test_truncated(tmp_path: Path) -> None:
    good = F.simple_pdf(tmp_path / "good.pdf", [F.texture(120, 160, 3)], pages=3)
    res = extract_document(F.truncated(tmp_path / "cut.pdf", good, keep=0.5), tmp_path)
    assert res.errors, "a truncated PDF must be reported"
    one_line(res.errors)
    assert all(e.input == "cut.pdf" for e in res.errors)


def test_broken_xref_is_repaired_reported_and_extracted(tmp_path: Path) -> None:
    img = F.texture(80, 100, 4)
    good = F.simple_pdf(tmp_path / "good.pdf", [img], pages=2)
    res = extract_document(F.broken_xref(tmp_path / "broken.pdf", good), tmp_path)
    assert [e.stage for e in res.errors] == ["repair"]
    one_line(res.errors)
    assert len(res.records) == 2
    assert all((decode_png(r.image) == img).all() for r in res.records)


def test_decompression_bomb_is_refused_and_the_rest_extracted(tmp_path: Path) -> None:
    img = F.texture(60, 90, 5)
    res = extract_document(F.bomb_pdf(tmp_path / "bomb.pdf", img), tmp_path, ExtractLimits(max_image_pixels=10_000_000))
    (err,) = res.errors
    assert err.stage == "decode" and "decompression bomb" in err.error and "60000x60000" in err.error
    (rec,) = res.records
    assert (decode_png(rec.image) == img).all()


def test_absurd_page_count_is_capped(tmp_path: Path) -> None:
    path = F.simple_pdf(tmp_path / "long.pdf", [F.texture(40, 40, 6)], pages=12)
    res = extract_document(path, tmp_path, ExtractLimits(max_pages=5))
    (err,) = res.errors
    assert err.stage == "pages" and "12 pages" in err.error and "5" in err.error
    assert res.pages == 5
    assert sorted({r.page for r in res.records}) == [1, 2, 3, 4, 5]


def test_image_file_bomb(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    from PIL import Image

    Image.new("1", (20_000, 20_000)).save(path)  # compresses to almost nothing
    res = extract_document(path, tmp_path, ExtractLimits(max_image_pixels=1_000_000))
    assert res.records == []
    assert "decompression bomb" in res.errors[0].error


def test_timeout_is_reported(tmp_path: Path) -> None:
    path = F.simple_pdf(tmp_path / "slow.pdf", [F.texture(400, 500, 7)], pages=40)
    res = extract_document(path, tmp_path, ExtractLimits(timeout_s=0.05))
    assert res.errors[-1].stage == "timeout"
    assert res.pages < 40


def test_the_page_deadline_ends_a_pdf_where_no_alarm_can_ring(tmp_path: Path) -> None:
    """Off the main thread there is no alarm signal; the deadline checked before each page still ends it."""
    from concurrent.futures import ThreadPoolExecutor

    path = F.simple_pdf(tmp_path / "slow.pdf", [F.texture(400, 500, 7)], pages=40)
    with ThreadPoolExecutor(1) as pool:
        res = pool.submit(extract_document, path, tmp_path, ExtractLimits(timeout_s=0.05)).result()
    assert res.errors[-1].stage == "timeout"
    assert res.pages < 40


def test_a_timeout_inside_a_decoder_is_a_timeout_not_a_broken_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget can run out while an image decodes; that must end the document, not be logged as a bad stream."""
    import scanner.pdf

    def out_of_time(*args: object, **kwargs: object) -> None:
        raise DocumentTimeout()

    monkeypatch.setattr(scanner.pdf, "pixmap_to_rgb", out_of_time)
    path = F.simple_pdf(tmp_path / "two.pdf", [F.texture(200, 150, 1)], pages=2)
    res = extract_document(path, tmp_path, ExtractLimits(timeout_s=60))
    assert [e.stage for e in res.errors] == ["timeout"]
    assert res.records == []
