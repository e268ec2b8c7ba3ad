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
