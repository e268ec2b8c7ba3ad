"""Sub-region vectors (`embedder.regions`) as extra k-NN queries: crops become candidates (issue 13)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from embedder.inference import Embedder
from embedder.regions import LAYOUTS, MIN_SIDE, embed_regions, region_boxes, sub_regions
from index.candidates import knn_pairs
from training.data import all_kinds, specimen_image


class ExactIndex:
    """Brute-force inner-product search with an id per entry (the `Searchable` protocol)."""

    def __init__(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self.vectors, self.ids = vectors, ids

    def search(self, queries: np.ndarray, k: int, *, batch_size: int = 0) -> tuple[np.ndarray, np.ndarray]:
        sims = queries @ self.vectors.T
        top = np.argsort(-sims, axis=1)[:, :k]
        return np.take_along_axis(sims, top, 1), self.ids[top]


def test_layouts_cover_the_panel_and_small_panels_get_none() -> None:
    assert len(region_boxes((200, 120), "2x2c")) == 5
    assert len(region_boxes((200, 120), "3x3")) == 9
    assert len(region_boxes((200, 120), "2x2c+3x3")) == 14
    for layout in LAYOUTS:
        for x0, y0, x1, y1 in region_boxes((201, 137), layout):
            assert 0 <= x0 < x1 <= 201 and 0 <= y0 < y1 <= 137
    quads = region_boxes((200, 120), "2x2c")[:4]
    assert sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in quads) == 200 * 120
    assert region_boxes((400, MIN_SIDE - 1)) == []
    assert sub_regions(Image.new("RGB", (50, 50))) == []
    with pytest.raises(ValueError):
        region_boxes((200, 200), "4x4")


@pytest.fixture(scope="module")
def gallery() -> tuple[Embedder, list[Image.Image], np.ndarray]:
    emb = Embedder.load()
    kinds = all_kinds()
    panels = [specimen_image(kinds, 5000 + s, 0, 200, 260)[1] for s in range(40)]
    return emb, panels, emb.embed(panels)


@pytest.mark.slow
@pytest.mark.parametrize("src", [0, 3])
def test_a_30_percent_crop_is_a_candidate_with_crop_vectors_and_not_without(
        gallery: tuple[Embedder, list[Image.Image], np.ndarray], src: int) -> None:
    emb, panels, whole = gallery
    w, h = panels[src].size
    crop = panels[src].crop((0, 0, round(w * 0.55), round(h * 0.55)))  # 30% of the area
    vecs = np.concatenate([whole, emb.embed([crop])])
    ids = np.arange(len(vecs))
    crop_id = len(vecs) - 1
    index = ExactIndex(vecs, ids)
    without = knn_pairs(index, ids, vecs, k=3, min_sim=0.3).as_set()
    assert (src, crop_id) not in without
    owners, regions = embed_regions(emb, [*panels, crop])
    assert (np.bincount(owners, minlength=len(vecs)) == 5).all() and regions.shape == (len(owners), emb.dim)
    q_ids, q_vecs = np.concatenate([ids, owners]), np.concatenate([vecs, regions])
    with_regions = knn_pairs(index, q_ids, q_vecs, k=3, min_sim=0.3)
    assert (src, crop_id) in with_regions.as_set()
    # ids map back to panels; a panel's own sub-regions never pair it with itself
    assert set(with_regions.a.tolist()) | set(with_regions.b.tolist()) <= set(ids.tolist())
    assert (with_regions.a < with_regions.b).all()
    # the pair keeps its best similarity (the sub-region's, above the whole panel's)
    pos = np.flatnonzero((with_regions.a == src) & (with_regions.b == crop_id))[0]
    assert with_regions.sim[pos] > float(vecs[src] @ vecs[crop_id])
