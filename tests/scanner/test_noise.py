"""The boilerplate rule (`scanner.noise.boilerplate_mask`) and its adapters for records and store tables."""
from __future__ import annotations

import numpy as np

from scanner.noise import (
    NoiseOptions,
    boilerplate_mask,
    flag_boilerplate,
    flag_boilerplate_table,
    image_flags,
    is_bar_piece,
    is_flow_plot,
    is_plot,
    is_small,
    logo_hashes,
    same_spot_hashes,
)
from scanner.records import (
    FLAG_BOILERPLATE,
    FLAG_CHART,
    FLAG_TEXT,
    FLAG_TINY,
    FLAG_UNIFORM,
    PanelRecord,
    records_to_table,
)

LOGO = (50.0, 30.0, 140.0, 57.0)        # 90 x 27 pt: logo-sized
FIGURE = (60.0, 200.0, 460.0, 500.0)    # 400 x 300 pt: a large figure
BANNER = (20.0, 700.0, 590.0, 740.0)    # 570 x 40 pt: a banner strip


def test_a_small_logo_in_three_documents_is_boilerplate() -> None:
    mask = boilerplate_mask(["logo"] * 3 + ["x"], ["a", "b", "c", "a"], [2, 3, 5, 2], [LOGO] * 3 + [FIGURE])
    assert mask == [True, True, True, False]


def test_a_large_figure_in_three_documents_is_reuse_not_boilerplate() -> None:
    assert boilerplate_mask(["fig"] * 3, ["a", "b", "c"], [2, 3, 5], [FIGURE] * 3) == [False, False, False]
    assert boilerplate_mask(["fig"] * 5, ["a"] * 5, [1, 2, 3, 4, 5], [FIGURE] * 5) == [False] * 5  # nor on 5 pages


def test_a_banner_on_four_pages_is_boilerplate_on_three_it_is_not() -> None:
    assert boilerplate_mask(["ban"] * 4, ["a", "a", "b", "b"], [2, 3, 2, 3], [BANNER] * 4) == [True] * 4
    moved = (20.0, 680.0, 590.0, 720.0)  # laid out 20 pt higher in b: not at the same spot (that rule is tested below)
    assert boilerplate_mask(["ban"] * 3, ["a", "a", "b"], [2, 3, 2], [BANNER] * 2 + [moved]) == [False] * 3
    assert boilerplate_mask(["ban"] * 3, ["a", "a", "b"], [2, 3, 2], [BANNER] * 2 + [moved], min_pages=3) == [True] * 3


def test_a_logo_on_page_one_of_two_documents_is_boilerplate_even_where_the_layout_moved_it() -> None:
    shifted = (300.0, 96.0, 390.0, 123.0)  # the same badge, placed lower and further right in the other paper
    assert boilerplate_mask(["logo"] * 2, ["a", "b"], [1, 1], [LOGO, shifted]) == [True, True]
    assert boilerplate_mask(["cover"] * 2, ["a", "b"], [1, 1], [(40, 600, 140, 740), (420, 80, 520, 220)]) == [True] * 2
    assert boilerplate_mask(["logo"] * 2, ["a", "b"], [1, 1], [LOGO, LOGO]) == [True, True]


def test_a_logo_in_the_header_band_of_any_page_is_boilerplate() -> None:
    assert boilerplate_mask(["logo"] * 2, ["a", "b"], [4, 7], [LOGO, (400.0, 20.0, 480.0, 60.0)]) == [True, True]


def test_a_small_panel_reused_in_the_body_of_two_papers_is_reuse_not_boilerplate() -> None:
    blot = (90.0, 300.0, 210.0, 340.0)  # 120 x 40 pt: logo-sized, but in the body of page 3
    assert boilerplate_mask(["blot"] * 2, ["a", "b"], [3, 5], [blot, (300.0, 420.0, 420.0, 460.0)]) == [False] * 2
    assert boilerplate_mask(["logo"] * 2, ["a", "a"], [1, 1], [LOGO, LOGO]) == [False, False]  # one document only
    assert boilerplate_mask(["fig"] * 2, ["a", "b"], [1, 1], [FIGURE, FIGURE]) == [False, False]  # not logo-sized


def test_logo_hashes_need_a_small_image_in_a_template_zone_of_two_documents() -> None:
    found = logo_hashes([
        ("logo", "a.pdf", 1, (50, 30, 140, 57)), ("logo", "b.pdf", 1, (300, 90, 390, 117)),     # page 1, moved
        ("head", "a.pdf", 6, (50, 20, 140, 47)), ("head", "b.pdf", 2, (50, 20, 140, 47)),       # header band
        ("panel", "a.pdf", 2, (60, 300, 160, 380)), ("panel", "b.pdf", 4, (300, 120, 400, 200)),  # reused panel
        ("big", "a.pdf", 1, (60, 300, 460, 600)), ("big", "b.pdf", 1, (60, 300, 460, 600)),       # too big
    ])
    assert found == {"logo", "head"}


def _record(doc: str, page: int, bbox: tuple[float, float, float, float], image: bytes,
            flags: tuple[str, ...] = ()) -> PanelRecord:
    x0, y0, x1, y1 = bbox
    return PanelRecord(figure_id=f"{doc}-{page}-{x0}", doc=doc, doc_sha256="s" + doc, page=page, x0=x0, y0=y0,
                       x1=x1, y1=y1, width=10, height=10, image=image, flags=flags)


def _corpus() -> list[PanelRecord]:
    """A logo on page 2 of three papers (once already tiny) and a large figure copied into the same three."""
    return [r for d in "abc" for r in (_record(d, 2, LOGO, b"logo", (FLAG_TINY,) if d == "a" else ()),
                                       _record(d, 3, FIGURE, b"figure"))]


def test_records_and_tables_get_the_same_flags() -> None:
    flagged = flag_boilerplate(_corpus())
    assert [(r.doc, r.page, r.flags) for r in flagged] == [
        ("a", 2, (FLAG_TINY, FLAG_BOILERPLATE)), ("a", 3, ()), ("b", 2, (FLAG_BOILERPLATE,)), ("b", 3, ()),
        ("c", 2, (FLAG_BOILERPLATE,)), ("c", 3, ())]
    table = flag_boilerplate_table(records_to_table(_corpus()))
    assert table.column("flags").to_pylist() == [list(r.flags) for r in flagged]


def test_a_table_without_boilerplate_is_returned_as_it_is() -> None:
    table = records_to_table([_record("a", 3, FIGURE, b"figure")])
    assert flag_boilerplate_table(table) is table


def test_per_image_flags_tell_a_blank_a_gradient_bar_and_a_dim_real_picture_apart() -> None:
    from scanner.noise import NoiseOptions, image_flags
    from training.synth import generate

    rng = np.random.default_rng(0)
    opts = NoiseOptions()
    blank = np.clip(250 + rng.normal(0, 1.5, (200, 300, 3)), 0, 255).astype(np.uint8)  # a white fill, JPEG-ish noise
    ramp = np.linspace([30, 120, 200], [160, 220, 250], 300)[:, None, :].repeat(40, axis=1).astype(np.uint8)
    blot = np.asarray(generate("western_blot", seed=3, size=(256, 96)))
    dim = (np.asarray(generate("fluorescence", seed=5, size=(200, 160))) // 8).astype(np.uint8)  # raw, unstretched
    assert image_flags(blank, opts) == [FLAG_UNIFORM]
    assert image_flags(ramp, opts) == [FLAG_CHART]          # a bar of a bar chart, drawn as an image
    assert image_flags(ramp.transpose(1, 0, 2), opts) == [FLAG_CHART]
    assert image_flags(blot, opts) == []
    assert image_flags(dim, opts) == []


def test_a_small_image_at_the_same_spot_in_two_papers_is_template_on_any_page() -> None:
    icon = (58.0, 234.0, 81.0, 257.0)  # a 23 pt review-status icon, page 7 of one paper, page 10 of another
    assert boilerplate_mask(["icon"] * 2, ["a.pdf", "b.pdf"], [7, 10], [icon, icon]) == [True, True]
    nudged = (58.5, 234.6, 81.5, 257.6)   # the same template, rounding of another PDF producer
    assert boilerplate_mask(["icon"] * 2, ["a.pdf", "b.pdf"], [7, 10], [icon, nudged]) == [True, True]
    # the same paper twice (byte-identical files, two paths): one content, so reuse, not template
    assert boilerplate_mask(["icon"] * 2, ["a.pdf", "b.pdf"], [7, 7], [icon, icon], contents=["x", "x"]) == [False, False]
    # laid out anew in the other paper, or a large figure alone at the same spot: reuse
    assert boilerplate_mask(["icon"] * 2, ["a.pdf", "b.pdf"], [7, 10], [icon, (300.0, 400.0, 323.0, 423.0)]) == [False] * 2
    assert boilerplate_mask(["fig"] * 2, ["a.pdf", "b.pdf"], [9, 9], [FIGURE, FIGURE]) == [False, False]
    # two image files of one small picture (a PNG and a TIFF): a box is the image's size, no template
    assert boilerplate_mask(["pic"] * 2, ["x.png", "y.tif"], [2, 2], [(0, 0, 120, 90)] * 2) == [False, False]


def test_a_page_sharing_three_images_at_the_same_spots_with_another_paper_is_a_publisher_page() -> None:
    covers = [(50.0, 88.0, 148.0, 215.0), (262.0, 56.0, 452.0, 245.0), (398.0, 543.0, 695.0, 810.0)]  # 98-297 pt
    hashes = ["c1", "c2", "c3"] * 2
    mask = boilerplate_mask(hashes, ["a.pdf"] * 3 + ["b.pdf"] * 3, [9] * 6, covers * 2)
    assert mask == [True] * 6
    # two large figures at the same spots are not enough (nor the same paper twice)
    assert boilerplate_mask(["c2", "c3"] * 2, ["a.pdf", "a.pdf", "b.pdf", "b.pdf"], [9] * 4, covers[1:] * 2) == [False] * 4
    assert boilerplate_mask(hashes, ["a.pdf"] * 3 + ["b.pdf"] * 3, [9] * 6, covers * 2, contents=["x"] * 6) == [False] * 6


def test_a_wide_header_logo_on_two_pages_of_one_paper_is_boilerplate() -> None:
    header = (388.0, 29.0, 565.0, 63.0)  # 177 x 34 pt: wider than a logo, a banner in the header band
    assert boilerplate_mask(["bmc"] * 2, ["a", "a"], [1, 2], [header, header]) == [True, True]
    assert boilerplate_mask(["bmc"] * 2, ["a", "b"], [1, 1], [header, (393.0, 40.0, 564.0, 70.0)]) == [True, True]
    assert boilerplate_mask(["bmc"], ["a"], [1], [header]) == [False]  # once: nothing says template


def test_text_drawn_as_an_image_is_flagged_text_only_when_small_on_the_page() -> None:
    opts = NoiseOptions()
    glyphs = np.full((366, 272, 3), 255, np.uint8)
    glyphs[100:260, 60:90] = 0   # "-0.2" in one ink, no anti-aliasing
    glyphs[200:260, 120:200] = 0
    assert FLAG_TEXT in image_flags(glyphs, opts, (16.0, 22.0))
    assert FLAG_TEXT not in image_flags(glyphs, opts, (160.0, 220.0))  # a large two-colour image: a scan, not a label
    assert FLAG_TEXT not in image_flags(glyphs, opts)                  # image files have no page size


def test_a_bar_cut_from_a_chart_is_a_chart_piece_but_a_picture_or_plot_is_not() -> None:
    opts = NoiseOptions()
    bar = np.full((400, 80, 3), 255, np.uint8)
    bar[30:, 6:74] = (70, 20, 90)           # the filled bar, nearly the height of the piece
    bar[10:30, 39:41] = 0                   # its error bar
    bar[200:215, 25:55] = 255               # a number drawn inside
    assert is_bar_piece(bar, opts)
    assert FLAG_CHART in image_flags(bar, opts, (38.0, 190.0), piece=True)
    assert FLAG_CHART not in image_flags(bar, opts, (38.0, 190.0))  # a whole image stays matchable
    rng = np.random.default_rng(0)
    picture = np.clip(rng.normal(120, 40, (200, 200, 3)), 0, 255).astype(np.uint8)
    assert not is_bar_piece(picture, opts)
    fluo = np.zeros((200, 200, 3), np.uint8)  # sparse bright cells on black: flat, but a picture
    fluo[50:60, 50:60, 2] = 255
    fluo[120:135, 140:150, 2] = 200
    assert not is_bar_piece(fluo, opts)
    plot = np.full((200, 200, 3), 255, np.uint8)  # a line plot on white paper
    plot[np.arange(200), np.arange(200)] = 0
    assert not is_bar_piece(plot, opts)


def test_bars_of_different_heights_cut_from_a_chart_are_a_chart_piece() -> None:
    """Paper above the shorter bars does not hide that every column is one flat colour (a real bar piece, 75 x 238 px)."""
    opts = NoiseOptions()
    bars = np.full((238, 75, 3), 255, np.uint8)
    bars[:, 0:18] = (10, 10, 10)              # control bar, full height
    bars[110:, 18:40] = (70, 20, 90)          # a shorter bar ...
    bars[90:110, 28:30] = 0                   # ... its error bar
    bars[80:, 40:62] = (120, 250, 40)         # a taller one
    bars[60:80, 50:52] = 0
    bars[80:90, 20:36] = 0                    # "###" above a bar
    assert is_bar_piece(bars, opts)
    assert FLAG_CHART in image_flags(bars, opts, (18.0, 57.0), piece=True)
    rng = np.random.default_rng(1)
    strip = np.full((116, 211, 3), 235, np.uint8)  # a blot strip: two dark bands on a grey membrane, grain
    strip[40:70, 10:95] = 60
    strip[40:70, 110:200] = 70
    strip = np.clip(strip + rng.normal(0, 6, strip.shape), 0, 255).astype(np.uint8)
    assert not is_bar_piece(strip, opts)


def _line_plot() -> np.ndarray:
    """Axes, a curve and scatter dots on white."""
    plot = np.full((400, 500, 3), 255, np.uint8)
    plot[20:380, 40:43] = 0
    plot[377:380, 40:480] = 0
    xs = np.arange(45, 480)
    plot[(370 - 300 * (1 - np.exp(-(xs - 45) / 80.0))).astype(int), xs] = (20, 20, 140)
    for x, y in [(100, 300), (200, 200), (300, 150), (400, 120)]:
        plot[y - 6:y + 6, x - 6:x + 6] = 0
    return plot


def test_a_plot_on_paper_is_a_chart_but_a_picture_on_paper_is_not() -> None:
    opts = NoiseOptions()
    plot = _line_plot()
    assert is_plot(plot, opts) and not is_flow_plot(plot, opts)
    assert not is_plot(plot, NoiseOptions(flag_plots=False))  # the switch
    rng = np.random.default_rng(0)
    scan = np.full((400, 500, 3), 255, np.uint8)  # a CT/PET-like picture filling a third of its box on paper
    yy, xx = np.mgrid[:400, :500]
    body = (yy - 200) ** 2 / 120**2 + (xx - 250) ** 2 / 150**2 <= 1
    scan[body] = np.clip(rng.normal(150, 30, (int(body.sum()), 3)), 0, 255).astype(np.uint8)
    assert not is_plot(scan, opts)
    assert not is_plot(np.zeros((200, 200, 3), np.uint8), opts)  # no paper at all: a picture


def _axes(side: int = 300) -> np.ndarray:
    plot = np.full((side, side, 3), 255, np.uint8)
    plot[10:side - 30, 30:32] = 0
    plot[side - 32:side - 30, 30:side - 10] = 0
    return plot


def test_flow_cytometry_plots_on_paper_are_not_charts_but_charts_in_several_colours_are() -> None:
    """A dot cloud, nested contours and a pseudocolour density blob are flow plots; a four-colour line plot is a chart."""
    opts = NoiseOptions()
    rng = np.random.default_rng(3)
    dots = _axes()  # 1,500 events, one black pixel each, in two populations
    for centre, spread in (((110, 120), 25), ((200, 190), 18)):
        ys, xs = (np.clip(rng.normal(c, spread, 750), 40, 260).astype(int) for c in centre)
        dots[ys, xs] = 0
    contours = _axes()  # three contour levels of one population, 1-px lines
    yy, xx = np.mgrid[:300, :300]
    level = ((yy - 140) / 60.0) ** 2 + ((xx - 160) / 80.0) ** 2
    for r in (1.0, 0.55, 0.2):
        contours[np.abs(np.sqrt(level) - r) < 0.012] = (150, 30, 30)
    density = _axes()  # a pseudocolour blob: blue at its rim through green and yellow to red at its peak
    d = np.clip(1 - np.sqrt(level) / 0.45, 0, 1)
    hue = (0.66 * (1 - d[d > 0]) * 255).astype(np.uint8)
    from PIL import Image
    hsv = np.stack([hue, np.full_like(hue, 255), np.full_like(hue, 230)], -1)[None]
    density[d > 0] = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))[0]
    for name, flow in (("dots", dots), ("contours", contours), ("density", density)):
        assert is_flow_plot(flow, opts), name
        assert not is_plot(flow, opts), name
        assert not is_plot(flow, NoiseOptions(flag_plots=False)), name
    series = _axes()  # four curves in red, green, blue and black: a chart's few separate colours
    xs = np.arange(35, 290)
    for k, colour in enumerate([(220, 30, 30), (30, 160, 30), (30, 30, 220), (0, 0, 0)]):
        ys = (240 - (k + 1) * 40 * (1 - np.exp(-(xs - 35) / 50.0))).astype(int)
        for dy in range(3):
            series[ys + dy, xs] = colour
    assert not is_flow_plot(series, opts)
    assert is_plot(series, opts)


def test_an_icon_in_the_same_column_of_two_papers_at_another_height_is_template() -> None:
    """A template's icon (F1000's 23 pt review icon) beside sections that start at other heights."""
    high, low = (57.60, 256.31, 80.85, 279.56), (57.60, 353.48, 80.85, 376.73)
    assert boilerplate_mask(["icon"] * 2, ["a.pdf", "b.pdf"], [12, 8], [high, low]) == [True, True]
    # another column, another size, or larger than an icon: laid out anew, reuse
    assert boilerplate_mask(["icon"] * 2, ["a.pdf", "b.pdf"], [12, 8], [high, (300.0, 353.48, 323.25, 376.73)]) == [False] * 2
    assert boilerplate_mask(["icon"] * 2, ["a.pdf", "b.pdf"], [12, 8], [high, (57.60, 353.48, 80.85, 390.0)]) == [False] * 2
    panel_a, panel_b = (57.6, 100.0, 157.6, 190.0), (57.6, 400.0, 157.6, 490.0)  # 100 pt panels, one column
    assert boilerplate_mask(["p"] * 2, ["a.pdf", "b.pdf"], [3, 5], [panel_a, panel_b]) == [False] * 2
    # one paper (two files of one content): reuse
    assert boilerplate_mask(["icon"] * 2, ["a.pdf", "b.pdf"], [12, 8], [high, low], contents=["x", "x"]) == [False] * 2


def _same_spot_hashes_by_every_pair(hashes, contents, pages, boxes, min_page_images=3) -> set[str]:
    """The rule of `same_spot_hashes` as first written: every pair of a hash's placements, every page pair held."""
    where: dict[str, list] = {}
    for h, c, p, b in zip(hashes, contents, pages, boxes):
        where.setdefault(h, []).append((c, p, b))
    flagged: set[str] = set()
    page_pairs: dict[tuple, set[str]] = {}
    for h, places in where.items():
        for i, (ci, pi, bi) in enumerate(places):
            for cj, pj, bj in places[i + 1:]:
                if ci != cj and all(abs(u - v) <= 1.0 for u, v in zip(bi, bj)):
                    if is_small(bi):
                        flagged.add(h)
                    page_pairs.setdefault((min((ci, pi), (cj, pj)), max((ci, pi), (cj, pj))), set()).add(h)
                elif (ci != cj and max(bi[2] - bi[0], bi[3] - bi[1]) <= 80.0 and abs(bi[0] - bj[0]) <= 1.0
                      and abs(bi[2] - bj[2]) <= 1.0 and abs((bi[3] - bi[1]) - (bj[3] - bj[1])) <= 1.0):
                    flagged.add(h)
    for shared in page_pairs.values():
        if len(shared) >= min_page_images:
            flagged |= shared
    return flagged


def test_same_spot_hashes_flag_what_every_pair_of_placements_would() -> None:
    """Random layouts of 40 papers (template slots, a back page of three covers, icons in one column at
    several heights, nudged boxes, one content under two names): the fast rule flags exactly what
    comparing every pair of placements flags."""
    rng = np.random.default_rng(7)
    slots = [(50.0, 30.0, 140.0, 57.0), (58.0, 234.0, 81.0, 257.0), (60.0, 200.0, 460.0, 500.0),
             (262.0, 56.0, 452.0, 245.0), (398.0, 543.0, 695.0, 810.0), (20.0, 700.0, 590.0, 740.0)]
    icon, far, broken = (58.0, 234.0, 81.0, 257.0), (300.0, 234.0, 323.0, 257.0), (float("nan"), 234.0, 81.0, 257.0)
    placed = (["icon"] * 4, ["a", "c", "d", "b"], [7] * 4, [icon, far, broken, icon])  # a box without a left edge
    assert same_spot_hashes(*placed) == _same_spot_hashes_by_every_pair(*placed) == {"icon"}  # does not hide a and b
    for trial in range(30):
        hashes, contents, pages, boxes = [], [], [], []
        for doc in range(40):
            for _ in range(int(rng.integers(1, 8))):
                x0, y0, x1, y1 = slots[int(rng.integers(len(slots)))]
                if rng.random() < 0.3:  # another height in the same column, or a producer's rounding
                    dy = float(rng.choice([0.0, 0.6, 90.0]))
                    x0, y0, x1, y1 = x0 + float(rng.choice([0.0, 0.4, 1.0, 1.5])), y0 + dy, x1, y1 + dy
                if rng.random() < 0.02:  # a box a broken PDF gave no left edge: matches nothing, stops nothing
                    x0 = float("nan")
                hashes.append(f"h{int(rng.integers(12))}")
                contents.append(f"c{doc // 2 if doc < 4 else doc}")  # papers 0/1 and 2/3: byte-identical pairs
                pages.append(int(rng.integers(1, 4)))
                boxes.append((x0, y0, x1, y1))
            if rng.random() < 0.15:  # the journal's back page: covers at three slots, one of them at times moved
                for k, slot in enumerate(slots[2:5]):
                    moved = 2.0 if rng.random() < 0.3 else 0.0
                    hashes.append(f"cover{k}" if rng.random() < 0.8 else f"h{k}")
                    contents.append(f"c{doc}")
                    pages.append(9)
                    boxes.append((slot[0] + moved, slot[1], slot[2] + moved, slot[3]))
        assert same_spot_hashes(hashes, contents, pages, boxes) == _same_spot_hashes_by_every_pair(
            hashes, contents, pages, boxes), trial


def test_a_logo_in_thousands_of_papers_costs_a_comparison_a_placement_not_a_pair(monkeypatch) -> None:
    """Three journal logos at one spot on page 1 of 3,000 papers, and a figure reused at one spot in 300:
    n²/2 place pairs (4.5 million) were compared and held as page pairs; now ~n."""
    import scanner.noise as noise

    calls = []
    same_spot = noise._same_spot
    monkeypatch.setattr(noise, "_same_spot", lambda a, b, tol=noise.SAME_SPOT_PT: calls.append(1) or same_spot(a, b, tol))
    n = 3000
    hashes = [f"logo{i % 3}" for i in range(n)] + ["figure"] * 300
    boxes = [LOGO] * n + [FIGURE] * 300
    flagged = same_spot_hashes(hashes, [f"p{i}" for i in range(n)] + [f"p{i}" for i in range(300)],
                               [1] * n + [5] * 300, boxes)
    assert flagged == {"logo0", "logo1", "logo2"}  # a large figure alone at one spot is reuse
    assert len(calls) < 2 * 300 ** 2 // 2 + 10 * n  # the figure's pairs are compared (few pages hold 3 images) ...
    calls.clear()
    same_spot_hashes(hashes[:n], [f"p{i}" for i in range(n)], [1] * n, boxes[:n])
    assert len(calls) <= 3  # ... a logo's first pair settles it
