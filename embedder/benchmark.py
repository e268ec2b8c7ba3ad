"""Inference throughput of model configs on this machine: `python -m embedder.benchmark`.

Measures images/second of `BTAModel.embed` on random preprocessed batches (the network
only, no decoding), in fp32, fp32 channels_last and bf16 autocast, and how far the bf16
vectors drift from fp32 (min cosine). Rounds are interleaved and the best round kept,
because the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from embedder.config import ModelConfig, Preset
from embedder.model import BTAModel


def _rate(model: BTAModel, x: torch.Tensor, bf16: bool) -> float:
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        t = time.perf_counter()
        model.embed(x)
        return x.shape[0] / (time.perf_counter() - t)


def bench(config: ModelConfig, batch: int, rounds: int) -> dict[str, float]:
    """Best-of-`rounds` images/s for fp32, channels_last and bf16, plus bf16 fidelity."""
    torch.manual_seed(0)
    model = BTAModel(config).eval()
    x = torch.randn(batch, 3, config.image_size, config.image_size)
    with torch.inference_mode():
        model.embed(x[:2])
        ref = model.embed(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model.embed(x).float()
    cl_model = BTAModel(config).eval().to(memory_format=torch.channels_last)
    cl_model.load_state_dict(model.state_dict())
    x_cl = x.contiguous(memory_format=torch.channels_last)
    best = {"fp32": 0.0, "channels_last": 0.0, "bf16": 0.0}
    for _ in range(rounds):
        best["fp32"] = max(best["fp32"], _rate(model, x, False))
        best["channels_last"] = max(best["channels_last"], _rate(cl_model, x_cl, False))
        best["bf16"] = max(best["bf16"], _rate(model, x, True))
    best["bf16_min_cosine_to_fp32"] = float((ref * low).sum(1).min())
    return {k: round(v, 4 if "cosine" in k else 1) for k, v in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    compact = Preset.COMPACT.config
    configs = {
        "compact (64 px, D4 x8)": (compact, 64),
        "compact without D4 pooling": (compact.replace(d4_pool=False), 64),
        "resnet18 224 px": (compact.replace(backbone="resnet18", image_size=224, d4_pool=False, mean=Preset.PAPER.config.mean), 16),
        "paper resnet50 224 px": (Preset.PAPER.config, 8),
    }
    for name, (cfg, batch) in configs.items():
        print(json.dumps({"config": name, **bench(cfg, batch, args.rounds)}), flush=True)


if __name__ == "__main__":
    main()
