"""Learning from verdicts: reviewed pairs read back from the reports, and the correction of the shipped score they fit."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from embedder.fusion import PixelFusion
from embedder.verify import AlignConfig
from jobs.report import ReportPair
from jobs.report_rows import write_outputs
from jobs.verdict_calibration import Correction, ReviewedPairs, correction_from_verdicts, features, reviewed_pairs
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


BASE = PixelFusion(0.1, 0.8, 1.0, -1.3, AlignConfig(), w_match_margin=0.9, w_detail_margin=0.6)
LOOK_ALIKE = (0.97, 0.95, 0.6)  # head sure, pixels line up, fine detail does not: scored 0.76 by BASE
COPY = (0.9, 0.97, 0.9)  # a reused panel: scored 0.88


def reviewed_as_reported(specs: list[tuple[tuple[float, float, float], int]], seed: int = 0) -> ReviewedPairs:
    """Reviewed pairs around `specs` (numbers, label), jittered, with the scores BASE reported them with."""
    rng = np.random.default_rng(seed)
    h, c, d = (np.clip(np.array([s[0][i] for s in specs]) + rng.normal(0, 0.01, len(specs)), 0, 0.995) for i in range(3))
    labels = np.array([s[1] for s in specs])
    return ReviewedPairs([f"k{i}" for i in range(len(specs))], h, c, d, labels, BASE.combine(h, c, d).astype(np.float64))


def test_without_verdicts_the_score_is_exactly_the_shipped_one() -> None:
    empty = ReviewedPairs([], *(np.zeros(0) for _ in range(3)), np.zeros(0, dtype=np.int64), np.zeros(0))
    for reviewed in (empty, reviewed_as_reported([(LOOK_ALIKE, 0), (COPY, 1)])):  # none, or too few to cross-validate
        correction, how = correction_from_verdicts(reviewed)
        assert correction.apply(BASE) == BASE, how
    assert Correction().apply(BASE) == BASE
    # the correction is the shipped logit plus its own terms; the fusion it writes scales every shipped weight
    c = Correction(0.5, (0.2, -0.3, 0.4), -0.1)
    assert np.isclose(c.logit(np.array([[1.5, 0.3, 1.2, 0.8]]))[0], 1.5 * 1.5 + 0.2 * 0.3 - 0.3 * 1.2 + 0.4 * 0.8 - 0.1)
    fused = c.apply(BASE)
    assert np.isclose(fused.w_match_margin, 1.5 * 0.9) and np.isclose(fused.bias, 1.5 * -1.3 - 0.1)
    head, corr, detail = np.array([0.8]), np.array([0.7]), np.array([0.5])
    z_base = np.log(BASE.combine(head, corr, detail) / (1 - BASE.combine(head, corr, detail)))
    x = np.column_stack([z_base, features(head, corr, detail)])
    assert np.isclose(fused.combine(head, corr, detail)[0], 1 / (1 + np.exp(-c.logit(x)[0])), atol=1e-5)


def test_consistent_verdicts_move_a_look_alike_under_the_threshold_and_keep_copies_over_it() -> None:
    threshold = 0.5
    reviewed = reviewed_as_reported([(LOOK_ALIKE, 0)] * 10 + [(COPY, 1)] * 10)
    assert (reviewed.score > threshold).all()  # every reviewed pair was reported
    correction, how = correction_from_verdicts(reviewed)
    assert correction.prior is not None and how["prior_chosen_by"].endswith("cross-validation")
    after = correction.apply(BASE)
    new = reviewed_as_reported([(LOOK_ALIKE, 0), (COPY, 1)], seed=7)  # pairs no verdict was given on
    before_scores = BASE.combine(new.head, new.correlation, new.detail)
    after_scores = after.combine(new.head, new.correlation, new.detail)
    assert before_scores[0] > threshold > after_scores[0]  # the look-alike crosses the threshold
    assert after_scores[1] > threshold
    # a strong prior keeps the shipped score: the verdicts barely pull against it
    held = correction_from_verdicts(reviewed, prior=1e6)[0].apply(BASE).combine(new.head, new.correlation, new.detail)
    assert np.allclose(held, before_scores, atol=1e-3)


def test_calibrate_verdicts_needs_both_kinds_of_verdict(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from jobs.cli import main

    pairs = scan_dir(tmp_path / "out")
    VerdictStore.for_store(tmp_path / "out" / "store").add(Verdict.for_pair(pairs[0], CONFIRMED))
    result = CliRunner().invoke(main, ["calibrate", "--out", str(tmp_path / "new.pt"), "--verdicts", str(tmp_path / "out")])
    assert result.exit_code == 1 and "1 reviewed pair(s) found (1 confirmed)" in result.output
    assert not (tmp_path / "new.pt").exists()


def test_calibrate_verdicts_writes_a_new_checkpoint_with_its_provenance(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from embedder.checkpoint import read_checkpoint
    from embedder.inference import DEFAULT_CHECKPOINT
    from jobs.cli import main

    pairs = scan_dir(tmp_path / "out")
    store = VerdictStore.for_store(tmp_path / "out" / "store")
    for pair, verdict in zip(pairs, (CONFIRMED, DISMISSED, DISMISSED, CONFIRMED)):
        store.add(Verdict.for_pair(pair, verdict))
    shipped = DEFAULT_CHECKPOINT.read_bytes()
    runner = CliRunner()
    same = runner.invoke(main, ["calibrate", "--out", str(DEFAULT_CHECKPOINT), "--verdicts", str(tmp_path / "out")])
    assert same.exit_code == 1 and "is the model learnt from" in same.output
    result = runner.invoke(main, ["calibrate", "--out", str(tmp_path / "new.pt"), "--verdicts", str(tmp_path / "out"),
                                  "--verdict-prior", "3"])
    assert result.exit_code == 0, result.output
    assert DEFAULT_CHECKPOINT.read_bytes() == shipped
    entry = read_checkpoint(tmp_path / "new.pt")["meta"]["pixel_check"]
    assert entry["verdicts"]["reviewed_pairs"] == 4 and entry["verdicts"]["confirmed"] == 2
    assert entry["verdicts"]["correction"]["prior"] == 3.0 and entry["verdicts"]["prior_chosen_by"] == "given"
    assert entry["verdicts"]["base_model"] == str(DEFAULT_CHECKPOINT)
    fusion = PixelFusion.from_meta(read_checkpoint(tmp_path / "new.pt")["meta"])
    assert fusion is not None and fusion != PixelFusion.from_meta(read_checkpoint(DEFAULT_CHECKPOINT)["meta"])


def test_a_correction_never_lets_a_better_match_lower_a_score() -> None:
    # verdicts that run against every feature: the sure-looking pairs dismissed, the weak ones confirmed
    sure, weak = (0.99, 0.97, 0.9), (0.5, 0.6, 0.3)
    reviewed = reviewed_as_reported([(sure, 0)] * 10 + [(weak, 1)] * 10)
    free, _ = correction_from_verdicts(reviewed, prior=0.03)
    unconstrained = free.apply(BASE)
    assert min(unconstrained.w_head, unconstrained.w_match, unconstrained.w_detail) < 0  # what the constraint prevents
    kept, _ = correction_from_verdicts(reviewed, prior=0.03, base=BASE)
    after = kept.apply(BASE)
    weights = (after.w_head, after.w_match, after.w_detail, after.w_match_margin, after.w_detail_margin)
    assert min(weights) >= -1e-6, weights
    scores = after.combine(np.array([0.5, 0.99]), np.array([0.6, 0.97]), np.array([0.3, 0.9]))
    assert scores[1] >= scores[0] - 1e-6  # better on every feature: never ranked under
    assert kept.prior == 0.03
