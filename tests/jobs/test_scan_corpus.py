"""End to end: a generated corpus of papers, scanned through real Ray with the shipped model.

Checks the product's promise on planted reuse: every planted pair (altered copies
across and within papers, rotated, flipped, cropped, recoloured, noised) comes out of
the pipeline as a candidate with its exact page and bbox, and the shipped model
ranks planted pairs above the bulk of look-alike candidates, the pixel check
confirming them; `--no-pixel-check` falls back to the head alone.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from jobs.cli import main
from training.corpus import CorpusConfig, make_corpus
from training.scoring import score_report

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    make_corpus(out, CorpusConfig(docs=10, reuse=6, seed=5, images=False))
    return out


def page_pairs(rows: pd.DataFrame) -> list[tuple[tuple[str, int], ...]]:
    """Each row's two (document, page) places, in either order."""
    return [tuple(sorted([(r.doc_a, r.page_a), (r.doc_b, r.page_b)])) for r in rows.itertuples()]


def test_planted_pairs_are_found_and_ranked(corpus: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["scan", str(corpus / "pdf"), "--out", str(tmp_path / "scan"),
                                       "--threshold", "0", "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = pd.read_csv(tmp_path / "scan" / "report.csv")
    truth = pd.read_csv(corpus / "truth.csv")
    assert set(truth["kind"]) == {"inter", "intra"}
    scored = score_report(report, truth)
    print(f"recall {scored.recall} AP {scored.average_precision:.3f} R@P90 {scored.recall_at_p90:.3f} rows {len(report)}")
    assert scored.recall == 1.0, scored.recall_by_alteration          # every planted pair, exact bboxes
    assert scored.average_precision >= 0.8, scored.average_precision  # the shipped model ranks them high
    # every planted pair was checked pixel by pixel and lines up
    best_match: dict[tuple[tuple[str, int], ...], float] = {}
    for pages, match in zip(page_pairs(report), report["pixel_match"]):
        best_match[pages] = max(best_match.get(pages, 0.0), match)
    planted = {pages: best_match[pages] for pages in page_pairs(truth)}
    assert min(planted.values()) > 0.85, planted
    assert report["head_score"].notna().all()
    html = (tmp_path / "scan" / "report.html").read_text(encoding="utf-8")
    # one card per finding; a report this large (hundreds of rows at threshold 0) holds them as data, drawn a page at a time
    cards = re.search(r'<body data-cards="(\d+)"', html)
    assert cards is not None and int(cards.group(1)) >= len(truth) and 'id="rs-items"' in html

    # the same store again, head alone: nothing is extracted again, scores are the head's; 5 cards
    again = CliRunner().invoke(main, ["scan", str(corpus / "pdf"), "--out", str(tmp_path / "scan"), "--threshold", "0",
                                      "--no-progress", "--no-pixel-check", "--cards", "5"], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    head_only = pd.read_csv(tmp_path / "scan" / "report.csv")
    assert (head_only["score"] - head_only["head_score"]).abs().max() < 1e-3
    html = (tmp_path / "scan" / "report.html").read_text(encoding="utf-8")
    assert (f"Showing the 5 highest-scoring of {len(head_only):,} pairs; {len(head_only) - 5:,} lower-scoring pairs "
            "are listed only in report.csv") in html
    cards = re.search(r'<body data-cards="(\d+)"', html)
    assert cards is not None and 1 <= int(cards.group(1)) <= 5
    assert head_only["pixel_match"].isna().all()
    assert score_report(head_only, truth).recall == 1.0
