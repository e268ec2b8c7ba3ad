"""The boilerplate rule (`scanner.noise.boilerplate_mask`) and its adapters for records and store tables."""
from __future__ import annotations

from scanner.noise import boilerplate_mask, flag_boilerplate, flag_boilerplate_table, logo_hashes
from scanner.records import FLAG_BOILERPLATE, FLAG_TINY, PanelRecord, records_to_table

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
    assert boilerplate_mask(["ban"] * 3, ["a", "a", "b"], [2, 3, 2], [BANNER] * 3) == [False] * 3
    assert boilerplate_mask(["ban"] * 3, ["a", "a", "b"], [2, 3, 2], [BANNER] * 3, min_pages=3) == [True] * 3


def test_a_logo_on_page_one_of_two_documents_is_boilerplate_elsewhere_it_is_not() -> None:
    moved = (50.5, 30.0, 140.5, 57.0)  # within the 2 pt tolerance
    assert boilerplate_mask(["logo"] * 2, ["a", "b"], [1, 1], [LOGO, moved]) == [True, True]
    assert boilerplate_mask(["logo"] * 2, ["a", "b"], [2, 2], [LOGO, moved]) == [False, False]  # not the first page
    assert boilerplate_mask(["logo"] * 2, ["a", "b"], [1, 1], [LOGO, (300, 400, 390, 427)]) == [False, False]
    assert boilerplate_mask(["fig"] * 2, ["a", "b"], [1, 1], [FIGURE, FIGURE]) == [False, False]


def test_logo_hashes_need_the_same_small_spot_in_two_documents() -> None:
    found = logo_hashes([
        ("logo", "a.pdf", (50, 30, 140, 57)), ("logo", "b.pdf", (50.5, 30, 140.5, 57)),      # same spot: logo
        ("panel", "a.pdf", (60, 300, 160, 380)), ("panel", "b.pdf", (300, 120, 400, 200)),  # reused panel elsewhere
        ("big", "a.pdf", (60, 300, 460, 600)), ("big", "b.pdf", (60, 300, 460, 600)),       # too big to be a logo
    ])
    assert found == {"logo"}


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
