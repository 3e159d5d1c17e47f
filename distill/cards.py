"""Model cards: a teacher or student described as data (teachers/*.yaml, students/*.yaml).

A card carries what it takes to build and feed a model (architecture, timm backbone, classes,
input normalisation, weights), like timm's PretrainedCfg, plus an optional `train:` block used to
train a missing teacher checkpoint before distillation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt

from distill.errors import DistillError, did_you_mean
from distill.specs import DataSpec, Strict, TrainSpec
from distill.yamlfile import Loc, load_model, read_yaml

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
    check_card_names(card, path, lines)
    return card


def check_card_names(card: ModelCard, file: str | Path | None, lines: dict[Loc, int] | None = None) -> None:
    """Architecture, backbone and pretrained weights exist: at load, not after a teacher has trained."""
    import timm

    from distill.models.heads import HEADS
    from distill.models.pretrained import NAMED_SOURCES

    lines = lines or {}
    where = f"{file}:{lines[('arch',)]}" if file and ("arch",) in lines else (str(file) if file else None)
    HEADS.get(card.arch, file=where, field="arch")
    if not timm.is_model(card.backbone):
        hint = did_you_mean(card.backbone, timm.list_models()) or "see timm.list_models()"
        raise DistillError(file, "backbone", "a timm model name", got=card.backbone, hint=hint, line=lines.get(("backbone",)))
    if card.pretrained not in ("none", *NAMED_SOURCES) and not Path(card.pretrained).is_file():
        raise DistillError(file, "pretrained", f"none, one of {list(NAMED_SOURCES)} or an existing .safetensors file",
                           got=card.pretrained, line=lines.get(("pretrained",)))


def card_from_dict(data: dict, source: str) -> ModelCard:
    """Rebuild a card stored in a model file's metadata."""
    return load_model(ModelCard, data, Path(source), {})
