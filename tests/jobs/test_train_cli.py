"""`reusescan train` and `reusescan evaluate` end to end on the tiny preset."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from embedder.checkpoint import load_checkpoint
from jobs.cli import main
from tests.training.standin_alterations import install_if_missing


@pytest.fixture(autouse=True)
def _alterations_and_one_thread() -> Iterator[None]:
    import torch

    install_if_missing()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train(tmp_path: Path, *extra: str) -> tuple[CliRunner, Path]:
    out = tmp_path / "m.pt"
    result = CliRunner().invoke(main, ["train", "--preset", "tiny", "--steps", "3", "--batch-size", "4",
                                       "--specimens", "4", "--state-dir", str(tmp_path / "state"),
                                       "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result, out


def test_train_then_evaluate_cli(tmp_path: Path) -> None:
    result, out = _train(tmp_path)
    assert f"wrote {out}" in result.output and json.loads(re.search(r'\{"step".*\}', result.output).group(0))["step"] == 3
    _, meta = load_checkpoint(out)
    assert meta["method"] == "InfoNCE"
    # stage 2 from the checkpoint, with the paper's (asymmetric) head
    out2 = tmp_path / "bta.pt"
    r2 = CliRunner().invoke(main, ["train", "--objective", "head", "--init", str(out), "--head-kind", "concat",
                                   "--steps", "2", "--batch-size", "4", "--specimens", "4",
                                   "--state-dir", str(tmp_path / "state2"), "--out", str(out2)])
    assert r2.exit_code == 0, r2.output
    model, meta2 = load_checkpoint(out2)
    assert model.config.head_kind == "concat" and meta2["method"] == "BTA"

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    roc = tmp_path / "roc.png"
    ev = CliRunner().invoke(main, ["evaluate", str(folder), "--model", str(out2), "--model", str(out),
                                   "--pairs", "10", "--roc", str(roc), "--json"])
    assert ev.exit_code == 0, ev.output
    data = json.loads(ev.output)
    assert [m["name"] for m in data["methods"]] == ["BTA", "BTA cosine", "InfoNCE cosine"]
    assert data["pairs"] == 10 and roc.is_file()
    table = CliRunner().invoke(main, ["evaluate", str(folder), "--model", str(out2), "--pairs", "6", "--roc", str(roc)])
    assert table.exit_code == 0 and "accuracy" in table.output and "per-alteration accuracy" in table.output


def test_train_refuses_a_state_dir_of_another_run(tmp_path: Path) -> None:
    _train(tmp_path)
    result = CliRunner().invoke(main, ["train", "--preset", "tiny", "--steps", "4", "--batch-size", "4",
                                       "--specimens", "4", "--state-dir", str(tmp_path / "state"),
                                       "--out", str(tmp_path / "x.pt")])
    assert result.exit_code == 1 and "different run" in result.output


@pytest.mark.slow
@pytest.mark.ray
def test_two_ray_train_workers(tmp_path: Path) -> None:
    import training

    if not any((Path(training.__file__).parent / name).exists() for name in ("alterations.py", "alterations")):
        pytest.skip("training.alterations not written yet; Ray worker processes cannot use the test stand-in")
    import ray

    out = tmp_path / "ddp.pt"
    try:
        result = CliRunner().invoke(main, ["train", "--preset", "tiny", "--steps", "3", "--batch-size", "4",
                                           "--specimens", "4", "--state-dir", str(tmp_path / "state"),
                                           "--out", str(out), "--workers", "2", "--threads", "1"])
    finally:
        ray.shutdown()
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    _, meta = load_checkpoint(out)
    assert meta["world_size"] == 2 and meta["steps"] == 3
