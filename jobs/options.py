"""What a scan or nightly run is asked to do (`RunOptions`) and what it did (`RunSummary`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.match import MatchOptions
from jobs.pipeline import PipelineOptions
from jobs.report import MAX_PAIRS


@dataclass(frozen=True)
class RunOptions:
    """The options shared by `run_scan` and `run_nightly`."""

    pipeline: PipelineOptions = field(default_factory=PipelineOptions)  # extraction + embedding (and the model)
    match: MatchOptions = field(default_factory=MatchOptions)           # candidates, scoring, threshold
    address: str | None = None  # Ray cluster to join; None: start a local Ray
    progress: bool = True       # progress bars and stage lines on stderr
    cards: int = MAX_PAIRS      # pairs report.html draws as cards (every pair is in report.csv)

    @property
    def model_path(self) -> str | None:
        return self.pipeline.model_path


@dataclass(frozen=True)
class RunSummary:
    """What a run did: document and panel counts, pairs found, errors, time per stage."""

    documents: int          # inputs found
    new_documents: int      # extracted by this run
    skipped_documents: int  # already in the store
    pages: int              # of the new documents
    panels: int             # records extracted now
    noise: int              # of which flagged as noise
    candidates: int
    pairs: int
    groups: int
    errors: int
    seconds: dict[str, float]  # per stage, and "total"
    report: Path               # report.html

    def html_summary(self) -> dict[str, Any]:
        """The summary as the HTML writer wants it: counts as tiles, stage times under `timings`."""
        return {
            "documents": self.documents, "new_documents": self.new_documents,
            "skipped_documents": self.skipped_documents, "pages": self.pages, "panels": self.panels,
            "noise": self.noise, "candidates": self.candidates, "pairs": self.pairs, "groups": self.groups,
            "errors": self.errors, "timings": {k: v for k, v in self.seconds.items() if k != "total"},
        }


def format_summary(summary: RunSummary) -> str:
    """The closing lines printed after a run."""
    s = summary
    return "\n".join([
        f"documents {s.documents} (new {s.new_documents}, already stored {s.skipped_documents}); "
        f"extracted now: pages {s.pages}, panels {s.panels} (noise {s.noise}); "
        f"candidates {s.candidates}, pairs {s.pairs} in {s.groups} group(s), errors {s.errors}",
        "time: " + ", ".join(f"{k} {v:.1f}s" for k, v in s.seconds.items()),
    ])
