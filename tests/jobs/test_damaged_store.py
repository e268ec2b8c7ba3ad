"""A damaged store stops `scan` and `nightly` with a named error (exit 1), never a report from part of it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from index.store import FigureStore
from jobs.cli import main
from tests.index.helpers import figures_table


def _store(root: Path) -> Path:
    store = FigureStore.create(root, model_id="m", dim=8)
    rng = np.random.default_rng(0)
    for batch in range(2):
        store.append(figures_table([{"doc": f"d{batch}-{i}.pdf"} for i in range(4)]), rng.normal(size=(4, 8)),
                     model_id="m", run_id=f"run-{batch}")
    return root / store.files[1]


@pytest.mark.parametrize("command", ["scan", "nightly"])
def test_a_truncated_store_file_stops_the_run_with_its_name(tmp_path: Path, command: str) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    store_dir = tmp_path / "out" / "store" if command == "scan" else tmp_path / "store"
    damaged = _store(store_dir)
    damaged.write_bytes(damaged.read_bytes()[:-100])
    args = (["scan", str(corpus), "--out", str(tmp_path / "out")] if command == "scan"
            else ["nightly", str(corpus), "--store", str(store_dir), "--date", "2026-11-26"])
    result = CliRunner().invoke(main, [*args, "--no-progress"])
    assert result.exit_code == 1, result.output
    assert "part-000001.parquet" in result.output and "truncated" in result.output
    assert "another model" not in result.output  # not mistaken for a model mismatch
    assert not (tmp_path / "out" / "report.csv").exists()
    assert not (store_dir / "reports").exists()


def test_a_staging_area_that_cannot_be_written_stops_the_scan_with_its_reason(tmp_path: Path) -> None:
    """The embedding actors write the staged batches (`jobs.staging.stage_batch`): their failure is the scan's
    named error (exit 1), not documents reported as crashed in a report."""
    from PIL import Image

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (160, 200, 3), dtype=np.uint8)).save(corpus / "blot.png")
    staging = tmp_path / "out" / "store" / "staging"
    staging.parent.mkdir(parents=True)
    staging.write_text("a file where the staging folder goes")
    result = CliRunner().invoke(main, ["scan", str(corpus), "--out", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 1, result.output
    assert "cannot write to the staging area" in result.output and "FileExistsError" in result.output
    assert not (tmp_path / "out" / "report.csv").exists()
