"""Keypoint candidates on real images: a turned crop and a mirrored crop of a panel are among its top partners."""
from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
from PIL import Image

from embedder.verify import grey_image
from index.keypoints import (
    TRAIN_PER_LIST,
    KeypointOptions,
    ShardedIndex,
    _votes,
    descriptor_index,
    fill_lists,
    keypoint_pairs,
    keypoint_votes,
    list_ranges,
    lists_in_order,
    orb_descriptors,
    sample_positions,
    search_inverted_lists,
    strongest_per_panel,
)

SIDE = 128  # the stored grey side the scan uses (jobs.pixel_check.GREY_SIDE)
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "real-sample" / "images"
FIELDS = ["cellprofiler/ExampleHuman/images/AS_09125_050116030001_D03f00d0.png",
          "cellprofiler/ExampleIlluminationCorrection/images/AS_09047_050428030001_O01f00d2.png",
          "neubias/xy_8bit__glialcell.png", "stardist/histo.png", "stardist/img2d.png",
          "neubias/xyc_8bit__membranes_nuclei.png", "neubias/xy_16bit__bacteria_cords_thin.png"]


@pytest.fixture(scope="module")
def panels() -> list[Image.Image]:
    """Seven real microscopy and histology images, then a crop of the first (a quarter of it) turned 90
    degrees, and a mirrored crop of another quarter of it."""
    fields = [Image.open(SAMPLE / name).convert("RGB") for name in FIELDS]
    w, h = fields[0].size
    turned = fields[0].crop((int(0.1 * w), int(0.1 * h), int(0.6 * w), int(0.55 * h))).rotate(90, expand=True)
    mirrored = fields[0].crop((int(0.4 * w), int(0.45 * h), int(0.95 * w), int(0.95 * h)))
    return [*fields, turned, mirrored.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]


def _pairs(panels: list[Image.Image], options: KeypointOptions, chunk_panels: int = 2048) -> set[tuple[int, int]]:
    ids = np.arange(len(panels))
    vectors = np.eye(len(panels), dtype=np.float32)
    greys = [grey_image(p, SIDE) for p in panels]
    found = keypoint_pairs(ids, lambda part: [greys[i] for i in part], vectors, options, chunk_panels=chunk_panels)
    assert np.allclose(found.sim, 0.0)  # sim is the vectors' cosine (orthogonal here)
    return set(zip(found.a.tolist(), found.b.tolist()))


def test_turned_and_mirrored_crops_are_among_the_top_partners(panels: list[Image.Image]) -> None:
    turned, mirrored = len(FIELDS), len(FIELDS) + 1
    assert {(0, turned), (0, mirrored)} <= _pairs(panels, KeypointOptions(per_panel=2))
    # a crop's source is among its two best-voted partners; the panels are not all paired
    assert len(_pairs(panels, KeypointOptions(per_panel=2))) < len(panels) * (len(panels) - 1) // 2 // 2


def test_more_descriptors_than_an_exact_search_takes_go_to_inverted_lists(panels: list[Image.Image]) -> None:
    exact = _pairs(panels, KeypointOptions(per_panel=2))
    clustered = _pairs(panels, KeypointOptions(per_panel=2, exact_up_to=100, nprobe=64))
    assert {(0, len(FIELDS)), (0, len(FIELDS) + 1)} <= clustered
    assert len(exact ^ clustered) <= 2  # the inverted lists may miss a few nearest descriptors


def test_flat_or_tiny_panels_have_no_descriptors() -> None:
    assert orb_descriptors(np.full((128, 128), 90, np.uint8)).shape == (0, 32)
    assert orb_descriptors(np.zeros((0, 0), np.uint8)).shape == (0, 32)
    assert orb_descriptors(np.random.default_rng(0).integers(0, 255, (16, 16), dtype=np.uint8)).shape == (0, 32)


def test_strongest_per_panel_keeps_the_top_partners_of_either_panel() -> None:
    a = np.array([0, 0, 0, 1, 2])
    b = np.array([1, 2, 3, 3, 3])
    votes = np.array([9, 5, 1, 7, 2])
    # per panel, 1 partner: 0 -> 1 (9), 1 -> 0 (9), 2 -> 0 (5), 3 -> 1 (7)
    assert strongest_per_panel(a, b, votes, 1).tolist() == [True, True, False, True, False]


@pytest.mark.parametrize(("exact_up_to", "shard_size"), [(50_000, 2_097_152), (100, 2_097_152), (100, 1_000)],
                         ids=["exact", "inverted-lists", "sharded"])
def test_panels_taken_a_few_at_a_time_vote_as_all_at_once(panels: list[Image.Image], exact_up_to: int,
                                                           shard_size: int, tmp_path: Path) -> None:
    """The descriptors wait on disk a chunk at a time (bounded memory); the votes are those of one chunk,
    and the same when the index is written in shards and searched one shard at a time."""
    greys = [grey_image(p, SIDE) for p in panels]
    options = KeypointOptions(exact_up_to=exact_up_to, nprobe=64, shard_size=shard_size)
    ids = np.arange(len(panels)) * 10 + 3  # row ids, not positions
    by_id = dict(zip(ids.tolist(), greys))
    read_calls: list[int] = []

    def read(part: np.ndarray) -> list[np.ndarray]:
        read_calls.append(len(part))
        return [by_id[int(i)] for i in part]

    whole = keypoint_votes(ids, read, tmp_path / "whole", options, chunk_panels=len(ids))
    read_calls.clear()
    chunked = keypoint_votes(ids, read, tmp_path / "chunked", options, chunk_panels=2)
    assert read_calls == [2, 2, 2, 2, 1]
    assert len(list((tmp_path / "chunked").glob("descriptors-*.npz"))) == 5
    # up to 400 descriptors a panel, nine panels: 1,000-descriptor shards of whole lists are three to five,
    # however the panels were chunked (the same lists); under the shard size the index is held in memory
    shards = [len(list((tmp_path / run).glob("shard-*.faissb"))) for run in ("whole", "chunked")]
    assert shards[0] == shards[1] and ((3 <= shards[0] <= 5) if shard_size == 1_000 else shards[0] == 0)
    for x, y in zip(whole, chunked):
        np.testing.assert_array_equal(x, y)
    a, b, votes = whole
    turned = ids[len(FIELDS)]
    assert votes[(a == ids[0]) & (b == turned)][0] >= KeypointOptions().min_votes
    assert (np.diff(a * 1000 + b) > 0).all()  # each pair once, in (a, b) order
    with pytest.raises(ValueError, match="beyond the keypoint votes"):  # two ids must fit one int64 key
        keypoint_votes(ids + (1 << 31), lambda part: [by_id[int(i) - (1 << 31)] for i in part], tmp_path / "big", options)
    # a floor lets go of the pairs below it as their votes are all in, and only those
    floored = keypoint_votes(ids, read, tmp_path / "floored", options, chunk_panels=2, floor=3)
    assert 0 < len(floored[0]) < len(a)
    for x, y in zip(floored, (a[votes >= 3], b[votes >= 3], votes[votes >= 3])):
        np.testing.assert_array_equal(x, y)


def test_inverted_lists_are_even_and_find_a_descriptor_again_after_noise(panels: list[Image.Image]) -> None:
    """Above `exact_up_to` every descriptor is in a list, the lists hold about `list_size` real descriptors
    (the list an average descriptor sits in too: no catch-all), the same ones when built again, and a
    descriptor with 16 of its 256 bits flipped finds its original as nearest through them."""
    greys = [grey_image(p, SIDE) for p in panels]
    own = np.concatenate([orb_descriptors(g) for g in greys])
    options = KeypointOptions(exact_up_to=100, list_size=16, nprobe=8)

    def list_sizes() -> tuple[object, np.ndarray]:
        index = descriptor_index(len(own), lambda rows: own[rows], options)
        index.add(own)
        return index, np.array([index.invlists.list_size(i) for i in range(index.nlist)])

    index, sizes = list_sizes()
    mean = len(own) / len(sizes)  # a list is trained on TRAIN_PER_LIST sampled descriptors: no smaller here
    assert sizes.sum() == len(own) and mean <= 1.25 * max(TRAIN_PER_LIST, options.list_size)
    assert (sizes ** 2).sum() / sizes.sum() <= 1.5 * mean
    np.testing.assert_array_equal(list_sizes()[1], sizes)
    rng = np.random.default_rng(0)
    bits = np.unpackbits(own, axis=1)
    for row in bits:
        row[rng.choice(256, 16, replace=False)] ^= 1
    _, nearest = index.search(np.packbits(bits, axis=1), 1)  # type: ignore[attr-defined]
    assert np.mean(nearest[:, 0] == np.arange(len(own))) >= 0.95


def test_shards_are_consecutive_lists_up_to_the_shard_size() -> None:
    assert list_ranges(np.array([3, 3, 3, 10, 1, 2]), 6).tolist() == [0, 2, 3, 4, 6]  # a larger list alone
    assert list_ranges(np.array([3, 3]), 100).tolist() == [0, 2]
    # an empty list never makes a shard of its own
    assert list_ranges(np.array([0, 0, 7, 0]), 6).tolist() == [0, 4]
    assert list_ranges(np.array([3, 3, 10, 0]), 6).tolist() == [0, 2, 4]


def test_a_tie_at_the_last_neighbour_decides_no_vote() -> None:
    """Of the k nearest, only those nearer than the k-th count, and the k-th's distance stands in for a third
    panel not among them: the votes do not depend on which of equally near descriptors came last."""
    options = KeypointOptions(neighbours=4)
    holders, ends = np.array([10, 11, 12, 13]), np.array([5, 10, 15, 20])  # panel 10 holds descriptors 0-4, ...
    owners = np.array([10, 10, 10, 10])
    dist = np.array([[0, 20, 40, 40],    # panel 11 at 20, clearly nearer (< 0.8 x) than the last place: a vote
                     [0, 20, 40, 40],    # the same, the tie of panels 12 and 13 met the other way round
                     [0, 35, 40, 40],    # 35 is not clearly nearer than 40, whether the last place went to
                     [0, 35, 40, 40]])   # panel 11 again (no third panel in sight) or to panel 12: no vote
    nb = np.array([[1, 6, 11, 16],
                   [1, 6, 16, 11],
                   [1, 6, 7, 8],
                   [1, 6, 7, 11]])
    lo, hi = _votes(dist.astype(np.int32), nb, holders, ends, owners, options)
    assert list(zip(lo.tolist(), hi.tolist())) == [(10, 11), (10, 11)]
    # fewer than k found: no stand-in, the nearest of another panel votes
    lo, hi = _votes(np.array([[0, 35, 2**31 - 1, 2**31 - 1]], np.int32), np.array([[1, 6, -1, -1]]), holders, ends,
                    owners[:1], options)
    assert list(zip(lo.tolist(), hi.tolist())) == [(10, 11)]


def test_a_sharded_index_finds_the_neighbours_one_index_finds(panels: list[Image.Image], tmp_path: Path) -> None:
    """Shards of the inverted lists on disk, searched one at a time and merged, give one index's nearest
    descriptors: the same distances, the same descriptors up to the order of equally near ones."""
    own = np.concatenate([orb_descriptors(grey_image(p, SIDE)) for p in panels])
    options = KeypointOptions(exact_up_to=100, list_size=16, nprobe=8)
    whole = descriptor_index(len(own), lambda rows: own[rows], options)
    fill_lists(whole, lambda: iter([own]))
    blocks = np.array_split(own, 3)
    sizes = np.bincount(whole.quantizer.assign(own, 1)[:, 0], minlength=whole.nlist)
    shard_size = len(own) // 3
    sharded = ShardedIndex.write(whole, lambda: iter(blocks), shard_size, tmp_path)  # with the whole index's quantizer
    np.testing.assert_array_equal(sharded.bounds, list_ranges(sizes, shard_size))
    assert len(sharded.files) >= 3 and [f.name for f in sharded.files][:2] == ["shard-0000.faissb", "shard-0001.faissb"]
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(f.name for f in sharded.files)  # lists' files gone
    for path, first, end in zip(sharded.files, sharded.bounds[:-1], sharded.bounds[1:], strict=True):
        shard = faiss.read_index_binary(str(path))  # whole lists of its range, each as the whole index's, none else
        for list_no in range(whole.nlist):
            n = int(sizes[list_no]) if first <= list_no < end else 0
            assert shard.invlists.list_size(list_no) == n
            for got, want in zip(_list_entries(shard, list_no, n), _list_entries(whole, list_no, n), strict=True):
                np.testing.assert_array_equal(got, want)
    queries = own[::5]
    (d_whole, i_whole), (d_shards, i_shards) = whole.search(queries, 8), sharded.search(queries, 8)
    np.testing.assert_array_equal(d_shards, d_whole)
    found = i_shards >= 0
    np.testing.assert_array_equal(found, i_whole >= 0)
    assert found[:, 0].all()
    # each neighbour is the descriptor at that distance; below a query's k-th distance they are the same set
    bits = np.unpackbits(own[np.maximum(i_shards, 0)], axis=2) != np.unpackbits(queries, axis=1)[:, None, :]
    np.testing.assert_array_equal(np.where(found, bits.sum(axis=2), d_shards), d_shards)
    for q in range(len(queries)):
        inside = d_whole[q] < d_whole[q, -1]
        assert set(i_shards[q, inside].tolist()) == set(i_whole[q, inside].tolist())


def test_queries_searched_in_the_order_of_their_lists_find_what_they_find_in_their_own_order(
        panels: list[Image.Image]) -> None:
    """The inverted lists searched query by query in the order of each one's nearest list (for the CPU's
    caches) give each query the distances and descriptors the index's own search gives it, in its row."""
    own = np.concatenate([orb_descriptors(grey_image(p, SIDE)) for p in panels])
    index = descriptor_index(len(own), lambda rows: own[rows], KeypointOptions(exact_up_to=100, list_size=16, nprobe=8))
    fill_lists(index, lambda: iter([own]))
    queries = np.concatenate([own[::3], own[1::3][:, ::-1]])  # indexed ones, and byte-reversed ones (no twin)
    order, lists = lists_in_order(index.quantizer, queries, index.nprobe)
    np.testing.assert_array_equal(np.sort(order), np.arange(len(queries)))  # every query once ...
    assert (np.diff(lists[:, 0]) >= 0).all() and (order != np.arange(len(queries))).any()  # ... by its nearest list
    np.testing.assert_array_equal(lists, index.quantizer.search(queries[order], index.nprobe)[1])
    (dist, nearest), (d_plain, i_plain) = search_inverted_lists(index, queries, 8), index.search(queries, 8)
    np.testing.assert_array_equal(dist, d_plain)
    np.testing.assert_array_equal(nearest, i_plain)
    third = len(own[::3])
    assert (dist[:third, 0] == 0).all()  # an indexed descriptor finds itself (or its duplicate) first, in its own row


def _list_entries(index: Any, list_no: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ids and codes (32 bytes each) of the `n` entries of one inverted list."""
    return (faiss.rev_swig_ptr(index.invlists.get_ids(list_no), n).copy(),
            faiss.rev_swig_ptr(index.invlists.get_codes(list_no), n * 32).copy())


def test_lists_sized_before_filling_hold_exactly_what_appended_lists_hold(panels: list[Image.Image]) -> None:
    """`fill_lists` (each list allocated once, from two passes over the blocks) gives the index that adding
    the blocks one after the other gives: the same ids and codes in every list, the same search."""
    own = np.concatenate([orb_descriptors(grey_image(p, SIDE)) for p in panels])
    options = KeypointOptions(exact_up_to=100, list_size=16, nprobe=8)
    blocks = np.array_split(own, 5)
    appended = descriptor_index(len(own), lambda rows: own[rows], options)
    for block in blocks:
        appended.add(block)
    sized = descriptor_index(len(own), lambda rows: own[rows], options)
    fill_lists(sized, lambda: iter(blocks))
    assert sized.ntotal == appended.ntotal == len(own)
    for i in range(appended.nlist):
        n = appended.invlists.list_size(i)
        assert sized.invlists.list_size(i) == n
        (ids_a, codes_a), (ids_s, codes_s) = _list_entries(appended, i, n), _list_entries(sized, i, n)
        np.testing.assert_array_equal(ids_a, ids_s)
        np.testing.assert_array_equal(codes_a, codes_s)
    np.testing.assert_array_equal(appended.search(own[::7], 8)[1], sized.search(own[::7], 8)[1])


def test_the_training_sample_is_even_over_the_positions_and_never_holds_all_of_them() -> None:
    """The inverted lists' training sample: distinct ascending positions, as many as asked within five standard
    deviations, spread evenly (block edges included: blocks of 2**20 do not divide the total), drawn in
    memory set by the block (a permutation of the 50 million positions would take 400 MB)."""
    total, size = 50_000_017, 3_125_000  # a sixteenth: the share of a large index (TRAIN_PER_LIST / list_size)
    tracemalloc.start()
    try:
        sample = sample_positions(total, size, block=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * size + 24 * (1 << 20)  # the sample twice (its blocks' parts, then joined), a block's positions
    assert abs(len(sample) - size) < 5 * np.sqrt(size)
    assert sample[0] >= 0 and sample[-1] < total and (np.diff(sample) > 0).all()
    counts = np.bincount(sample * 50 // total, minlength=50)  # 50 bins across the block edges
    assert np.abs(counts - len(sample) / 50).max() < 5 * np.sqrt(len(sample) / 50)
    np.testing.assert_array_equal(sample, sample_positions(total, size, block=1 << 20))  # seeded
    assert len(sample_positions(10, 10)) == 10 and len(sample_positions(0, 0)) == 0
