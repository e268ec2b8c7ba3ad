"""Reuse groups: connected components over accepted pairs.

A panel used three times gives three pairs (A-B, A-C, B-C), or only two of them
when one was missed or scored low; either way it is one group. Group numbers are
deterministic: components ordered by size (largest first), then by their smallest
row id, numbered 0, 1, 2, ...; `group_key` gives a name that does not depend on
row ids (a hash of the members' figure ids), stable across stores and re-runs.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


class UnionFind:
    """Disjoint sets over 0..n-1 with path halving and union by size."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, x: int, y: int) -> None:
        rx, ry = self.find(x), self.find(y)
        if rx == ry:
            return
        if self.size[rx] < self.size[ry]:
            rx, ry = ry, rx
        self.parent[ry] = rx
        self.size[rx] += self.size[ry]


@dataclass(frozen=True)
class Groups:
    """Group membership of every row id that appears in an accepted pair."""

    row_id: np.ndarray   # int64, sorted
    group: np.ndarray    # int64 group number aligned with row_id

    def __len__(self) -> int:
        return len(self.row_id)

    @property
    def num_groups(self) -> int:
        return int(self.group.max()) + 1 if len(self.group) else 0

    def members(self) -> list[list[int]]:
        """Row ids of each group, by group number."""
        out: list[list[int]] = [[] for _ in range(self.num_groups)]
        for r, g in zip(self.row_id.tolist(), self.group.tolist()):
            out[g].append(r)
        return out

    def group_of(self, ids: np.ndarray) -> np.ndarray:
        """Group number of each row id (-1 for ids in no group)."""
        ids = np.asarray(ids, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.row_id, ids), 0, max(len(self.row_id) - 1, 0))
        found = (len(self.row_id) > 0) & (self.row_id[pos] == ids) if len(self.row_id) else np.zeros(len(ids), bool)
        return np.where(found, self.group[pos] if len(self.group) else -1, -1)


def connected_components(a: np.ndarray, b: np.ndarray) -> Groups:
    """Groups of the graph whose edges are the pairs (a[i], b[i]) of row ids."""
    a = np.asarray(a, dtype=np.int64).ravel()
    b = np.asarray(b, dtype=np.int64).ravel()
    if len(a) != len(b):
        raise ValueError("a and b must have the same length")
    nodes, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    uf = UnionFind(len(nodes))
    for x, y in zip(inverse[: len(a)].tolist(), inverse[len(a):].tolist()):
        uf.union(x, y)
    roots = np.fromiter((uf.find(i) for i in range(len(nodes))), dtype=np.int64, count=len(nodes))
    # order components by (-size, smallest member): deterministic whatever the pair order
    _, comp, sizes = np.unique(roots, return_inverse=True, return_counts=True)
    smallest = np.full(len(sizes), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(smallest, comp, nodes)
    order = np.lexsort((smallest, -sizes))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return Groups(row_id=nodes, group=rank[comp])


def group_key(figure_ids: Sequence[str]) -> str:
    """A name for a group from its members' figure ids: the same members, the same key."""
    digest = hashlib.sha1("\n".join(sorted(figure_ids)).encode("utf-8")).hexdigest()
    return f"g{digest[:12]}"
