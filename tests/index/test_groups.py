"""Reuse groups: connected components with deterministic numbering."""
from __future__ import annotations

import numpy as np

from index.groups import connected_components, group_key


def test_a_panel_used_three_times_is_one_group() -> None:
    # A=10 used in three places (10, 20, 30) with one pair missed; a separate pair 5-6; a chain 40-41-42-43
    a = np.array([10, 20, 5, 40, 42, 41])
    b = np.array([20, 30, 6, 41, 43, 42])
    g = connected_components(a, b)
    assert g.num_groups == 3
    assert g.members() == [[40, 41, 42, 43], [10, 20, 30], [5, 6]]
    np.testing.assert_array_equal(g.group_of(np.array([30, 6, 7, 43])), [1, 2, -1, 0])


def test_numbering_does_not_depend_on_pair_order() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 200, 150)
    b = rng.integers(0, 200, 150)
    g1 = connected_components(a, b)
    perm = rng.permutation(150)
    g2 = connected_components(b[perm], a[perm])
    np.testing.assert_array_equal(g1.row_id, g2.row_id)
    np.testing.assert_array_equal(g1.group, g2.group)
    sizes = [len(m) for m in g1.members()]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == len(np.unique(np.r_[a, b]))


def test_empty_and_keys() -> None:
    g = connected_components(np.array([], np.int64), np.array([], np.int64))
    assert g.num_groups == 0 and g.group_of(np.array([1])).tolist() == [-1]
    assert group_key(["b", "a"]) == group_key(["a", "b"]) != group_key(["a", "c"])
