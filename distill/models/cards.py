"""Model cards: a teacher or student described as data (teachers/*.yaml, students/*.yaml).

A card carries what it takes to build and feed a model (its family and architecture, classes,
input and normalisation, weights), like timm's PretrainedCfg, plus an optional `train:` block used
to train a missing teacher before distillation. Each model family has its card type here,
registered under the family's name; distill.cards reads them from YAML.
"""

from __future__ import annotations

import inspect

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator, model_validator

from distill.errors import DistillError, did_you_mean
from distill.registry import Registry
from distill.specs import DataSpec, LossSpec, Strict, TrainSpec, TransformSpec
from distill.yamlfile import Loc, load_model, read_yaml

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CardTraining(Strict):
    """How to train this model from labels (`distill train`, or a missing teacher's `train_teacher` stage).

    The losses default to cross-entropy; a teacher trained another way (LAD's dual-path
    consistency) names its own losses and batch transforms here, so its training is data too."""

    data: DataSpec = Field(default_factory=DataSpec)
    train: TrainSpec
    losses: list[LossSpec] = Field(default_factory=lambda: [LossSpec(name="ce")], min_length=1)
    batch_transforms: list[TransformSpec] = Field(default_factory=list)


class InputSpec(BaseModel):
    """What the model reads: a registered input adapter (distill.models.inputs) and its options."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    name: str = "image"

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class InferenceSpec(Strict):
    """How the model predicts in eval mode (a frozen teacher, `distill eval`): the plain forward, or
    the mean over scales and horizontal flips (distill.models.multiscale). Training is always plain."""

    scales: list[float] = Field(default_factory=lambda: [1.0], min_length=1)  # input scale factors
    flip: bool = False  # also each scale mirrored, its output mirrored back

    @field_validator("scales")
    @classmethod
    def _positive(cls, scales: list[float]) -> list[float]:
        if any(not 0.25 <= s <= 4 for s in scales):
            raise ValueError("scale factors between 0.25 and 4")
        return scales

    @property
    def plain(self) -> bool:
        return self.scales == [1.0] and not self.flip


class BaseCard(Strict):
    """What every model family's card has: identity, classes, input, weights, how to train it."""

    family: str = "cnn"  # a registered model family (distill.models.MODELS)
    name: str
    description: str = ""
    num_classes: PositiveInt | None = None  # None: taken from the data set
    classes: list[str] | None = None
    checkpoint: str | None = None  # trained weights of this model (a distill model file)
    input: InputSpec = Field(default_factory=InputSpec)
    input_mean: tuple[float, float, float] = IMAGENET_MEAN
    input_std: tuple[float, float, float] = IMAGENET_STD
    train: CardTraining | None = None
    inference: InferenceSpec = Field(default_factory=InferenceSpec)  # eval-mode scales and flip (teachers, eval)

    architecture_keys: ClassVar[tuple[str, ...]] = ()  # what a trained file must share with the card
    runtime_keys: ClassVar[tuple[str, ...]] = ("inference",)  # settings no weight depends on: a recipe's card may change them

    @model_validator(mode="after")
    def _augmented_reads_images_only(self) -> "BaseCard":
        if not self.inference.plain and self.input.name != "image":
            raise ValueError(f"inference with scales or flip needs input image (resizing {self.input.name}'s label channels would corrupt them)")
        return self

    def check_names(self, file: str | Path | None, lines: dict[Loc, int]) -> None:
        """Names the family looks up elsewhere (timm, registries) exist: at load, not after training."""


CARDS: Registry[type[BaseCard]] = Registry("model family")
ModelCard = BaseCard  # any family's card


@CARDS.register("cnn")
class CnnCard(BaseCard):
    """A timm features_only encoder with a registered head (distill.models.segmenter)."""

    family: Literal["cnn"] = "cnn"
    arch: str  # a registered head: deeplabv3plus, lraspp, fcn
    backbone: str  # any timm model usable with features_only=True
    output_stride: Literal[8, 16, 32] = 16
    head_channels: PositiveInt = 256  # ASPP / decoder / LR-ASPP width
    aux_head: bool = False  # an FCN head on the penultimate stage, trained with CE weight 0.4
    pretrained: str = "none"  # none | a local .safetensors file | a named source (efficientnet-lite)

    architecture_keys: ClassVar[tuple[str, ...]] = ("arch", "backbone", "head_channels", "aux_head")

    def check_names(self, file: str | Path | None, lines: dict[Loc, int]) -> None:
        import timm

        from distill.models.heads import HEADS
        from distill.models.pretrained import NAMED_SOURCES

        where = f"{file}:{lines[('arch',)]}" if file and ("arch",) in lines else (str(file) if file else None)
        HEADS.get(self.arch, file=where, field="arch")
        if not timm.is_model(self.backbone):
            hint = did_you_mean(self.backbone, timm.list_models()) or "see timm.list_models()"
            raise DistillError(file, "backbone", "a timm model name", got=self.backbone, hint=hint, line=lines.get(("backbone",)))
        if self.pretrained not in ("none", *NAMED_SOURCES) and not Path(self.pretrained).is_file():
            raise DistillError(file, "pretrained", f"none, one of {list(NAMED_SOURCES)} or an existing .safetensors file",
                               got=self.pretrained, line=lines.get(("pretrained",)))


@CARDS.register("tinyconv")
class TinyConvCard(BaseCard):
    """A plain stack of strided 3x3 convs and a 1x1 classifier (distill.models.tinyconv): no
    backbone, no download, a few thousand parameters. For tests, CI and toy runs."""

    family: Literal["tinyconv"] = "tinyconv"
    widths: list[PositiveInt] = Field(default_factory=lambda: [16, 32], min_length=1)  # one stride-2 stage each
    norm: Literal["batch", "group"] = "batch"  # group: per-sample statistics, the same under any process count

    architecture_keys: ClassVar[tuple[str, ...]] = ("widths", "norm")


@CARDS.register("vit")
class VitCard(BaseCard):
    """A plain timm ViT with per-stage linear heads and DToP token exits (distill.tokens, methods.md 4).

    `p0` and `k` change no weight, so a recipe's student card may set them on a student_init
    model (`runtime_keys`): stage 2 of DToP loads the stage-1 base model (p0 1.0) and prunes."""

    family: Literal["vit"] = "vit"
    backbone: str = "vit_tiny_patch16_224"  # a timm VisionTransformer (created without class token)
    out_indices: list[int] = Field(default_factory=lambda: [5, 7, 11], min_length=1)  # blocks (0-based) a head follows
    p0: float = Field(1.0, ge=0, le=1)  # exit threshold on max_c softmax; 1.0: no token exits
    k: PositiveInt = 5  # the k most confident candidates of each class stay active
    odd_size: Literal["resize", "refuse"] = "resize"  # sides that are not multiples of the patch
    drop_path_rate: float = Field(0.0, ge=0, lt=1)

    architecture_keys: ClassVar[tuple[str, ...]] = ("backbone", "out_indices")
    runtime_keys: ClassVar[tuple[str, ...]] = ("inference", "p0", "k")

    def check_names(self, file: str | Path | None, lines: dict[Loc, int]) -> None:
        import timm

        if not timm.is_model(self.backbone) or not self.backbone.startswith(("vit_", "deit_", "test_vit")):
            hint = did_you_mean(self.backbone, timm.list_models("vit_*")) or "see timm.list_models('vit_*')"
            raise DistillError(file, "backbone", "a timm plain-ViT name", got=self.backbone, hint=hint,
                               line=lines.get(("backbone",)))
        if any(b <= a for a, b in zip(self.out_indices, self.out_indices[1:])) or self.out_indices[0] < 0:
            raise DistillError(file, "out_indices", "increasing block indices from 0", got=self.out_indices,
                               line=lines.get(("out_indices",)))


class LogitTeacherCard(BaseCard):
    """A teacher-only family whose model is no distill model file (distill.models.ensemble, onnx_teacher).

    The card is its own teacher file (stages.setup.teacher_file), so it has no `checkpoint:` and no
    `train:` block; it is frozen and gives logits only, which recipe_checks enforces at load."""

    classes_field: ClassVar[str] = "classes"  # the field a class mismatch with the data set is reported on

    @model_validator(mode="after")
    def _teacher_only(self) -> "LogitTeacherCard":
        for key in ("checkpoint", "train"):
            if getattr(self, key) is not None:
                raise ValueError(f"no {key}: a {self.family} teacher is never trained; its card is its own teacher file")
        if self.input.name != "image":
            raise ValueError(f"input image (a {self.family} teacher reads the image alone)")
        return self

    def sources_sha256(self) -> str:  # pragma: no cover - abstract
        """The teacher-output cache key's hash in place of a model file's: of everything the outputs depend on."""
        raise NotImplementedError

    def refuse_features(self, taps: Any) -> None:
        features = [t for t in taps if t != "logits"]
        if features:
            raise DistillError(None, "feature", f"logits only from {self.name} (a {self.family} teacher; feature losses "
                               "need a card teacher)", got=features)


@CARDS.register("ensemble")
class EnsembleCard(LogitTeacherCard):
    """Several trained cards as one teacher (distill.models.ensemble): each member is fed the raw
    image and normalises it as its own card says; their outputs are averaged as `combine` says."""

    family: Literal["ensemble"] = "ensemble"
    members: list[str] = Field(min_length=2)  # card paths: as given, else relative to this card's folders
    combine: Literal["mean_prob", "mean_logit"] = "mean_prob"

    classes_field: ClassVar[str] = "members"

    @model_validator(mode="after")
    def _members_normalise(self) -> "EnsembleCard":
        if {"input_mean", "input_std"} & self.model_fields_set:
            raise ValueError("input_mean and input_std on each member's card (each member normalises its own input)")
        return self

    def check_names(self, file: str | Path | None, lines: dict[Loc, int]) -> None:
        from distill.models.ensemble import check_members

        check_members(self, file, lines)

    def sources_sha256(self) -> str:
        from distill.models.ensemble import ensemble_sha256

        return ensemble_sha256(self)


@CARDS.register("onnx")
class OnnxCard(LogitTeacherCard):
    """An ONNX graph as a teacher, run by onnxruntime on the CPU (distill.models.onnx_teacher).

    The graph reads (image * input_scale - input_mean) / input_std at input_size, so mean and std
    are in the graph's pixel units (0 and 1 for a `distill export` file, which normalises inside);
    they have no default, as ImageNet's in [0, 1] units would be wrong for a 255-range graph."""

    family: Literal["onnx"] = "onnx"
    file: str  # the .onnx file, relative to the working directory (as a checkpoint is)
    input_size: tuple[PositiveInt, PositiveInt]  # (H, W) the graph takes
    input_mean: tuple[float, float, float]
    input_std: tuple[PositiveFloat, PositiveFloat, PositiveFloat]
    input_scale: Literal[1, 255] = 1
    classes: list[str] = Field(min_length=1)  # in the graph's output-channel order
    input_name: str | None = None  # None: the graph's first input
    output_name: str | None = None  # None: its first output

    @model_validator(mode="after")
    def _class_count(self) -> "OnnxCard":
        self.num_classes = self.num_classes or len(self.classes)  # load_card checks a stated count against the names
        return self

    def check_names(self, file: str | Path | None, lines: dict[Loc, int]) -> None:
        if not Path(self.file).is_file():
            raise DistillError(file, "file", "an existing .onnx file (relative to the working directory)", got=self.file,
                               line=lines.get(("file",)))

    def sources_sha256(self) -> str:
        from distill.models.onnx_teacher import onnx_sha256

        return onnx_sha256(self)


def load_card(path: str | Path, *, file: str | Path | None = None, field: str | None = None) -> ModelCard:
    """Read and validate a card; `file`/`field` name the recipe that referenced it, for errors."""
    path = Path(path)
    if not path.is_file():
        raise DistillError(file or path, field, "an existing model card (YAML)", got=str(path))
    data, lines = read_yaml(path)
    card = load_model(card_type(data, path, lines), data, path, lines)
    if card.classes is not None and card.num_classes is not None and len(card.classes) != card.num_classes:
        raise DistillError(path, "classes", f"{card.num_classes} names (num_classes)", got=f"<{len(card.classes)} names>")
    check_card_names(card, path, lines)
    return card


def card_type(data: Any, file: str | Path | None, lines: dict[Loc, int] | None = None) -> type[BaseCard]:
    """The card class of the family a card names (`family:`, default cnn)."""
    family = data.get("family", "cnn") if isinstance(data, dict) else "cnn"
    where = f"{file}:{lines[('family',)]}" if file and lines and ("family",) in lines else (str(file) if file else None)
    if not isinstance(family, str):
        raise DistillError(file, "family", f"one of {', '.join(CARDS)}", got=family)
    return CARDS.get(family, file=where, field="family")


def check_card_names(card: BaseCard, file: str | Path | None, lines: dict[Loc, int] | None = None) -> None:
    """The family's own name checks, and the input adapter's name."""
    from distill.models.inputs import INPUTS

    lines = lines or {}
    card.check_names(file, lines)
    adapter = INPUTS.get(card.input.name, file=str(file) if file else None, field="input.name")
    options = set(inspect.signature(adapter.__init__).parameters) - {"self", "num_classes"}
    for key in card.input.params():
        if key not in options:
            raise DistillError(file, f"input.{key}", f"an option of input adapter {card.input.name} "
                               f"({', '.join(sorted(options)) or 'it has none'})", got=key)


def card_from_dict(data: dict, source: str) -> ModelCard:
    """Rebuild a card stored in a model file's metadata."""
    return load_model(card_type(data, source), data, Path(source), {})
