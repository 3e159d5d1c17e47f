"""Model cards: a teacher or student described as data (teachers/*.yaml, students/*.yaml).

A card carries what it takes to build and feed a model (architecture, timm backbone, classes,
input normalisation, weights), like timm's PretrainedCfg, plus an optional `train:` block used to
train a missing teacher checkpoint before distillation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt

from distill.errors import DistillError
from distill.specs import DataSpec, Strict, TrainSpec
from distill.yamlfile import load_model, read_yaml

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CardTraining(Strict):
    """How to train this model from labels alone (`distill train`, or a missing teacher)."""

    data: DataSpec = Field(default_factory=DataSpec)
    train: TrainSpec


class ModelCard(Strict):
    name: str
    description: str = ""
    arch: str  # a registered head: deeplabv3plus, lraspp, fcn
    backbone: str  # any timm model usable with features_only=True
    output_stride: Literal[8, 16, 32] = 16
    head_channels: PositiveInt = 256  # ASPP / decoder / LR-ASPP width
    aux_head: bool = False  # an FCN head on the penultimate stage, trained with CE weight 0.4
    num_classes: PositiveInt | None = None  # None: taken from the data set
    classes: list[str] | None = None
    pretrained: str = "none"  # none | a local .safetensors file | a named source (efficientnet-lite)
    checkpoint: str | None = None  # trained weights of this model (a distill model file)
    input_mean: tuple[float, float, float] = IMAGENET_MEAN
    input_std: tuple[float, float, float] = IMAGENET_STD
    train: CardTraining | None = None


def load_card(path: str | Path, *, file: str | Path | None = None, field: str | None = None) -> ModelCard:
    """Read and validate a card; `file`/`field` name the recipe that referenced it, for errors."""
    path = Path(path)
    if not path.is_file():
        raise DistillError(file or path, field, "an existing model card (YAML)", got=str(path))
    data, lines = read_yaml(path)
    card: ModelCard = load_model(ModelCard, data, path, lines)
    if card.classes is not None and card.num_classes is not None and len(card.classes) != card.num_classes:
        raise DistillError(path, "classes", f"{card.num_classes} names (num_classes)", got=f"<{len(card.classes)} names>")
    return card


def card_from_dict(data: dict, source: str) -> ModelCard:
    """Rebuild a card stored in a model file's metadata."""
    return load_model(ModelCard, data, Path(source), {})
