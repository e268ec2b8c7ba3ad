"""The training loop for every stage of the recipe, resumable and data-parallel-ready.

Objectives (`TrainConfig.objective`):
- "infonce":      encoder + projector, NT-Xent on two altered views (fast from scratch on CPU);
- "bt":           encoder + projector, Barlow Twins loss (BTA stage 1, and the baseline);
- "head":         BTA stage 2: encoder + projector frozen, head trained with BCE on pairs
                  similar with probability 0.4;
- "bta_combined": everything trained with L_BCE(all in-batch pairs) + 2e-5 * L_BT.
AdamW with a cosine learning rate from `lr_max` (3e-3) down to `lr_min` (5e-4).

Resumability: every `save_every` steps (and when stopped by `max_seconds`) rank 0 writes
`state_dir/state.pt` atomically (model, optimiser, step, loss history). Calling `train`
again with the same configs resumes from it; batches depend only on (seed, rank, step),
so the resumed run is the run that would have happened. The loop knows nothing about
Ray: data parallelism comes in through `rank`, `world_size` and `prepare_model` (the
`jobs` layer passes Ray Train's), and gradients are averaged by DDP.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from embedder.checkpoint import atomic_torch_save, load_checkpoint, save_checkpoint
from embedder.config import ModelConfig
from embedder.model import BTAModel
from training.data import DataConfig, SpecimenPool, pair_batch, view_batch
from training.losses import barlow_twins_loss, bce_head_loss, bta_combined_loss, info_nce_loss

log = logging.getLogger(__name__)

OBJECTIVES = ("infonce", "bt", "head", "bta_combined")
METHOD_NAMES = {"infonce": "InfoNCE", "bt": "Barlow Twins", "head": "BTA", "bta_combined": "BTA-combined"}
STATE_FORMAT = "reusescan-train-state/1"


@dataclass(frozen=True)
class TrainConfig:
    """One training stage. Changing any field starts a new run (no silent resume)."""

    objective: str = "infonce"
    steps: int = 1000
    batch_size: int = 32
    lr_max: float = 3e-3
    lr_min: float = 5e-4
    weight_decay: float = 1e-4
    temperature: float = 0.1
    seed: int = 0
    save_every: int = 20
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; expected one of {OBJECTIVES}")
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError("need steps >= 1 and batch_size >= 2")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["data"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d["data"].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        data: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.pop("data").items()}
        return cls(**d, data=DataConfig(**data))


@dataclass
class TrainResult:
    """What a call to `train` did."""

    step: int
    finished: bool
    history: list[tuple[int, float]]
    elapsed_seconds: float
    checkpoint: Path | None = None


class TrainStateMismatch(RuntimeError):
    """state_dir holds a run with different configs: use another state_dir or delete it."""


def cosine_lr(step: int, total: int, lr_max: float, lr_min: float) -> float:
    """Cosine decay from lr_max at step 0 to lr_min at the last step."""
    if total <= 1:
        return lr_max
    t = min(max(step / (total - 1), 0.0), 1.0)
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * t))


class ObjectiveModule(nn.Module):
    """Model + objective in one `forward` returning the loss, so DDP can wrap it."""

    def __init__(self, model: BTAModel, config: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.objective = config.objective
        self.temperature = config.temperature

    def forward(self, *batch: torch.Tensor) -> torch.Tensor:
        m = self.model
        if self.objective == "head":
            xa, xb, labels = batch
            with torch.no_grad():
                ea, eb = m.embed(xa), m.embed(xb)
            return bce_head_loss(m.head_logits(ea, eb), labels)
        x1, x2 = batch
        z = m.project(torch.cat([x1, x2], dim=0))
        z1, z2 = z.chunk(2, dim=0)
        if self.objective == "infonce":
            return info_nce_loss(z1, z2, self.temperature)
        if self.objective == "bt":
            return barlow_twins_loss(z1, z2)
        loss, _ = bta_combined_loss(m.head, z1, z2)
        return loss


def set_trainable(model: BTAModel, objective: str) -> None:
    """Which parts learn: head only for "head", encoder+projector for "infonce"/"bt", all for combined."""
    backbone = objective != "head"
    head = objective in ("head", "bta_combined")
    for p in list(model.encoder.parameters()) + list(model.projector.parameters()):
        p.requires_grad_(backbone)
    for p in model.head.parameters():
        p.requires_grad_(head)


def _train_mode(model: BTAModel, objective: str) -> None:
    model.train()
    if objective == "head":  # frozen encoder: keep its BatchNorm statistics fixed
        model.encoder.eval()
        model.projector.eval()


def init_model(model_config: ModelConfig, init_checkpoint: str | os.PathLike[str] | None,
               backbone_weights: str | os.PathLike[str] | None = None,
               init_head: bool = True) -> tuple[BTAModel, dict[str, Any]]:
    """A fresh model, with encoder/projector (and head, if the same kind and `init_head`) copied from
    `init_checkpoint`, or with external backbone weights (torchvision / Barlow Twins file) in the encoder."""
    model = BTAModel(model_config)
    meta: dict[str, Any] = {}
    if backbone_weights is not None:
        from embedder.weights import load_backbone_weights

        load_backbone_weights(model.encoder, backbone_weights)
    if init_checkpoint is not None:
        src, meta = load_checkpoint(init_checkpoint)
        own = model.state_dict()
        take = {k: v for k, v in src.state_dict().items()
                if k in own and own[k].shape == v.shape and (not k.startswith("head.") or (init_head and src.config.head_kind == model_config.head_kind))}
        missing = [k for k in own if not k.startswith("head.") and k not in take]
        if missing:
            raise ValueError(f"{init_checkpoint} does not fit this model config (missing {missing[:5]})")
        model.load_state_dict(take, strict=False)
    return model, meta


def make_batch(pool: SpecimenPool, model_config: ModelConfig, config: TrainConfig, rank: int, step: int) -> tuple[torch.Tensor, ...]:
    if config.objective == "head":
        return pair_batch(pool, config.batch_size, model_config, config.seed, rank, step)
    return view_batch(pool, config.batch_size, model_config, config.seed, rank, step)


def train(
    model_config: ModelConfig,
    config: TrainConfig,
    state_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    init_checkpoint: str | os.PathLike[str] | None = None,
    *,
    backbone_weights: str | os.PathLike[str] | None = None,
    rank: int = 0,
    world_size: int = 1,
    prepare_model: Callable[[nn.Module], nn.Module] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    max_seconds: float | None = None,
    export_partial: bool = False,
    progress: bool = True,
    init_head: bool = True,
    until_step: int | None = None,
) -> TrainResult:
    """Run (or resume) one training stage; on completion rank 0 writes the model to `out`.

    `max_seconds` stops early (state saved) so long trainings span several sessions;
    `until_step` does the same at a given step (an LR probe that the main run can resume);
    with `export_partial` the model is written to `out` even then (meta "finished": False).
    `init_head=False` starts the head from scratch even when `init_checkpoint` has one of
    the same kind (BTA-combined from the start of the pair stage, as in the paper).
    """
    state_dir = Path(state_dir)
    state_path = state_dir / "state.pt"
    model, init_meta = init_model(model_config, init_checkpoint, backbone_weights, init_head)
    set_trainable(model, config.objective)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr_max, weight_decay=config.weight_decay)
    step, history, elapsed = 0, [], 0.0
    if state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if state.get("format") != STATE_FORMAT or state["model_config"] != model_config.to_dict() or state["train_config"] != config.to_dict():
            raise TrainStateMismatch(f"{state_path} belongs to a different run (configs differ)")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed = int(state["step"]), float(state["elapsed"])
        history = [(int(s), float(v)) for s, v in state["history"]]
        log.info("resuming %s at step %d", state_path, step)

    def save_state() -> None:
        if rank == 0:
            atomic_torch_save({
                "format": STATE_FORMAT, "model_config": model_config.to_dict(), "train_config": config.to_dict(),
                "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "elapsed": elapsed,
                "history": [[s, v] for s, v in history],
            }, state_path)

    module: nn.Module = ObjectiveModule(model, config)
    if prepare_model is not None:
        module = prepare_model(module)
    device = next(module.parameters()).device
    pool = SpecimenPool(config.data)
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=config.steps, initial=step, desc=f"train {config.objective}", unit="step")
    started = time.monotonic()
    base_elapsed = elapsed
    stopped_early = False
    while step < config.steps:
        if (max_seconds is not None and time.monotonic() - started >= max_seconds) or \
                (until_step is not None and step >= until_step):
            stopped_early = True
            break
        lr = cosine_lr(step, config.steps, config.lr_max, config.lr_min)
        for group in opt.param_groups:
            group["lr"] = lr
        batch = tuple(t.to(device) for t in make_batch(pool, model_config, config, rank, step))
        _train_mode(model, config.objective)
        loss = module(*batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        if world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            t = torch.tensor([value], device=device)
            torch.distributed.all_reduce(t)
            value = float(t) / world_size
        step += 1
        history.append((step, value))
        elapsed = base_elapsed + time.monotonic() - started
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.2e}")
        if on_step is not None:
            on_step(step, value)
        if step % config.save_every == 0 or step == config.steps:
            save_state()
    if bar is not None:
        bar.close()
    if stopped_early:
        save_state()
    finished = step >= config.steps
    written = None
    if (finished or export_partial) and out is not None and rank == 0:
        model.eval()
        meta = {
            "objective": config.objective,
            "method": METHOD_NAMES[config.objective],
            "head_trained": config.objective in ("head", "bta_combined"),
            "train_config": config.to_dict(),
            "steps": step,
            "finished": finished,
            "elapsed_seconds": round(elapsed, 1),
            "world_size": world_size,
            "history": [[s, round(v, 6)] for s, v in history],
            "init": str(init_checkpoint) if init_checkpoint else "",
            "init_method": str(init_meta.get("method", "")),
            "init_head": bool(init_checkpoint) and init_head,
            "stages": list(init_meta.get("stages", [])) + [{"objective": config.objective, "steps": step,
                                                             "elapsed_seconds": round(elapsed, 1)}],
        }
        save_checkpoint(out, model, meta)
        written = Path(out)
    return TrainResult(step=step, finished=finished, history=history, elapsed_seconds=elapsed, checkpoint=written)
