"""The recipe's `teacher_cache:` block: each cached teacher's key, its build before training, and
what `--dry-run` says about it (distill.engine.cache holds the cache itself)."""

from __future__ import annotations

from typing import Any

from accelerate import Accelerator
from rich.console import Console
from torch.utils.data import Subset

from distill.data.semisup import SemiSupervisedDataset
from distill.engine.cache import CacheKey, TeacherCache
from distill.engine.cache_codec import stored_bytes
from distill.io import format_bytes
from distill.models import Segmenter, load_model_file
from distill.models.cards import BaseCard
from distill.recipe import LoadedRecipe
from distill.stages.setup import TrainData, teacher_file, teacher_sha256


def cached_taps(loaded: LoadedRecipe, name: str) -> tuple[str, ...]:
    """"logits" and, sorted, the feature taps the recipe's losses read from teacher `name`."""
    taps = {read.tap for loss in loaded.losses() for read in loss.reads() if read.model == name}
    return ("logits", *sorted(taps - {"logits"}))


def runtime_settings(card: BaseCard) -> dict[str, Any]:
    """The card settings no weight holds (inference scales and flip; the family's other runtime keys)."""
    return card.model_dump(mode="json", include=set(type(card).runtime_keys))


def source_images(train: Any) -> Any:
    """The un-augmented images the `labeled` view is drawn from (a labeled subset's, under MGD)."""
    if isinstance(train, SemiSupervisedDataset):
        return Subset(train.dataset, train.labeled)
    return train.dataset


def make_cache(loaded: LoadedRecipe, name: str, data: TrainData, strides: dict[str, int]) -> TeacherCache:
    """The recipe's card names the folder and gives the runtime settings (a loaded teacher adopts them)."""
    spec, recipe, card = loaded.recipe.teacher_cache, loaded.recipe, loaded.teacher_cards[name]
    split = getattr(data.train, "split", "train")
    key = CacheKey(card=card.name, teacher_sha256=teacher_sha256(loaded, name), settings=runtime_settings(card),
                   data={"name": recipe.data.name, "root": recipe.data.root, "options": recipe.data.options, "split": split},
                   taps=cached_taps(loaded, name), dtype=spec.dtype, topk=spec.topk)
    return TeacherCache(spec.dir, key, strides, spec.photometric)


def prepare_caches(loaded: LoadedRecipe, data: TrainData, accelerator: Accelerator, teachers: dict[str, Segmenter],
                   console: Console) -> dict[str, TeacherCache]:
    """Build (on the main process, the others wait) and return the recipe's teacher caches."""
    spec = loaded.recipe.teacher_cache
    if spec is None:
        return {}
    caches, images = {}, source_images(data.train)
    for name in spec.teachers:
        teacher = teachers[name]
        strides = {tap: teacher.taps[tap].stride for tap in cached_taps(loaded, name)}
        cache = make_cache(loaded, name, data, strides)
        if accelerator.is_main_process:
            teacher.to(accelerator.device)
            report = cache.build(teacher, images, console)
            teacher.to("cpu")  # served from disk from now on: off the accelerator
            reused = report.images - report.built
            console.print(f"teacher cache {name}: {report.images} images in {report.folder} ({report.built} built, "
                          f"{format_bytes(report.bytes)}; {reused} reused)", highlight=False)
        accelerator.wait_for_everyone()
        caches[name] = cache
    return caches


def describe_caches(loaded: LoadedRecipe, data: TrainData) -> list[str]:
    """--dry-run: per cached teacher, its folder and how much of it is built (nothing is written)."""
    spec = loaded.recipe.teacher_cache
    if spec is None:
        return []
    images, lines = source_images(data.train), []
    settings = f"dtype {spec.dtype}, top-k {spec.topk or 'all'}, photometric {spec.photometric}"
    for name in spec.teachers:
        path = teacher_file(loaded, name)
        if not path.is_file():
            lines.append(f"teacher cache {name}: built in {spec.dir}/ once train_teacher has made {path} ({settings})")
            continue
        teacher = load_model_file(path)[0]
        strides = {tap: teacher.taps[tap].stride for tap in cached_taps(loaded, name)}
        cache = make_cache(loaded, name, data, strides)
        valid = cache.count_valid(images)
        missing = len(images) - valid
        size = tuple(images[0]["image"].shape[-2:]) if len(images) else (0, 0)
        estimate = format_bytes(stored_bytes(cache.key, teacher, size, strides) * missing) if missing else "nothing"
        lines.append(f"teacher cache {name}: {cache.folder}: {valid} of {len(images)} images cached; builds {missing} "
                     f"before training ({estimate}), taps {', '.join(cache.key.taps)}; {settings}")
    return lines
