"""Model configuration: a frozen dataclass saved inside every checkpoint, and named presets.

The model is always rebuilt from the `ModelConfig` stored in its checkpoint (nanoGPT's
`model_args`), never from command-line arguments, so a checkpoint cannot be loaded into a
mismatching architecture by accident. Presets are an Enum that carries its metadata
(SSCD's `Backbone`): `Preset.COMPACT.config`, `Preset.PAPER.description`, ...
"""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)

BACKBONES = ("resnet18", "resnet50", "small_resnet")
HEAD_KINDS = ("concat", "concat_sym", "symmetric")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an encoder f, projector p and head h.

    backbone:       "resnet50" / "resnet18" (torchvision layout, loadable from external
                    weights) or "small_resnet" (a width-reduced ResNet-18 for CPUs).
    width:          base channel width of "small_resnet" (64 would be ResNet-18 width).
    blocks:         BasicBlocks per stage of "small_resnet".
    stem_stride:    "small_resnet" stem downsampling: 2 (3x3 stride-2 conv) or 4 (the same
                    conv followed by a 3x3 stride-2 max-pool, a quarter of the cost).
    image_size:     side of the square (letterboxed) network input, pixels.
    projector_dims: output sizes of the projector layers; the last one is the index
                    vector dimension (the head consumes exactly this vector).
    head_hidden:    hidden sizes of the head MLP (its output is one logit).
    head_kind:      "concat" (the paper: MLP on [a, b], not symmetric), "concat_sym"
                    (the paper's head averaged over both orders) or "symmetric"
                    (MLP on [a*b, |a-b|]).
    d4_pool:        average encoder features over the 8 rotations/flips of the input,
                    which makes the embedding exactly invariant to them.
    mean, std:      per-channel input normalisation.
    """

    backbone: str = "small_resnet"
    width: int = 32
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    stem_stride: int = 4
    image_size: int = 64
    projector_dims: tuple[int, ...] = (512, 256)
    head_hidden: tuple[int, ...] = (256, 64, 16)
    head_kind: str = "symmetric"
    d4_pool: bool = True
    mean: tuple[float, float, float] = HALF
    std: tuple[float, float, float] = HALF

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; expected one of {BACKBONES}")
        if self.head_kind not in HEAD_KINDS:
            raise ValueError(f"unknown head_kind {self.head_kind!r}; expected one of {HEAD_KINDS}")
        if self.stem_stride not in (2, 4):
            raise ValueError("stem_stride must be 2 or 4")
        if not self.projector_dims:
            raise ValueError("projector_dims must have at least one layer")
        if self.image_size < 16:
            raise ValueError("image_size must be at least 16 pixels")

    @property
    def embed_dim(self) -> int:
        """Dimension of the L2-normalised index vector (= the projector's output)."""
        return self.projector_dims[-1]

    @property
    def feature_dim(self) -> int:
        """Dimension of the encoder output f(x) fed to the projector."""
        if self.backbone == "resnet50":
            return 2048
        if self.backbone == "resnet18":
            return 512
        return self.width * 8

    def to_dict(self) -> dict[str, Any]:
        """Plain lists/ints/floats/strings only, so `torch.load(weights_only=True)` reads it."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of `to_dict`; unknown keys are an error (a newer checkpoint format)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"checkpoint config has unknown fields {sorted(unknown)}")
        fields: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
        return cls(**fields)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class PresetInfo:
    """Metadata a preset carries besides its config."""

    config: ModelConfig
    description: str
    tags: tuple[str, ...] = field(default_factory=tuple)


class Preset(enum.Enum):
    """Named model configurations. `Preset("compact").config` gives the ModelConfig."""

    PAPER = "paper"
    COMPACT = "compact"
    TINY = "tiny"

    @property
    def info(self) -> PresetInfo:
        return _PRESETS[self]

    @property
    def config(self) -> ModelConfig:
        return _PRESETS[self].config

    @property
    def description(self) -> str:
        return _PRESETS[self].description


_PRESETS: dict[Preset, PresetInfo] = {
    Preset.PAPER: PresetInfo(
        ModelConfig(
            backbone="resnet50",
            width=64,
            blocks=(3, 4, 6, 3),
            image_size=224,
            projector_dims=(4096, 4096, 4096),
            head_hidden=(512, 256, 64, 16),
            head_kind="concat",
            d4_pool=False,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
        ),
        "The published BTA recipe: ResNet-50 (Barlow Twins weights), projector "
        "2048-4096-4096-4096, head MLP 8192-512-256-64-16-1 on the concatenated projections, "
        "224 px. A GPU recipe; its 4096-d vectors exceed the 512-d index budget.",
        ("gpu", "reference"),
    ),
    Preset.COMPACT: PresetInfo(
        ModelConfig(),
        "CPU default: width-32 ResNet-18 layout at 64 px, features averaged over the 8 "
        "rotations/flips (exact D4 invariance), projector 256-512-256, symmetric head "
        "MLP 512-256-64-16-1 on [a*b, |a-b|]. 256-d index vectors.",
        ("cpu", "default"),
    ),
    Preset.TINY: PresetInfo(
        ModelConfig(
            backbone="small_resnet",
            width=8,
            blocks=(1, 1, 1, 1),
            stem_stride=2,
            image_size=32,
            projector_dims=(64, 32),
            head_hidden=(16,),
            head_kind="symmetric",
            d4_pool=True,
        ),
        "For tests only: width-8 one-block-per-stage ResNet at 32 px, trains in seconds.",
        ("test",),
    ),
}
