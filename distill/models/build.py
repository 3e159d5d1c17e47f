"""Build models from cards, and save/load them as standalone model files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill.models.cards import ModelCard, card_from_dict, check_card_names, load_card
from distill.errors import DistillError
from distill.io import ModelFile, read_model_file, save_model_file
from distill.models.base import MODELS, Segmenter


def weights_file(card: ModelCard) -> Path:
    """Where a card's trained weights are: its `checkpoint:`, else the file train_teacher writes."""
    return Path(card.checkpoint or f"checkpoints/{card.name}.safetensors")


def validate_card(card: ModelCard, file: str | Path | None) -> None:
    """Check names against the registries before anything is built (load_card already did for YAML cards)."""
    check_card_names(card, file)


def build_model(
    card: ModelCard,
    num_classes: int | None = None,
    classes: list[str] | None = None,
    *,
    card_file: str | Path | None = None,
    load_pretrained: bool = True,
) -> Segmenter:
    """A model for `num_classes` classes (the card's own count must agree when it states one)."""
    validate_card(card, card_file)
    n = num_classes or card.num_classes
    if n is None:
        raise DistillError(card_file, "num_classes", "a class count (in the card, or from the data set)")
    if card.num_classes is not None and card.num_classes != n:
        raise DistillError(card_file, "num_classes", f"{n} classes (the data set's)", got=card.num_classes)
    card = card.model_copy(update={"num_classes": n, "classes": classes or card.classes})
    model = MODELS.get(card.family, file=str(card_file) if card_file else None, field="family")(card, n)
    if load_pretrained:
        model.load_pretrained(str(card_file) if card_file else None)
    return model


def save_model(model: Segmenter, path: str | Path, info: dict[str, Any]) -> None:
    """Write weights plus card and info (metrics, recipe hash, seed, ...) to a .safetensors file.

    A pruned model also records, in info["layer_shapes"], the channel attributes of every layer
    that differs from a fresh build of its card, so loading needs no pickle (distill.models.shapes).
    """
    from distill.models.shapes import changed_layers

    card = model.card.model_dump(mode="json")
    if "pretrained" in card:
        card["pretrained"] = "none"  # the weights are in the file; never fetch them again on load
    info = {k: v for k, v in info.items() if k != "layer_shapes"}
    shapes = changed_layers(model, MODELS.get(model.card.family)(model.card, model.num_classes))
    if shapes:
        info["layer_shapes"] = shapes
    save_model_file(path, model.state_dict(), card, info)


CARD_SUFFIXES = (".yaml", ".yml")


def load_model_file(path: str | Path) -> tuple[Segmenter, ModelFile]:
    """Rebuild the architecture from the file's card and load its weights (no unpickling).

    The card of a teacher-only family (ensemble, onnx) is its own teacher file, so a .yaml path
    loads that teacher (everything that loads a teacher's file, the dry run too, takes it)."""
    if Path(path).suffix in CARD_SUFFIXES:
        return load_teacher_card(path)
    meta, state = read_model_file(path)
    return model_from_file(meta, state), meta


def load_teacher_card(path: str | Path) -> tuple[Segmenter, ModelFile]:
    from distill.models.ensemble import load_ensemble
    from distill.models.onnx_teacher import load_onnx

    card = load_card(path)
    loaders = {"ensemble": load_ensemble, "onnx": load_onnx}
    if card.family not in loaders:
        raise DistillError(path, None, "a model file (.safetensors), or the card of an ensemble or onnx teacher",
                           got=f"<a {card.family} card>")
    model = loaders[card.family](card, path)
    return model, ModelFile(Path(path), model.card.model_dump(mode="json"), {"source": f"{card.family} teacher card"})


def model_from_file(meta: ModelFile, state: dict[str, Any]) -> Segmenter:
    """The model a file read by read_model_file describes, with its weights."""
    from distill.models.shapes import apply_layer_shapes

    card = card_from_dict(meta.card, str(meta.path))
    model = build_model(card, card.num_classes, card.classes, card_file=meta.path, load_pretrained=False)
    shapes = meta.info.get("layer_shapes")
    if shapes:  # a pruned model: reshape the card's layers to the recorded channel counts
        if not isinstance(shapes, dict):
            raise DistillError(meta.path, "info.layer_shapes", "a mapping of layer names to channel attributes", got=type(shapes).__name__)
        apply_layer_shapes(model, shapes, state, meta.path)
    load_weights(model, state, meta.path)
    if shapes:
        model.refresh_taps()
    return model


def model_from_state_dict(state: dict[str, Any], path: str | Path, card_path: str | Path,
                          classes: list[str]) -> tuple[Segmenter, ModelFile]:
    """A foreign state dict (io.read_torch_state_dict of `path`) in the architecture of a card.

    The card names no classes of its own in most cases, so `classes` (the data set's) fill them in.
    """
    card = load_card(card_path)
    model = build_model(card, len(card.classes or classes), card.classes or classes, card_file=card_path, load_pretrained=False)
    load_weights(model, state, path)
    return model, ModelFile(Path(path), model.card.model_dump(mode="json"), {"source": f"torch state dict, card {card_path}"})


def load_weights(model: Segmenter, state: dict[str, Any], path: str | Path) -> None:
    """Every tensor of the model from `state`, with matching shapes; anything else is one DistillError."""
    for name, tensor in model.state_dict().items():  # load_state_dict would raise a many-line RuntimeError
        if name in state and tuple(state[name].shape) != tuple(tensor.shape):
            raise DistillError(path, name, f"shape {tuple(tensor.shape)} (the card's architecture)", got=tuple(state[name].shape))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        detail = f"{len(missing)} missing, {len(unexpected)} unexpected, e.g. {(missing or unexpected)[0]}"
        raise DistillError(path, None, "weights matching the card's architecture", got=f"<{detail}>")
