"""Learning from verdicts: reviewed pairs read back from the reports, and the weighted refit of the fusion."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedder.fusion import PixelFusion
from embedder.verify import AlignConfig
from jobs.report import ReportPair
from jobs.report_rows import write_outputs
from jobs.verdict_calibration import ReviewedPairs, fit_with_verdicts, margin_part, reviewed_pairs
from jobs.verdicts import CONFIRMED, DISMISSED, UNSURE, Verdict, VerdictStore
from tests.jobs.review_samples import make_store, panels, refs


def scan_dir(out: Path) -> list[ReportPair]:
    images = panels()
    make_store(out / "store", images)
    r = refs(images)
    pairs = [ReportPair(score=0.97, a=r["A"], b=r["A90"], transform="rot90", head_score=0.9, pixel_match=0.95, pixel_detail=0.8),
             ReportPair(score=0.91, a=r["B"], b=r["C"], head_score=0.99, pixel_match=0.3, pixel_detail=0.1),
             ReportPair(score=0.85, a=r["A"], b=r["B"], head_score=0.7, pixel_match=None, pixel_detail=None),
             ReportPair(score=0.80, a=r["C"], b=r["A90"], head_score=0.6, pixel_match=0.2, pixel_detail=0.05)]
    write_outputs(out, pairs, [], title="t", summary={})
    return pairs


def test_reviewed_pairs_are_read_back_from_the_report_rows(tmp_path: Path) -> None:
    pairs = scan_dir(tmp_path / "out")
    store = VerdictStore.for_store(tmp_path / "out" / "store")
    store.add(Verdict.for_pair(pairs[0], DISMISSED, decided_at="2026-11-25T00:00:00.000000Z"))
    store.add(Verdict.for_pair(pairs[0], CONFIRMED, decided_at="2026-11-25T01:00:00.000000Z"))  # the latest wins
    store.add(Verdict.for_pair(pairs[1], DISMISSED))
    store.add(Verdict.for_pair(pairs[2], DISMISSED))
    store.add(Verdict.for_pair(pairs[3], UNSURE))  # no label
    got = reviewed_pairs([tmp_path / "out"])
    by_key = {k: (h, c, d, y) for k, h, c, d, y in zip(got.keys, got.head, got.correlation, got.detail, got.labels)}
    assert by_key == {pairs[0].pair_key: (0.9, 0.95, 0.8, 1), pairs[1].pair_key: (0.99, 0.3, 0.1, 0),
                      pairs[2].pair_key: (0.7, 0.0, 0.0, 0)}  # dismissed.csv is read too; unplaced = no match


def test_refit_learns_the_corpus_look_alikes() -> None:
    rng = np.random.default_rng(0)
    n = 400  # generated pairs: copies have high pixel match, others low; the head is informative
    labels = (rng.random(n) < 0.4).astype(int)
    head = np.clip(np.where(labels == 1, 0.85, 0.3) + rng.normal(0, 0.1, n), 0.01, 0.99)
    corr = np.clip(np.where(labels == 1, 0.8, 0.3) + rng.normal(0, 0.1, n), 0, 0.99)
    detail = np.clip(corr - 0.2, 0, 0.99)
    # the corpus's look-alikes: head sure and pixels middling, yet dismissed; true copies line up well
    m = 40
    r_labels = np.array([0, 1] * (m // 2))
    r_head = np.full(m, 0.97)
    r_corr = np.where(r_labels == 1, 0.75, 0.55)
    reviewed = ReviewedPairs([f"k{i}" for i in range(m)], r_head, r_corr, r_corr - 0.2, r_labels)
    almost_none = fit_with_verdicts((head, corr, detail, labels), reviewed, AlignConfig(), verdict_share=1e-6)
    learned = fit_with_verdicts((head, corr, detail, labels), reviewed, AlignConfig(), verdict_share=0.5)
    look_alike = (np.array([0.97]), np.array([0.55]), np.array([0.35]))
    assert learned.combine(*look_alike)[0] < almost_none.combine(*look_alike)[0] - 0.2
    assert learned.combine(np.array([0.97]), np.array([0.75]), np.array([0.55]))[0] > 0.5
    with pytest.raises(ValueError, match="strictly between"):
        fit_with_verdicts((head, corr, detail, labels), reviewed, AlignConfig(), verdict_share=1.0)


def test_a_fusion_with_background_margins_keeps_them_and_reads_each_pairs_margin_back() -> None:
    base = PixelFusion(0.5, 1.0, 1.0, -2.0, AlignConfig(), w_match_margin=0.9, w_detail_margin=0.6)
    head, corr, detail = np.array([0.9, 0.4]), np.array([0.8, 0.3]), np.array([0.6, 0.1])
    margin_logit = np.array([1.5, -2.0])  # what the run's other candidates added to each pair's logit
    plain = base.combine(head, corr, detail)
    reported = 1.0 / (1.0 + np.exp(-(np.log(plain / (1 - plain)) + margin_logit)))
    reviewed = ReviewedPairs(["k0", "k1"], head, corr, detail, np.array([1, 0]), reported)
    assert np.allclose(margin_part(base, reviewed), margin_logit, atol=1e-4)
    rng = np.random.default_rng(1)
    labels = (rng.random(200) < 0.4).astype(int)
    g = np.clip(np.where(labels == 1, 0.8, 0.3) + rng.normal(0, 0.1, 200), 0.01, 0.99)
    refit = fit_with_verdicts((g, g, g - 0.1, labels), reviewed, AlignConfig(), verdict_share=0.3, base=base)
    assert (refit.w_match_margin, refit.w_detail_margin) == (0.9, 0.6)
    assert refit.uses_background and (refit.w_head, refit.bias) != (base.w_head, base.bias)


def test_calibrate_verdicts_needs_both_kinds_of_verdict(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from jobs.cli import main

    pairs = scan_dir(tmp_path / "out")
    VerdictStore.for_store(tmp_path / "out" / "store").add(Verdict.for_pair(pairs[0], CONFIRMED))
    result = CliRunner().invoke(main, ["calibrate", "--out", str(tmp_path / "new.pt"), "--verdicts", str(tmp_path / "out")])
    assert result.exit_code == 1 and "1 reviewed pair(s) found (1 confirmed)" in result.output
    assert not (tmp_path / "new.pt").exists()
