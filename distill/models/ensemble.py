"""The ensemble family: several trained cards behind one teacher, their outputs averaged.

How the image reaches each member: the engine hands every teacher `prepare_input(view)`, the raw
RGB image in [0, 1] (an ensemble reads `image` only), and a Segmenter normalises inside its own
forward. So the ensemble passes that raw image to each member unchanged, and each member applies
its own card's mean and std (and, in eval mode, its own `inference:` scales and flips): members may
differ in architecture, normalisation and output stride.

How outputs are merged: each member's logits are resized (bilinear) to the grid of the finest
member stride, ceil(H / s) x ceil(W / s). `mean_prob` averages the members' softmax probabilities
and returns their log, the convention of multi-scale inference (distill.models.multiscale), so
softmax(logits) is exactly the averaged distribution; `mean_logit` averages the logits themselves
(a member with multi-scale inference contributes its log-probabilities). There are no feature
taps: the members' features do not live in one space.

The cache key's teacher hash (`ensemble_sha256`) covers every member file and every member
card's runtime settings, plus `combine`: retraining or re-weighting any member rebuilds the cache.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distill.errors import DistillError
from distill.io import sha256_of
from distill.models.base import MODELS, Segmenter
from distill.models.cards import EnsembleCard, LogitTeacherCard, ModelCard, load_card
from distill.outputs import SegOutput, TapInfo
from distill.yamlfile import Loc


def member_path(value: str, card_file: str | Path | None) -> str:
    """A member card path: as given (relative to the working directory), else relative to the
    ensemble card's folder and its parents, as a recipe's card paths are resolved."""
    if Path(value).is_file() or card_file is None or Path(value).is_absolute():
        return value
    folder = Path(card_file).resolve().parent
    for base in [folder, *folder.parents]:
        if (base / value).is_file():
            return str(base / value)
    return value


def check_members(card: EnsembleCard, file: str | Path | None, lines: dict[Loc, int]) -> None:
    """Each member is a card of a single model that reads images, and the classes the member cards
    state agree. Resolves the member paths in place, so the card works from any later caller."""
    card.members = [member_path(m, file) for m in card.members]
    first: tuple[int, ModelCard] | None = None  # the first member that states its classes
    for i, path in enumerate(card.members):
        field, line = f"members[{i}]", lines.get(("members", i))
        if not Path(path).is_file():
            raise DistillError(file, field, "an existing model card", got=path, line=line)
        member = load_card(path, file=file, field=field)
        if isinstance(member, EnsembleCard):
            raise DistillError(file, field, "a card of one model (ensembles do not nest)", got=path, line=line)
        if member.input.name != "image":
            raise DistillError(file, field, "a member that reads the image alone", got=f"<{path}: input {member.input.name}>",
                               line=line)
        if member.num_classes is None and member.classes is None:
            continue
        if first is None:
            first = (i, member)
            continue
        j, ref = first
        if class_count(member) != class_count(ref) or (member.classes and ref.classes and member.classes != ref.classes):
            raise DistillError(file, field, f"the classes of members[{j}] ({ref.classes or class_count(ref)})",
                               got=member.classes or member.num_classes, line=line)
    if first is not None and card.num_classes is None and card.classes is None:  # so the recipe can compare its student's
        card.num_classes, card.classes = class_count(first[1]), first[1].classes


def class_count(card: ModelCard) -> int:
    return card.num_classes or len(card.classes or ())


def ensemble_sha256(card: EnsembleCard) -> str:
    """sha256 of {combine, per member: its file's sha256 and its card's runtime settings} as JSON."""
    from distill.models.build import weights_file

    parts = []
    for path in card.members:
        member = load_card(path)
        source = member.sources_sha256() if isinstance(member, LogitTeacherCard) else sha256_of(weights_file(member))
        parts.append({"sha256": source, "settings": member.model_dump(mode="json", include=set(type(member).runtime_keys))})
    text = json.dumps({"family": "ensemble", "combine": card.combine, "members": parts}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@MODELS.register("ensemble")
class EnsembleTeacher(Segmenter):
    """Taps: `logits` only, at the finest member stride. Built by build_model, the members are
    fresh builds of their cards (for shapes and costs); `load_ensemble` gives the trained ones."""

    def __init__(self, card: EnsembleCard, num_classes: int, members: list[Segmenter] | None = None) -> None:
        super().__init__(card, num_classes)
        if members is None:
            from distill.models.build import build_model

            members = [build_model(load_card(p), num_classes, card.classes, card_file=p, load_pretrained=False)
                       for p in card.members]
        self.members = nn.ModuleList(members)
        self._taps = {"logits": TapInfo(num_classes, min(m.taps["logits"].stride for m in members))}

    def forward_single(self, images: Tensor, taps: Collection[str] = ()) -> SegOutput:
        self.card.refuse_features(taps)
        stride = self._taps["logits"].stride
        grid = (math.ceil(images.shape[-2] / stride), math.ceil(images.shape[-1] / stride))
        total = None
        for member in self.members:
            logits = member(images).logits.float()  # (N, C, h_m, w_m): the member normalised the raw image itself
            if tuple(logits.shape[-2:]) != grid:
                logits = F.interpolate(logits, size=grid, mode="bilinear", align_corners=False)
            part = logits.softmax(1) if self.card.combine == "mean_prob" else logits
            total = part if total is None else total + part
        mean = total / len(self.members)
        return SegOutput(torch.log(mean.clamp_min(1e-12)) if self.card.combine == "mean_prob" else mean)


def load_member(path: str, card_file: str | Path | None, field: str) -> Segmenter:
    """A member as load_teacher would load it alone: its file, with its card's runtime settings."""
    from distill.models.build import load_model_file, weights_file
    from distill.models.onnx_teacher import OnnxCard, load_onnx

    card = load_card(path)
    if isinstance(card, OnnxCard):  # its card is its file
        return load_onnx(card, path)
    checkpoint = weights_file(card)
    if not checkpoint.is_file():
        raise DistillError(card_file, field, f"a member whose checkpoint exists ({path}; train it first with distill train)",
                           got=str(checkpoint))
    model = load_model_file(checkpoint)[0]
    model.adopt_runtime_settings(card)  # e.g. the member card's multi-scale + flip inference
    if model.in_channels != 3:
        raise DistillError(card_file, field, "a member that reads the image alone",
                           got=f"<{checkpoint}: {model.in_channels} channels>")
    return model.eval()


def load_ensemble(card: EnsembleCard, card_file: str | Path) -> EnsembleTeacher:
    """The trained ensemble, frozen; members must agree on their classes (count and names)."""
    members = [load_member(path, card_file, f"members[{i}]") for i, path in enumerate(card.members)]
    first = members[0]
    for i, member in enumerate(members[1:], 1):
        names, expected = member.card.classes, first.card.classes
        if member.num_classes != first.num_classes or (names and expected and names != expected):
            raise DistillError(card_file, f"members[{i}]", f"the classes of members[0] ({expected or first.num_classes})",
                               got=names or member.num_classes)
    if card.classes and first.card.classes and card.classes != first.card.classes:
        raise DistillError(card_file, "classes", f"the members' classes {first.card.classes}", got=card.classes)
    classes = first.card.classes or card.classes
    card = card.model_copy(update={"num_classes": first.num_classes, "classes": classes})
    model = EnsembleTeacher(card, first.num_classes, members)
    model.requires_grad_(False)
    return model.eval()
