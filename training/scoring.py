"""Score a scan report against ground truth (truth.csv from `training.corpus`).

Matching: a reported row matches a true pair when both sides are on the same
doc and page and each bbox has IoU >= `iou` (0.5) with its counterpart, in
either order (with `contain=True`, a side also matches by containment, see
`contains`). Rows are taken highest score first; each true pair is matched at
most once. Decisions:
- exact duplicate rows (the same unordered pair of (doc, page, bbox)) collapse
  to one, keeping the highest score;
- a row that matches only true pairs already matched by a higher-scoring row is
  a *duplicate finding*: it is ignored (neither TP nor FP) and counted in
  `duplicates`, since a reviewer loses nothing real by seeing one finding twice;
  rows matching nothing are false positives;
- when the report has a `finding` column (a figure pair and the panel pairs nested
  in it are one finding, `jobs.findings`), a finding is one claim: its rows that
  match nothing are ignored (counted in `duplicates`) when another of its rows
  found a true pair, and a finding that matches nothing is one false positive (at
  its best score), not one per row. Without the column every row is its own finding.
Metrics: precision and recall over the whole report; average precision
(non-interpolated: mean over true pairs of the precision at the rank each is
found, unmatched ones counting 0); recall at precision >= 0.9; best F1 with its
score threshold (cuts happen between distinct scores); recall per alteration
label, per single alteration op, per kind (inter/intra) and per generator.
An undefined value (precision of an empty report, recall with no truth) is None.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jobs.report import PAIR_COLUMNS
from scanner.records import Bbox as Box
from scanner.records import parse_bbox

# What the scorer reads of a report: the score and the two sides (the contract's `kind`
# column is not needed, so a report of another tool without it still scores).
SCORED_COLUMNS: tuple[str, ...] = ("score", *PAIR_COLUMNS)
TRUTH_REQUIRED: tuple[str, ...] = PAIR_COLUMNS
Side = tuple[str, int, Box]


class ScoringInputError(ValueError):
    """A report or truth file is missing columns or has unparsable values."""


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def contains(a: Box, b: Box, min_cover: float = 0.8) -> bool:
    """One box holds the other: the larger contains the smaller's centre and at least
    `min_cover` of the smaller's area lies inside the larger (either order)."""
    small, large = (a, b) if (a[2] - a[0]) * (a[3] - a[1]) <= (b[2] - b[0]) * (b[3] - b[1]) else (b, a)
    area = (small[2] - small[0]) * (small[3] - small[1])
    if area <= 0:
        return False
    cx, cy = (small[0] + small[2]) / 2, (small[1] + small[3]) / 2
    if not (large[0] <= cx <= large[2] and large[1] <= cy <= large[3]):
        return False
    ix = max(0.0, min(small[2], large[2]) - max(small[0], large[0]))
    iy = max(0.0, min(small[3], large[3]) - max(small[1], large[1]))
    return ix * iy >= min_cover * area


def _side_match(s: Side, t: Side, thr: float, contain: bool = False) -> bool:
    return s[0] == t[0] and s[1] == t[1] and (iou(s[2], t[2]) >= thr or (contain and contains(s[2], t[2])))


@dataclass
class ScoreResult:
    n_reported: int
    n_true: int
    tp: int
    fp: int
    duplicates: int
    precision: float | None
    recall: float | None
    average_precision: float
    recall_at_p90: float
    best_f1: float
    best_f1_threshold: float | None
    recall_by_alteration: dict[str, dict[str, float | int]] = field(default_factory=dict)
    recall_by_op: dict[str, dict[str, float | int]] = field(default_factory=dict)
    recall_by_kind: dict[str, dict[str, float | int]] = field(default_factory=dict)
    recall_by_generator: dict[str, dict[str, float | int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read(path_or_df: str | Path | pd.DataFrame, required: Sequence[str], what: str) -> pd.DataFrame:
    df = path_or_df if isinstance(path_or_df, pd.DataFrame) else pd.read_csv(path_or_df, dtype=str, keep_default_na=False)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ScoringInputError(f"{what} lacks columns: {', '.join(missing)}")
    return df


def _sides(row: Any) -> tuple[Side, Side]:
    try:
        return (
            (str(row["doc_a"]), int(float(row["page_a"])), parse_bbox(row["bbox_a"])),
            (str(row["doc_b"]), int(float(row["page_b"])), parse_bbox(row["bbox_b"])),
        )
    except (TypeError, ValueError) as exc:
        raise ScoringInputError(f"bad row {dict(row)}: {exc}") from exc


def _group(truth: pd.DataFrame, matched: list[bool], col: str, split: bool = False) -> dict[str, dict[str, float | int]]:
    if col not in truth.columns:
        return {}
    hit: dict[str, int] = defaultdict(int)
    tot: dict[str, int] = defaultdict(int)
    for value, m in zip(truth[col].astype(str), matched):
        keys = set(value.split("+")) if split else {value}
        for k in keys:
            tot[k] += 1
            hit[k] += int(m)
    return {k: {"n": tot[k], "found": hit[k], "recall": hit[k] / tot[k]} for k in sorted(tot)}


def score_report(
    report: str | Path | pd.DataFrame, truth: str | Path | pd.DataFrame, iou_threshold: float = 0.5, contain: bool = False
) -> ScoreResult:
    """Match `report` rows to `truth` pairs and compute the metrics (see module docstring).

    `contain=True` also matches a side by containment (`contains`): fair for real figures,
    where a panel inside a planted region or a whole figure holding a planted crop is a find."""
    rep = _read(report, SCORED_COLUMNS, "report")
    tru = _read(truth, TRUTH_REQUIRED, "truth")
    true_pairs = [_sides(r) for _, r in tru.iterrows()]
    # collapse exact duplicates (unordered), keep the best score (and the finding of that row)
    best: dict[tuple[Side, Side], tuple[float, str]] = {}
    has_findings = "finding" in rep.columns
    for n, (_, r) in enumerate(rep.iterrows()):
        a, b = _sides(r)
        key = (a, b) if (a[0], a[1], a[2]) <= (b[0], b[1], b[2]) else (b, a)
        try:
            s = float(r["score"])
        except ValueError as exc:
            raise ScoringInputError(f"bad score {r['score']!r}") from exc
        if math.isnan(s):
            raise ScoringInputError("score is NaN")
        finding = str(r["finding"]) if has_findings and str(r["finding"]) else f"row {n}"
        if key not in best or s > best[key][0]:
            best[key] = (s, finding)
    rows = sorted(best.items(), key=lambda kv: -kv[1][0])
    # index true pairs by (doc, page) of side a for speed
    by_key: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, (a, b) in enumerate(true_pairs):
        by_key[(a[0], a[1])].append(i)
        if (b[0], b[1]) != (a[0], a[1]):
            by_key[(b[0], b[1])].append(i)
    matched = [False] * len(true_pairs)
    verdicts: list[tuple[float, str, str]] = []  # (score, finding, "tp" / "fp" / "dup")
    for (a, b), (s, finding) in rows:
        cands = [i for i in by_key.get((a[0], a[1]), []) if _pair_match(a, b, true_pairs[i], iou_threshold, contain)]
        free = [i for i in cands if not matched[i]]
        if free:
            matched[free[0]] = True
            verdicts.append((s, finding, "tp"))
        else:
            verdicts.append((s, finding, "dup" if cands else "fp"))
    found = {f for _, f, v in verdicts if v == "tp"}
    outcomes: list[tuple[float, int]] = []  # (score, 1 TP / 0 FP); duplicates dropped
    duplicates = 0
    false_findings: set[str] = set()
    for s, finding, v in verdicts:
        if v == "tp":
            outcomes.append((s, 1))
        elif v == "fp" and finding not in found and finding not in false_findings:
            false_findings.add(finding)  # a false finding counts once, at its best row (rows are best first)
            outcomes.append((s, 0))
        else:
            duplicates += 1
    n_true = len(true_pairs)
    tp = sum(o for _, o in outcomes)
    fp = len(outcomes) - tp
    ap, r_at_p90, best_f1, best_thr = _curve(outcomes, n_true)
    return ScoreResult(
        n_reported=len(rep), n_true=n_true, tp=tp, fp=fp, duplicates=duplicates,
        precision=(tp / len(outcomes)) if outcomes else None,
        recall=(tp / n_true) if n_true else None,
        average_precision=ap, recall_at_p90=r_at_p90, best_f1=best_f1, best_f1_threshold=best_thr,
        recall_by_alteration=_group(tru, matched, "alteration"),
        recall_by_op=_group(tru, matched, "alteration", split=True),
        recall_by_kind=_group(tru, matched, "kind"),
        recall_by_generator=_group(tru, matched, "generator"),
    )


def row_truth_matches(report: str | Path | pd.DataFrame, truth: str | Path | pd.DataFrame, iou_threshold: float = 0.5,
                      contain: bool = False) -> list[list[int]]:
    """For each report row (in file order), the indices of the truth pairs it matches (the scoring's matching rule)."""
    rep = _read(report, SCORED_COLUMNS, "report")
    true_pairs = [_sides(r) for _, r in _read(truth, TRUTH_REQUIRED, "truth").iterrows()]
    out = []
    for _, r in rep.iterrows():
        a, b = _sides(r)
        out.append([i for i, t in enumerate(true_pairs) if _pair_match(a, b, t, iou_threshold, contain)])
    return out


def _pair_match(a: Side, b: Side, t: tuple[Side, Side], thr: float, contain: bool = False) -> bool:
    return (_side_match(a, t[0], thr, contain) and _side_match(b, t[1], thr, contain)) or (
        _side_match(a, t[1], thr, contain) and _side_match(b, t[0], thr, contain)
    )


def _curve(outcomes: list[tuple[float, int]], n_true: int) -> tuple[float, float, float, float | None]:
    """AP, recall at precision >= 0.9, best F1 and its threshold, cutting only between distinct scores."""
    if not n_true or not outcomes:
        return 0.0, 0.0, 0.0, None
    ap = 0.0
    tp = 0
    for k, (_, o) in enumerate(outcomes, start=1):
        if o:
            tp += 1
            ap += tp / k
    ap /= n_true
    r90, best_f1, best_thr = 0.0, 0.0, None
    tp = 0
    for k, (s, o) in enumerate(outcomes, start=1):
        tp += o
        if k < len(outcomes) and outcomes[k][0] == s:
            continue  # ties: a threshold cannot separate them
        p, r = tp / k, tp / n_true
        if p >= 0.9:
            r90 = max(r90, r)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if f1 > best_f1:
            best_f1, best_thr = f1, s
    return ap, r90, best_f1, best_thr


def ranking_quality(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """AP and recall at precision >= 0.9 of labelled items ranked by score (in a tie, negatives first: no luck)."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    order = np.lexsort((labels, -scores))
    ap, r90, _, _ = _curve([(float(scores[i]), int(labels[i])) for i in order], int(labels.sum()))
    return ap, r90


def format_text(res: ScoreResult) -> str:
    """Human-readable summary."""
    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    lines = [
        f"reported rows     {res.n_reported}   true pairs {res.n_true}",
        f"true positives    {res.tp}   false positives {res.fp}   duplicate findings (ignored) {res.duplicates}",
        f"precision         {f(res.precision)}",
        f"recall            {f(res.recall)}",
        f"average precision {f(res.average_precision)}",
        f"recall @ P>=0.9   {f(res.recall_at_p90)}",
        f"best F1           {f(res.best_f1)}  at score >= {f(res.best_f1_threshold)}",
    ]
    for title, table in (("alteration", res.recall_by_alteration), ("op", res.recall_by_op), ("kind", res.recall_by_kind), ("generator", res.recall_by_generator)):
        if table:
            lines.append(f"recall by {title}:")
            for k, v in table.items():
                lines.append(f"  {k:<32} {v['found']:>5}/{v['n']:<5} {v['recall']:.3f}")
    return "\n".join(lines)


def label_rows(report: str | Path | pd.DataFrame, truth: str | Path | pd.DataFrame, iou_threshold: float = 0.5,
               contain: bool = False) -> np.ndarray:
    """(N,) 1 where a report row matches some truth pair (as `score_report` matches them, duplicates included)."""
    rep = _read(report, PAIR_COLUMNS, "report")
    tru = _read(truth, TRUTH_REQUIRED, "truth")
    true_pairs = [_sides(r) for _, r in tru.iterrows()]
    by_key: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, (a, b) in enumerate(true_pairs):
        by_key[(a[0], a[1])].append(i)
        by_key[(b[0], b[1])].append(i)
    out = np.zeros(len(rep), dtype=np.int64)
    for k, (_, r) in enumerate(rep.iterrows()):
        a, b = _sides(r)
        out[k] = any(_pair_match(a, b, true_pairs[i], iou_threshold, contain) for i in by_key.get((a[0], a[1]), []))
    return out
