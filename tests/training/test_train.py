"""Tiny-config training runs: the loss falls, stages chain, runs resume exactly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from embedder.checkpoint import load_checkpoint
from embedder.config import Preset
from training.data import DataConfig, SpecimenPool, pair_batch, view_batch
from training.train import TrainConfig, TrainStateMismatch, cosine_lr, init_model, train

TINY = Preset.TINY.config
DATA = DataConfig(n_specimens=6, min_side=40, max_side=64, max_ops=1)


def test_cosine_schedule_endpoints() -> None:
    assert cosine_lr(0, 100, 3e-3, 5e-4) == pytest.approx(3e-3)
    assert cosine_lr(99, 100, 3e-3, 5e-4) == pytest.approx(5e-4)
    assert 5e-4 < cosine_lr(50, 100, 3e-3, 5e-4) < 3e-3


def test_batches_are_deterministic_and_shaped() -> None:
    pool = SpecimenPool(DATA)
    x1, x2 = view_batch(pool, 4, TINY, seed=0, rank=0, step=3)
    y1, _ = view_batch(pool, 4, TINY, seed=0, rank=0, step=3)
    z1, _ = view_batch(pool, 4, TINY, seed=0, rank=1, step=3)
    assert x1.shape == x2.shape == (4, 3, 32, 32)
    assert torch.equal(x1, y1) and not torch.equal(x1, z1)
    xa, xb, labels = pair_batch(pool, 50, TINY, seed=0, rank=0, step=0)
    assert xa.shape == xb.shape == (50, 3, 32, 32) and set(labels.tolist()) <= {0.0, 1.0}
    assert 5 <= labels.sum() <= 35  # similar with p = 0.4


@pytest.mark.slow
def test_infonce_loss_falls_then_head_stage(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(objective="infonce", steps=30, batch_size=8, lr_max=3e-3, save_every=10, data=DATA)
    out = tmp_path / "stage1.pt"
    res = train(TINY, cfg, tmp_path / "s1", out=out, progress=False)
    losses = np.array([v for _, v in res.history])
    assert res.finished and len(losses) == 30
    assert losses[-8:].mean() < losses[:8].mean() - 0.1, losses
    model1, meta1 = load_checkpoint(out)
    assert meta1["method"] == "InfoNCE" and not meta1["head_trained"]

    head_cfg = TrainConfig(objective="head", steps=25, batch_size=16, save_every=25, data=DATA)
    out2 = tmp_path / "bta.pt"
    res2 = train(TINY, head_cfg, tmp_path / "s2", out=out2, init_checkpoint=out, progress=False)
    model2, meta2 = load_checkpoint(out2)
    assert meta2["method"] == "BTA" and meta2["head_trained"] and [s["objective"] for s in meta2["stages"]] == ["infonce", "head"]
    # stage 2 leaves the encoder and projector (and their BatchNorm statistics) untouched
    s1, s2 = model1.state_dict(), model2.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1 if not k.startswith("head."))
    assert any(not torch.equal(s1[k], s2[k]) for k in s1 if k.startswith("head."))
    losses2 = np.array([v for _, v in res2.history])
    assert losses2[-6:].mean() < losses2[:6].mean()


@pytest.mark.parametrize("objective", ["bt", "bta_combined"])
def test_other_objectives_run(tmp_path: Path, objective: str) -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(objective=objective, steps=3, batch_size=6, data=DATA)
    res = train(TINY, cfg, tmp_path / "s", out=tmp_path / "m.pt", progress=False)
    assert res.finished and all(np.isfinite(v) for _, v in res.history)
    _, meta = load_checkpoint(tmp_path / "m.pt")
    assert meta["objective"] == objective


def test_fresh_head_and_until_step_probe_then_resume(tmp_path: Path) -> None:
    torch.manual_seed(0)
    trained = tmp_path / "bta.pt"
    train(TINY, TrainConfig(objective="head", steps=2, batch_size=4, data=DATA), tmp_path / "h", out=trained, progress=False)
    src = load_checkpoint(trained)[0].state_dict()
    kept, _ = init_model(TINY, trained)
    fresh, _ = init_model(TINY, trained, init_head=False)
    for k, v in fresh.state_dict().items():  # encoder/projector copied; head taken only when asked
        same = torch.equal(v, src[k])
        assert same if not k.startswith("head.") else (not same or v.ndim < 2), k
        assert torch.equal(kept.state_dict()[k], src[k]), k
    cfg = TrainConfig(objective="bta_combined", steps=4, batch_size=4, save_every=1, data=DATA)
    probe = train(TINY, cfg, tmp_path / "c", out=tmp_path / "p.pt", init_checkpoint=trained, init_head=False,
                  until_step=2, export_partial=True, progress=False)
    assert probe.step == 2 and not probe.finished and load_checkpoint(tmp_path / "p.pt")[1]["steps"] == 2
    done = train(TINY, cfg, tmp_path / "c", out=tmp_path / "c.pt", init_checkpoint=trained, init_head=False, progress=False)
    assert done.finished and [s for s, _ in done.history] == [1, 2, 3, 4]  # the probe resumed, not restarted
    _, meta = load_checkpoint(tmp_path / "c.pt")
    assert meta["init_head"] is False and meta["method"] == "BTA-combined"


class _Crash(RuntimeError):
    pass


def test_interrupted_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    cfg = TrainConfig(objective="infonce", steps=6, batch_size=4, save_every=1, data=DATA)
    torch.manual_seed(1)
    straight = train(TINY, cfg, tmp_path / "a", out=tmp_path / "a.pt", progress=False)

    def crash_at_3(step: int, loss: float) -> None:
        if step == 3:
            raise _Crash

    torch.manual_seed(1)
    with pytest.raises(_Crash):
        train(TINY, cfg, tmp_path / "b", out=tmp_path / "b.pt", on_step=crash_at_3, progress=False)
    assert not (tmp_path / "b.pt").exists()
    torch.manual_seed(99)  # a different init must not matter: the state file wins
    resumed = train(TINY, cfg, tmp_path / "b", out=tmp_path / "b.pt", progress=False)
    assert resumed.step == 6 and [s for s, _ in resumed.history] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose([v for _, v in resumed.history], [v for _, v in straight.history], rtol=1e-4)
    a, _ = load_checkpoint(tmp_path / "a.pt")
    b, _ = load_checkpoint(tmp_path / "b.pt")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=1e-4, atol=1e-5, msg=k)


def test_time_budget_stops_and_state_mismatch_is_refused(tmp_path: Path) -> None:
    cfg = TrainConfig(objective="infonce", steps=50, batch_size=4, data=DATA)
    res = train(TINY, cfg, tmp_path / "s", out=tmp_path / "m.pt", max_seconds=0.0, progress=False)
    assert not res.finished and res.step == 0 and not (tmp_path / "m.pt").exists()
    assert (tmp_path / "s" / "state.pt").exists()
    with pytest.raises(TrainStateMismatch):
        train(TINY, TrainConfig(objective="infonce", steps=51, batch_size=4, data=DATA), tmp_path / "s", progress=False)


def test_partial_export_when_stopped_early(tmp_path: Path) -> None:
    cfg = TrainConfig(objective="bt", steps=50, batch_size=4, data=DATA)
    res = train(TINY, cfg, tmp_path / "s", out=tmp_path / "m.pt", max_seconds=0.0, export_partial=True, progress=False)
    assert not res.finished
    _, meta = load_checkpoint(tmp_path / "m.pt")
    assert meta["finished"] is False and meta["steps"] == 0
