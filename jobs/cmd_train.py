"""`reusescan train`: one stage of the BTA recipe, resumable, optionally data-parallel on Ray Train.

The model config comes from a preset, or from the `--init` checkpoint when a stage
continues an earlier one (only the head kind may be chosen anew); the training loop is
`training.train.train`. With `--workers N` the same loop runs on N Ray Train workers
(TorchTrainer; gloo on CPU, nccl on GPU), each drawing its own batches; gradients are
averaged by DDP. This module is the only place that touches Ray for training.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import click
import torch

from embedder.checkpoint import read_checkpoint
from embedder.config import ModelConfig, Preset
from training.data import DataConfig
from training.train import TrainConfig, TrainStateMismatch, train

log = logging.getLogger(__name__)


def _model_config(preset: str, init: str | None, head_kind: str | None) -> ModelConfig:
    if init is not None:
        config = ModelConfig.from_dict(read_checkpoint(init)["config"])
    else:
        config = Preset(preset).config
    return config.replace(head_kind=head_kind) if head_kind else config


def torch_load_state(path: Path) -> dict[str, Any]:
    """The training state file's plain fields (step, history, elapsed), or {} if absent."""
    if not path.is_file():
        return {}
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: state[k] for k in ("step", "history", "elapsed") if k in state}


def _ray_loop(loop_config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker."""
    import ray.train  # Ray Train only for --workers >= 1: importing it costs seconds
    import ray.train.torch

    if loop_config.get("threads"):
        torch.set_num_threads(int(loop_config["threads"]))
    ctx = ray.train.get_context()
    result = train(
        ModelConfig.from_dict(loop_config["model_config"]),
        TrainConfig.from_dict(loop_config["train_config"]),
        loop_config["state_dir"],
        out=loop_config["out"],
        init_checkpoint=loop_config["init"],
        backbone_weights=loop_config["backbone_weights"],
        rank=ctx.get_world_rank(),
        world_size=ctx.get_world_size(),
        prepare_model=ray.train.torch.prepare_model,
        max_seconds=loop_config["max_seconds"],
        export_partial=loop_config.get("export_partial", False),
        init_head=loop_config.get("init_head", True),
        until_step=loop_config.get("until_step"),
        progress=ctx.get_world_rank() == 0,
    )
    ray.train.report({"step": result.step, "finished": result.finished,
                      "loss": result.history[-1][1] if result.history else float("nan")})


def _run_on_ray(workers: int, address: str | None, threads: int, loop_config: dict[str, Any]) -> dict[str, Any]:
    import ray  # Ray Train only for --workers >= 1: importing it costs seconds
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    use_gpu = torch.cuda.is_available()
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=max(workers * threads, os.cpu_count() or 1), include_dashboard=False)
    trainer = TorchTrainer(
        _ray_loop,
        train_loop_config=loop_config,
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu, resources_per_worker={"CPU": threads}),
        run_config=RunConfig(storage_path=str(Path(loop_config["state_dir"]).resolve() / "ray"), name="train"),
    )
    try:
        result = trainer.fit()
    finally:
        if started:
            ray.shutdown()
    return dict(result.metrics or {})


@click.command("train")
@click.option("--preset", type=click.Choice(["compact", "tiny", "paper"]), default="compact", show_default=True,
              help="Model architecture (ignored with --init: the checkpoint's config is used).")
@click.option("--objective", type=click.Choice(["infonce", "bt", "head", "bta_combined"]), default="infonce",
              show_default=True, help="infonce/bt: encoder+projector; head: BTA stage 2; bta_combined: joint.")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=32, show_default=True,
              help="Images (two views each) or pairs per step and worker.")
@click.option("--lr-max", type=float, default=3e-3, show_default=True)
@click.option("--lr-min", type=float, default=5e-4, show_default=True)
@click.option("--temperature", type=float, default=0.1, show_default=True, help="InfoNCE temperature.")
@click.option("--specimens", type=click.IntRange(min=2), default=1000, show_default=True,
              help="Number of synthetic specimens (2 fields each) to train on.")
@click.option("--max-ops", type=click.IntRange(min=1), default=3, show_default=True, help="Alterations per view.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--save-every", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Resumable state (optimizer, step); re-running the same command resumes.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Checkpoint written at the end.")
@click.option("--init", "init", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from this checkpoint (its config and encoder/projector weights).")
@click.option("--head-kind", type=click.Choice(["concat", "concat_sym", "symmetric"]), default=None,
              help="Head variant (default: the preset's / init checkpoint's).")
@click.option("--backbone-weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="External backbone weights (torchvision ResNet state_dict or Barlow Twins resnet50.pth).")
@click.option("--max-minutes", type=float, default=None, help="Stop (state saved) after this long; re-run to resume.")
@click.option("--until-step", type=click.IntRange(min=1), default=None,
              help="Stop (state saved) at this step; re-run without it to resume (e.g. an LR probe).")
@click.option("--fresh-head", is_flag=True,
              help="With --init: take only encoder/projector, start the head from scratch.")
@click.option("--export-partial", is_flag=True, help="Write --out even when stopped early by --max-minutes or --until-step.")
@click.option("--threads", type=click.IntRange(min=0), default=0, help="torch threads per worker (0 = torch default).")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="0: train in this process; N>=1: N data-parallel Ray Train workers.")
@click.option("--address", default=None, help="Ray cluster address (default: start a local one).")
def train_command(preset: str, objective: str, steps: int, batch_size: int, lr_max: float, lr_min: float,
                  temperature: float, specimens: int, max_ops: int, seed: int, save_every: int, state_dir: Path,
                  out: Path, init: str | None, head_kind: str | None, backbone_weights: str | None,
                  max_minutes: float | None, until_step: int | None, fresh_head: bool, export_partial: bool,
                  threads: int, workers: int, address: str | None) -> None:
    """Train one stage of the BTA model (resumable; data-parallel with --workers)."""
    model_config = _model_config(preset, init, head_kind)
    config = TrainConfig(objective=objective, steps=steps, batch_size=batch_size, lr_max=lr_max, lr_min=lr_min,
                         temperature=temperature, seed=seed, save_every=save_every,
                         data=DataConfig(n_specimens=specimens, max_ops=max_ops))
    max_seconds = max_minutes * 60 if max_minutes is not None else None
    state_dir.mkdir(parents=True, exist_ok=True)
    if workers >= 1:
        loop_config = {"model_config": model_config.to_dict(), "train_config": config.to_dict(),
                       "state_dir": str(state_dir.resolve()), "out": str(out.resolve()), "init": init,
                       "backbone_weights": backbone_weights, "max_seconds": max_seconds, "threads": threads or 1,
                       "export_partial": export_partial, "init_head": not fresh_head, "until_step": until_step}
        _run_on_ray(workers, address, threads or 1, loop_config)
        # Ray Train v2 keeps metrics only with reported checkpoints: read our own state file
        state = torch_load_state(state_dir / "state.pt")
        finished = state.get("step", 0) >= steps and out.is_file()
        history = state.get("history", [])
        click.echo(json.dumps({"step": state.get("step", 0), "finished": finished, "workers": workers,
                               "last_loss": history[-1][1] if history else None,
                               "elapsed_seconds": round(float(state.get("elapsed", 0.0)), 1)}))
    else:
        if threads:
            torch.set_num_threads(threads)
        try:
            result = train(model_config, config, state_dir, out=out, init_checkpoint=init,
                           backbone_weights=backbone_weights, max_seconds=max_seconds,
                           export_partial=export_partial, init_head=not fresh_head, until_step=until_step)
        except TrainStateMismatch as exc:
            raise click.ClickException(f"{exc}; use a new --state-dir to start over") from exc
        finished = result.finished
        click.echo(json.dumps({"step": result.step, "finished": result.finished,
                               "last_loss": result.history[-1][1] if result.history else None,
                               "elapsed_seconds": round(result.elapsed_seconds, 1)}))
    if finished:
        click.echo(f"wrote {out}")
    else:
        if export_partial and out.is_file():
            click.echo(f"wrote partial model {out}")
        click.echo(f"stopped before the last step; re-run the same command to resume from {state_dir}")
