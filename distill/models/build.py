"""Build models from cards, and save/load them as standalone model files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm

from distill.cards import ModelCard, card_from_dict
from distill.errors import DistillError, did_you_mean
from distill.io import ModelFile, read_model_file, save_model_file
from distill.models.heads import HEADS
from distill.models.pretrained import load_backbone_weights
from distill.models.segmenter import SegmentationModel


def validate_card(card: ModelCard, file: str | Path | None) -> None:
    """Check names against the registries before anything is built."""
    HEADS.get(card.arch, file=str(file) if file else None, field="arch")
    if not timm.is_model(card.backbone):
        hint = did_you_mean(card.backbone, timm.list_models()) or "see timm.list_models()"
        raise DistillError(file, "backbone", "a timm model name", got=card.backbone, hint=hint)


def build_model(
    card: ModelCard,
    num_classes: int | None = None,
    classes: list[str] | None = None,
    *,
    card_file: str | Path | None = None,
    load_pretrained: bool = True,
) -> SegmentationModel:
    """A model for `num_classes` classes (the card's own count must agree when it states one)."""
    validate_card(card, card_file)
    n = num_classes or card.num_classes
    if n is None:
        raise DistillError(card_file, "num_classes", "a class count (in the card, or from the data set)")
    if card.num_classes is not None and card.num_classes != n:
        raise DistillError(card_file, "num_classes", f"{n} classes (the data set's)", got=card.num_classes)
    card = card.model_copy(update={"num_classes": n, "classes": classes or card.classes})
    model = SegmentationModel(card, n)
    if load_pretrained:
        load_backbone_weights(model.encoder, card.pretrained, card.backbone, str(card_file) if card_file else None)
    return model


def save_model(model: SegmentationModel, path: str | Path, info: dict[str, Any]) -> None:
    """Write weights plus card and info (metrics, recipe hash, seed, ...) to a .safetensors file."""
    card = model.card.model_dump(mode="json")
    card["pretrained"] = "none"  # the weights are in the file; never fetch them again on load
    save_model_file(path, model.state_dict(), card, info)


def load_model_file(path: str | Path) -> tuple[SegmentationModel, ModelFile]:
    """Rebuild the architecture from the file's card and load its weights (no unpickling)."""
    meta, state = read_model_file(path)
    card = card_from_dict(meta.card, str(path))
    model = build_model(card, card.num_classes, card.classes, card_file=path, load_pretrained=False)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        detail = f"{len(missing)} missing, {len(unexpected)} unexpected, e.g. {(missing or unexpected)[0]}"
        raise DistillError(path, None, "weights matching the card's architecture", got=f"<{detail}>")
    return model, meta
