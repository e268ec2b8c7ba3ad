"""`benchmarks/noise_pairs.py`: the flags today's rules give stored records, without a rescan."""
from __future__ import annotations

import numpy as np

from benchmarks.noise_pairs import current_flags
from scanner.decode import encode_png
from scanner.noise import NoiseOptions
from scanner.records import PanelRecord, records_to_table


def _record(doc: str, sha: str, page: int, box: tuple[float, float, float, float], rgb: np.ndarray,
            parent: str | None = None, flags: tuple[str, ...] = ()) -> PanelRecord:
    return PanelRecord(figure_id=f"{doc}{page}{box}", doc=doc, doc_sha256=sha, page=page, x0=box[0], y0=box[1],
                       x1=box[2], y1=box[3], width=rgb.shape[1], height=rgb.shape[0], image=encode_png(rgb),
                       parent_id=parent, flags=flags)


def test_stored_flags_are_kept_and_the_current_rules_add_theirs() -> None:
    rng = np.random.default_rng(1)
    cover = rng.integers(0, 255, (120, 100, 3), dtype=np.uint8)
    photo = rng.integers(0, 255, (120, 100, 3), dtype=np.uint8)
    label = np.full((60, 40, 3), 255, np.uint8)
    label[10:50, 15:25] = 0
    spot = (50.0, 600.0, 148.0, 728.0)
    records = [
        _record("a.pdf", "1", 9, spot, cover), _record("b.pdf", "2", 9, spot, cover),   # a template's spot
        _record("a.pdf", "1", 3, (60, 200, 160, 320), photo, flags=("compound",)),       # stored flag kept
        _record("b.pdf", "2", 4, (300, 200, 316, 222), label),                           # text drawn as an image
    ]
    flags = current_flags(records_to_table(records), NoiseOptions())
    assert flags == [("boilerplate",), ("boilerplate",), ("compound",), ("text",)]


def test_write_keeps_the_report_rows_todays_rules_keep(tmp_path) -> None:
    """A pair with a plot on paper (a chart now) leaves the written report; a pair of two pictures stays, columns unchanged."""
    import csv

    from benchmarks.noise_pairs import main
    from index.store import FigureStore

    rng = np.random.default_rng(2)
    photo_a = rng.integers(0, 255, (120, 100, 3), dtype=np.uint8)
    photo_b = rng.integers(0, 255, (120, 100, 3), dtype=np.uint8)
    plot = np.full((200, 240, 3), 255, np.uint8)  # axes and a survival-like step curve on white
    plot[10:190, 20:22] = 0
    plot[188:190, 20:230] = 0
    for x in range(24, 230):
        plot[20 + (x - 24) // 30 * 25: 23 + (x - 24) // 30 * 25, x] = (30, 60, 160)
    records = [_record("a.pdf", "1", 2, (60, 200, 160, 320), photo_a), _record("b.pdf", "2", 3, (60, 200, 160, 320), photo_b),
               _record("c.pdf", "3", 4, (60, 200, 220, 333), plot)]
    store = FigureStore.create(tmp_path / "scan" / "store", model_id="m", dim=4)
    store.append(records_to_table(records), rng.normal(size=(3, 4)), model_id="m", run_id="r")
    columns = ["score", "figure_id_a", "figure_id_b", "kind", "doc_a", "page_a", "bbox_a", "doc_b", "page_b", "bbox_b"]
    rows = [{"score": "0.99", "figure_id_a": records[0].figure_id, "figure_id_b": records[1].figure_id},
            {"score": "0.95", "figure_id_a": records[0].figure_id, "figure_id_b": records[2].figure_id}]
    with open(tmp_path / "scan" / "report.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="x")
        writer.writeheader()
        writer.writerows(rows)
    assert main([str(tmp_path / "scan"), "--threshold", "0", "--write", str(tmp_path / "kept.csv")]) == 0
    with open(tmp_path / "kept.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        kept = list(reader)
    assert reader.fieldnames == columns
    assert [(r["figure_id_a"], r["figure_id_b"]) for r in kept] == [(records[0].figure_id, records[1].figure_id)]
