"""The report's `relation` and `channel_of` columns from the store: pieces of one figure, two figures of one
paper, two papers; a channel panel beside its merge."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from embedder.verify import Alignment
from index.store import FigureStore
from jobs.channels import channel_of
from jobs.match import MatchResult
from jobs.report import ReportPair, estimate_transform, pair_csv_row
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


def test_only_the_cards_get_pictures_and_every_pair_keeps_its_columns(tmp_path: Path) -> None:
    # the best pair gets the one card; the others keep every column, checked against the functions on the images:
    # a red channel mirrored beside its merge, two noise fields the pixel check did not place, an unreadable panel
    merge = np.asarray(Image.open(MERGE).convert("RGB"))
    noise = np.random.default_rng(0).integers(0, 255, (40, 50), dtype=np.uint8)
    images = {"m": png(merge), "r": png(merge[:, ::-1, 0]), "n": png(noise), "f": png(noise[::-1]), "x": b"not an image"}
    records = [PanelRecord(figure_id=fid, doc=f"{fid}.pdf", doc_sha256=f"sha-{fid}", page=1, x0=0, y0=0, x1=50, y1=40,
                           width=50, height=40, image=image) for fid, image in images.items()]
    store = FigureStore.create(tmp_path / "store", model_id="m", dim=5)
    store.append(records, np.eye(5, dtype=np.float32), model_id="m", run_id="r")
    ids = {r["figure_id"]: r["row_id"] for r in store.read_table(["figure_id", "row_id"]).to_pylist()}
    pairs = [("m", "r"), ("n", "f"), ("m", "x")]
    match = MatchResult(a=np.array([ids[a] for a, _ in pairs]), b=np.array([ids[b] for _, b in pairs]),
                        sim=np.full(3, 0.9), score=np.array([0.93, 0.99, 0.95]), group=np.arange(3), candidates=3,
                        head=np.full(3, 0.9), alignment=[Alignment(0.99, transform="flip_h"), None, None])

    def report(cards: int | None) -> dict[tuple[str, str], ReportPair]:
        return {(p.a.figure_id, p.b.figure_id): p
                for p in build_report_pairs(tmp_path / "store", match, doc_roots={}, cards=cards)}

    everything, one_card = report(None), report(1)
    assert [pair_csv_row(p) for p in everything.values()] == [pair_csv_row(p) for p in one_card.values()]
    assert one_card[("m", "r")].channel_of == "b is the red channel of a"  # b mirrored back is a's red channel
    assert channel_of(everything[("m", "r")].a.thumbnail, everything[("m", "r")].b.thumbnail, "flip_h") == \
        one_card[("m", "r")].channel_of
    estimated = estimate_transform(Image.open(io.BytesIO(images["n"])), Image.open(io.BytesIO(images["f"])))
    assert (one_card[("n", "f")].transform, one_card[("n", "f")].extra["alignment"]) == \
        (estimated[0], f"{estimated[1]:.2f}")
    assert estimated[0] == "flip_v"
    assert one_card[("m", "x")].transform is None and one_card[("m", "x")].channel_of == ""  # nothing to compare
    assert one_card[("n", "f")].a.thumbnail and one_card[("n", "f")].b.thumbnail  # the best pair: its card
    assert not one_card[("m", "r")].a.thumbnail and not one_card[("m", "r")].b.thumbnail
    assert all(p.a.thumbnail and p.b.thumbnail for k, p in everything.items() if "x" not in k)
    assert len({p.pair_key for p in one_card.values()}) == 3  # every pair keeps its content key
