"""split_figure / classify_piece on small synthetic figures (image panels + a chart + labels)."""
from __future__ import annotations

import numpy as np

from scanner.panels import split_panels
from scanner.pieces import KIND_IMAGE, classify_piece, split_figure


def _figure() -> np.ndarray:
    rng = np.random.default_rng(0)
    fig = np.full((300, 420, 3), 255, dtype=np.uint8)
    fig[10:140, 10:200] = rng.integers(0, 255, (130, 190, 3), dtype=np.uint8)   # micrograph
    fig[10:140, 220:410] = rng.integers(60, 200, (130, 190, 3), dtype=np.uint8)  # micrograph
    # chart: axes and two flat bars on white
    fig[160:290, 20:22] = 0
    fig[288:290, 20:400] = 0
    fig[200:288, 60:100] = (200, 30, 30)
    fig[230:288, 140:180] = (30, 150, 30)
    return fig


def test_classify_piece() -> None:
    fig = _figure()
    assert classify_piece(fig[10:140, 10:200]) == KIND_IMAGE
    assert classify_piece(fig[160:290, 20:400]) != KIND_IMAGE


def test_chart_does_not_veto_image_panels() -> None:
    fig = _figure()
    pieces = split_figure(fig)
    images = [p.box for p in pieces if p.kind == KIND_IMAGE]
    assert (10, 10, 200, 140) in images and (220, 10, 410, 140) in images
    assert all(p.kind != KIND_IMAGE for p in pieces if p.box[1] >= 150)
    assert sorted(split_panels(fig)) == sorted(images)


def test_a_stained_section_on_its_pale_slide_and_a_dot_plot_stay_whole() -> None:
    """No paper-white gutters (a DAB section) or no picture among the pieces (a flow plot): not a compound figure."""
    from training.data import all_kinds, specimen_image

    kinds_seen = set()
    for seed in range(5000, 5040):
        kind, image = specimen_image(all_kinds(), seed, 0, 200, 260)[:2]
        rgb = np.asarray(image.convert("RGB"))
        assert split_figure(rgb, classify_strict=False) == [], (seed, kind)
        kinds_seen.add(kind)
    assert {"histology_dab", "flow"} <= kinds_seen


def _ct_like(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A scan on black: a bright, textured disc (tissue 230-255 in places, like a lung-window CT)."""
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (0.45 * min(h, w)) ** 2
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[disc] = rng.integers(120, 255, (int(disc.sum()), 1), dtype=np.uint8)
    return img


def test_scans_tiled_with_hairline_white_gutters_are_split() -> None:
    """Two CT-like tiles 3 px apart (narrower than the strict gutter, too little paper for the loose split)."""
    rng = np.random.default_rng(3)
    fig = np.full((200, 403, 3), 255, dtype=np.uint8)
    fig[:, :200] = _ct_like(rng, 200, 200)
    fig[:, 203:] = _ct_like(rng, 200, 200)
    boxes = sorted(p.box for p in split_figure(fig) if p.kind == KIND_IMAGE)
    assert boxes == [(0, 0, 200, 200), (203, 0, 403, 200)]


def test_one_scan_with_a_white_line_across_it_and_tiled_charts_stay_whole() -> None:
    """A white line touching one picture's border is a margin, not a gutter; chart tiles are not pictures."""
    rng = np.random.default_rng(4)
    one = _ct_like(rng, 200, 200)
    one[:, -3:] = 255
    assert split_figure(one) == []
    charts = np.full((200, 403, 3), 255, dtype=np.uint8)
    charts[:, 200:203] = 255
    charts[180:182, 10:190] = 0
    charts[100:180, 40:80] = (200, 30, 30)
    charts[180:182, 213:393] = 0
    charts[60:180, 250:290] = (30, 30, 200)
    assert all(p.kind != KIND_IMAGE for p in split_figure(charts))
