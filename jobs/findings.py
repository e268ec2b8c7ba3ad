"""One finding per reuse: a figure pair and the panel pairs nested inside it are reported together.

A compound figure reused whole is found three times over: as the whole figure
and again as each of its panels, since the scanner keeps both. Those pairs are
one reuse, so they become one *finding*: pair Q nests in pair P when each of
Q's panels lies inside one of P's (same document and page, `NEST_COVER` of its
area inside), Q's transform agrees with P's (the two sides swapped turn it into
its inverse; an unknown transform agrees with any), and Q's panels sit at the
same place in both figures once P's transform is applied (within
`POSITION_TOLERANCE` of the figure's size), so that a panel matched to another
panel of the copied figure is not folded in. Findings are the connected
components of that relation; each is headed by its outermost pair (the largest
regions), the others are its panels. Pure: report pairs in, finding ids out.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from embedder.d4 import apply_to_array, inverse_transform, view_index
from jobs.report import PanelRef, ReportPair, sort_pairs
from scanner.records import Bbox

NEST_COVER = 0.9          # share of an inner panel's area that must lie inside the outer region
POSITION_TOLERANCE = 0.3  # how far (share of the figure's side) a panel may sit from where the transform puts it


def _area(box: Bbox) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def inside(inner: PanelRef, outer: PanelRef, cover: float = NEST_COVER) -> bool:
    """`inner` lies in `outer`: same document and page, at least `cover` of its area inside `outer`'s box."""
    if inner.doc != outer.doc or inner.page != outer.page:
        return False
    a, b = inner.bbox, outer.bbox
    area = _area(a)
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return area > 0 and ix * iy >= cover * area and _area(b) >= area


def _relative_centre(inner: PanelRef, outer: PanelRef) -> tuple[float, float]:
    """Centre of `inner` in `outer`'s box, as shares of its width and height."""
    x0, y0, x1, y1 = outer.bbox
    cx, cy = (inner.bbox[0] + inner.bbox[2]) / 2, (inner.bbox[1] + inner.bbox[3]) / 2
    return (cx - x0) / max(x1 - x0, 1e-9), (cy - y0) / max(y1 - y0, 1e-9)


def map_point(u: float, v: float, transform: str) -> tuple[float, float]:
    """Where the point (u, v) of a unit square lands when the square is turned/mirrored by `transform`.

    Read off the D4 convention itself (`embedder.d4.apply_to_array` on a 2x2 grid of
    corner labels), so it cannot drift from how images are turned.
    """
    grid = apply_to_array(np.arange(4).reshape(2, 2), view_index(transform))
    where = {int(grid[r, c]): (float(c), float(r)) for r in range(2) for c in range(2)}
    (x0, y0), (x1, y1), (x2, y2) = where[0], where[1], where[2]  # corners top-left, top-right, bottom-left
    return x0 + u * (x1 - x0) + v * (x2 - x0), y0 + u * (y1 - y0) + v * (y2 - y0)


def nests(inner: ReportPair, outer: ReportPair) -> bool:
    """`inner`'s two panels lie inside `outer`'s (either way round), with a consistent transform and position."""
    if inner is outer:
        return False
    for swapped in (False, True):
        ia, ib = (inner.b, inner.a) if swapped else (inner.a, inner.b)
        if not (inside(ia, outer.a) and inside(ib, outer.b)):
            continue
        t_inner = inner.transform
        if t_inner is not None and swapped:
            t_inner = inverse_transform(t_inner)  # the inner pair maps a onto b: turn it round
        t_outer = outer.transform
        if t_inner is not None and t_outer is not None and t_inner != t_outer:
            continue
        if t_outer is not None:  # b's panel, carried by the figure's transform, lands where a's panel is
            ua, va = _relative_centre(ia, outer.a)
            ub, vb = map_point(*_relative_centre(ib, outer.b), t_outer)
            if max(abs(ua - ub), abs(va - vb)) > POSITION_TOLERANCE:
                continue
        return True
    return False


def oriented(inner: ReportPair, outer: ReportPair) -> tuple[PanelRef, PanelRef, str | None]:
    """`inner`'s panels and transform the way round of `outer` (its A-side panel first)."""
    if inside(inner.a, outer.a) and inside(inner.b, outer.b):
        return inner.a, inner.b, inner.transform
    return inner.b, inner.a, None if inner.transform is None else inverse_transform(inner.transform)


@dataclass(frozen=True)
class Finding:
    """One reuse: its outermost pair (`head`) and the pairs nested inside it (`panels`, highest score first)."""

    id: int
    head: ReportPair
    panels: tuple[ReportPair, ...]

    @property
    def pairs(self) -> tuple[ReportPair, ...]:
        return (self.head, *self.panels)

    @property
    def score(self) -> float:
        """The finding's score: its best pair's."""
        return max(p.score for p in self.pairs)


def _extent(pair: ReportPair) -> float:
    return _area(pair.a.bbox) + _area(pair.b.bbox)


def group_findings(pairs: Sequence[ReportPair]) -> list[Finding]:
    """The pairs gathered into findings (nested pairs with their outermost one), best finding first, ids 1, 2, …"""
    ordered = sort_pairs(pairs)
    parent = list(range(len(ordered)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_docs: dict[tuple[str, str], list[int]] = defaultdict(list)  # only pairs of the same two documents can nest
    for i, p in enumerate(ordered):
        by_docs[(min(p.a.doc, p.b.doc), max(p.a.doc, p.b.doc))].append(i)
    for members in by_docs.values():
        for i in members:
            for j in members:
                if i != j and _extent(ordered[i]) <= _extent(ordered[j]) and nests(ordered[i], ordered[j]):
                    parent[root(i)] = root(j)
    components: dict[int, list[int]] = defaultdict(list)
    for i in range(len(ordered)):
        components[root(i)].append(i)
    # head: the outermost pair; findings ordered by their best pair (`ordered` is best first, so the smallest index)
    groups = sorted(components.values(), key=min)
    out = []
    for n, members in enumerate(groups, start=1):
        head = max(members, key=lambda i: (_extent(ordered[i]), -i))
        out.append(Finding(n, ordered[head], tuple(ordered[i] for i in sorted(members) if i != head)))
    return out


def assign_findings(pairs: Sequence[ReportPair]) -> list[ReportPair]:
    """`pairs` (same order) with `finding_id` set from `group_findings`."""
    ids: dict[int, int] = {}
    for f in group_findings(pairs):
        for p in f.pairs:
            ids[id(p)] = f.id
    return [p if p.finding_id == ids[id(p)] else replace(p, finding_id=ids[id(p)]) for p in pairs]
