"""The report's `relation` and `channel_of` columns from the store: pieces of one figure, two figures of one
paper, two papers; a channel panel beside its merge."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from embedder.verify import Alignment
from index.store import FigureStore
from jobs.match import MatchResult
from jobs.report_rows import build_report_pairs
from scanner.records import PanelRecord

MERGE = Path(__file__).resolve().parents[2] / "data" / "real-sample" / "images" / "neubias" / "xyc_8bit__membranes_nuclei.png"


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_relation_and_channels_come_from_the_store(tmp_path: Path) -> None:
    # paper one: figure F split into a merge p1 and its red channel p2, and a second figure G; paper two: figure H
    merge = np.asarray(Image.open(MERGE).convert("RGB"))
    noise = [np.random.default_rng(i).integers(0, 255, (40, 50), dtype=np.uint8) for i in range(2)]
    images = [png(merge), png(merge[..., 0]), png(noise[0]), png(noise[1])]
    places = [("p1", "one.pdf", "F"), ("p2", "one.pdf", "F"), ("G", "one.pdf", None), ("H", "two.pdf", None)]
    records = [PanelRecord(figure_id=fid, doc=doc, doc_sha256=f"sha-{doc}", page=1, x0=10.0 * i, y0=0, x1=10.0 * i + 50, y1=40,
                           width=50, height=40, image=images[i], parent_id=parent) for i, (fid, doc, parent) in enumerate(places)]
    store = FigureStore.create(tmp_path / "store", model_id="m", dim=4)
    store.append(records, np.eye(4, dtype=np.float32), model_id="m", run_id="r")
    ids = {r["figure_id"]: r["row_id"] for r in store.read_table(["figure_id", "row_id"]).to_pylist()}
    pairs = [("p1", "p2"), ("p1", "G"), ("p2", "H")]
    n = len(pairs)
    match = MatchResult(a=np.array([ids[a] for a, _ in pairs]), b=np.array([ids[b] for _, b in pairs]), sim=np.full(n, 0.99),
                        score=np.array([0.99, 0.98, 0.97]), group=np.arange(n), candidates=n, head=np.full(n, 0.9),
                        alignment=[Alignment(0.99)] * n)
    got = {(p.a.figure_id, p.b.figure_id): (p.kind, p.relation, p.channel_of)
           for p in build_report_pairs(tmp_path / "store", match, doc_roots={})}
    assert got == {("p1", "p2"): ("intra", "same figure", "b is the red channel of a"), ("p1", "G"): ("intra", "same paper", ""),
                   ("p2", "H"): ("inter", "other paper", "")}
