"""Cross-check against the synthetic-paper generator's own record of every placed panel."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scanner.discover import find_inputs
from scanner.extract import extract_document
from scanner.noise import flag_boilerplate, pixel_hash
from scanner.records import FLAG_COMPOUND
from training import corpus


@pytest.mark.slow
def test_every_generated_panel_is_found_with_its_bbox(tmp_path: Path) -> None:
    import pandas as pd

    corpus.make_corpus(tmp_path, corpus.CorpusConfig(docs=10, reuse=3, seed=3, workers=1, images=False))
    truth = pd.read_csv(tmp_path / "panels.csv")
    root = tmp_path / "pdf"
    records = []
    for path in find_inputs(root):
        res = extract_document(path, root)
        assert res.errors == [], res.errors
        records += res.records
    records = flag_boilerplate(records)
    matchable = [r for r in records if not r.is_noise and FLAG_COMPOUND not in r.flags]
    found = 0
    for row in truth.itertuples():
        want = np.array([float(v) for v in row.bbox.split()])
        boxes = [np.array(r.bbox) for r in matchable if r.doc == row.doc and r.page == row.page]
        if boxes and min(np.abs(b - want).max() for b in boxes) <= 3.0:
            found += 1
    assert found >= 0.95 * len(truth), (found, len(truth))
    assert len(matchable) <= len(truth) + max(2, len(truth) // 20)  # no over-splitting
    # The publisher logo (first page, top margin, the same in every paper of a publisher).
    logos: dict[str, set[str]] = {}
    for r in records:
        if r.y1 < 80 and r.page == 1:
            logos.setdefault(pixel_hash(r.image), set()).add(r.doc)
    shared = {h for h, docs in logos.items() if len(docs) >= 2}
    assert shared
    assert all(r.is_noise for r in records if pixel_hash(r.image) in shared)
