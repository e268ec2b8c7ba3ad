"""The paper's evaluation protocol, and the metrics.

Pairs are similar with probability 0.4: an image and an altered copy of it; otherwise the
image and an altered *different* image (for generator sources, half of the time another
field of the same synthetic specimen: the hard case). Each pair carries exactly one named
alteration kind, cycled over `ALTERATION_KINDS`, so accuracy is reported per kind.
A pair is called similar when its score is >= 0.5.

Scores per model: its head `M(x, y)` (when the head was trained) and, as the
representation-only baseline, the cosine of the two index vectors clipped to [0, 1]
(the Barlow Twins baseline is that cosine for a Barlow-Twins-trained encoder).
A model calibrated for the pixel check (`embedder.fusion`) also gets a row
`<name> + pixel check`: the fused score the scan reports.
Held-out generator seeds start at `EVAL_SEED_BASE`, far from any training seed.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

from embedder.fusion import PixelFusion
from embedder.verify import align_images
from training.data import EVAL_SEED_BASE, PAIR_POS_FRACTION, all_kinds, alteration_kinds, apply_named, specimen_image

if TYPE_CHECKING:  # pragma: no cover
    from embedder.inference import Embedder

log = logging.getLogger(__name__)

THRESHOLD = 0.5


@dataclass
class EvalPair:
    """Two images, whether they show the same content, and the alteration applied to `b`."""

    a: Image.Image
    b: Image.Image
    label: int
    alteration: str
    kind: str = ""


def make_pairs(n_pairs: int, seed: int = 0, p_similar: float = PAIR_POS_FRACTION, folder: str | Path | None = None,
               kinds: Sequence[str] = (), min_side: int = 80, max_side: int = 160) -> list[EvalPair]:
    """`n_pairs` evaluation pairs from held-out generator seeds, or from the images in `folder`."""
    rng = np.random.default_rng([seed, 4242])
    names = alteration_kinds()
    if folder is not None:
        from training.synth import FolderSource

        source = FolderSource(folder)
        n_images = len(source)
        if n_images < 2:
            raise ValueError("need at least two images in the folder")
        loaded: dict[int, Image.Image] = {}

        def image(k: int) -> Image.Image:
            if k not in loaded:
                loaded[k] = source.get(k)
            return loaded[k]
    pairs: list[EvalPair] = []
    kinds = tuple(kinds) or all_kinds()
    for i in range(n_pairs):
        name = names[i % len(names)]
        similar = bool(rng.random() < p_similar)
        if folder is not None:
            j = int(rng.integers(n_images))
            a, kind = image(j), Path(source.files[j]).name
            other = a if similar else image((j + 1 + int(rng.integers(n_images - 1))) % n_images)
        else:
            spec = EVAL_SEED_BASE + seed * 100_000 + i
            kind, a = specimen_image(kinds, spec, 0, min_side, max_side)
            if similar:
                other = a
            elif rng.random() < 0.5:
                _, other = specimen_image(kinds, spec, 1, min_side, max_side)
            else:
                _, other = specimen_image(kinds, spec + 50_000, 0, min_side, max_side)
        b = apply_named(other, name, rng)
        pairs.append(EvalPair(a, b, int(similar), name, kind))
    return pairs


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, int)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    p, n = max(int(y.sum()), 1), max(int((1 - y).sum()), 1)
    return np.r_[0.0, fps / n], np.r_[0.0, tps / p]


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a random positive > a random negative), ties count half."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, int)
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    # average ranks for ties
    i = 0
    while i < len(sorted_v):
        j = i
        while j + 1 < len(sorted_v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def binary_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float = THRESHOLD) -> dict[str, float]:
    """Accuracy, precision, recall, F1 at `threshold`, and ROC AUC."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, int)
    pred = scores >= threshold
    tp = int(np.sum(pred & (labels == 1)))
    fp = int(np.sum(pred & (labels == 0)))
    fn = int(np.sum(~pred & (labels == 1)))
    acc = float(np.mean(pred == (labels == 1))) if len(labels) else float("nan")
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": acc, "precision": precision, "recall": recall, "f1": f1, "auc": roc_auc(scores, labels)}


@dataclass
class MethodResult:
    """Metrics for one scoring method over one pair set."""

    name: str
    metrics: dict[str, float]
    per_alteration: dict[str, float]
    scores: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **{k: round(v, 4) for k, v in self.metrics.items()},
                "per_alteration_accuracy": {k: round(v, 4) for k, v in self.per_alteration.items()}}


def per_alteration_accuracy(scores: np.ndarray, labels: np.ndarray, alterations: Sequence[str],
                            threshold: float = THRESHOLD) -> dict[str, float]:
    """Accuracy over the pairs of each alteration kind (similar and dissimilar alike)."""
    kinds = np.asarray(alterations)
    correct = (np.asarray(scores) >= threshold) == (np.asarray(labels) == 1)
    return {str(k): float(correct[kinds == k].mean()) for k in dict.fromkeys(kinds.tolist())}


def score_pairs(embedder: Embedder, pairs: Sequence[EvalPair]) -> tuple[np.ndarray, np.ndarray]:
    """(head scores, clipped cosine scores) of an `embedder.inference.Embedder` on the pairs."""
    va = embedder.embed([p.a for p in pairs])
    vb = embedder.embed([p.b for p in pairs])
    head = embedder.score(va, vb)
    cosine = np.clip(np.sum(va * vb, axis=1), 0.0, 1.0)
    return head.astype(np.float64), cosine.astype(np.float64)


def evaluate_embedders(embedders: dict[str, Embedder], pairs: Sequence[EvalPair], threshold: float = THRESHOLD) -> list[MethodResult]:
    """One row per scoring method: `<name>` (head, when trained) and `<name> cosine` per model."""
    labels = np.array([p.label for p in pairs])
    alts = [p.alteration for p in pairs]
    rows: list[MethodResult] = []
    for name, emb in embedders.items():
        head, cosine = score_pairs(emb, pairs)
        variants = [(name, head), (f"{name} cosine", cosine)] if emb.head_trained else [(f"{name} cosine", cosine)]
        fusion = PixelFusion.from_meta(emb.meta)
        if fusion is not None:  # fused with the model's own score: its head, or its cosine when it has none
            found = align_images([p.a for p in pairs], [p.b for p in pairs], fusion.align)
            variants.insert(1, (f"{variants[0][0]} + pixel check", fusion.score(head, found).astype(np.float64)))
        for label, s in variants:
            rows.append(MethodResult(label, binary_metrics(s, labels, threshold), per_alteration_accuracy(s, labels, alts, threshold), s))
    return rows


def format_table(rows: Sequence[MethodResult]) -> str:
    """A plain-text table: methods side by side, then per-alteration accuracy."""
    cols = ["accuracy", "precision", "recall", "f1", "auc"]
    width = max([len(r.name) for r in rows] + [10])
    lines = [f"{'method':<{width}}  " + "  ".join(f"{c:>9}" for c in cols)]
    for r in rows:
        lines.append(f"{r.name:<{width}}  " + "  ".join(f"{r.metrics[c]:>9.3f}" for c in cols))
    if rows:
        kinds = list(rows[0].per_alteration)
        lines.append("")
        lines.append("per-alteration accuracy")
        kw = max([len(k) for k in kinds] + [10])
        widths = [max(len(r.name), 6) for r in rows]
        lines.append(f"{'alteration':<{kw}}  " + "  ".join(f"{r.name:>{w}}" for r, w in zip(rows, widths)))
        for k in kinds:
            lines.append(f"{k:<{kw}}  " + "  ".join(f"{r.per_alteration.get(k, float('nan')):>{w}.3f}"
                                                   for r, w in zip(rows, widths)))
    return "\n".join(lines)


_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194)]


def draw_roc(rows: Sequence[MethodResult], labels: np.ndarray, path: str | Path, size: int = 480) -> Path:
    """ROC curves of every method as a PNG, drawn with PIL (no plotting dependency)."""
    margin = 50
    img = Image.new("RGB", (size + 2 * margin + 200, size + 2 * margin), "white")
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = margin, margin, margin + size, margin + size
    d.rectangle([x0, y0, x1, y1], outline=(0, 0, 0))
    for t in np.linspace(0, 1, 6):
        px, py = x0 + t * size, y1 - t * size
        d.line([(px, y1), (px, y1 + 5)], fill=(0, 0, 0))
        d.line([(x0 - 5, py), (x0, py)], fill=(0, 0, 0))
        d.text((px - 8, y1 + 8), f"{t:.1f}", fill=(0, 0, 0))
        d.text((x0 - 35, py - 6), f"{t:.1f}", fill=(0, 0, 0))
    d.line([(x0, y1), (x1, y0)], fill=(190, 190, 190))
    d.text(((x0 + x1) // 2 - 50, y1 + 25), "false positive rate", fill=(0, 0, 0))
    d.text((5, y0 - 25), "true positive rate", fill=(0, 0, 0))
    for i, r in enumerate(rows):
        fpr, tpr = roc_curve(r.scores, labels)
        colour = _COLOURS[i % len(_COLOURS)]
        d.line([(x0 + f * size, y1 - t * size) for f, t in zip(fpr, tpr)], fill=colour, width=2)
        d.text((x1 + 15, y0 + 18 * i), f"{r.name} AUC {r.metrics['auc']:.3f}", fill=colour)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
