"""The teacher-output cache (distill.engine.cache, distill.geometry, distill.stages.teacher_cache).

Exactness is checked against a teacher that commutes with the training transform: a per-pixel
linear model (a 1x1 conv on the normalised image), optionally followed by average pooling. A
real CNN commutes with neither crops (zero padding, receptive field) nor rescaling
(nonlinearity); bench/cache.py measures how far it is off.

Tolerances, derived rather than tuned:
- float16 storage rounds to nearest, a relative error of at most 2^-11; a bilinear blend of
  rounded values is off by at most 2^-11 * max|map|.
- A rescaled image is rounded to uint8 (distill.data.transforms.rescale_pair): each channel is
  off by at most 0.5/255, so logit k is off by at most 0.5/255 * sum_c |W_kc| / std_c. The cache
  resamples the teacher's map with the same filter without that rounding.
Crops and flips at scale 1 involve no rounding, so only the float16 term applies.
"""

from __future__ import annotations

import json
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import synthetic_data
from rich.console import Console
from torch import nn

from distill.batch import Batch, CutMix, HorizontalFlip, View
from distill.data.transforms import TrainTransform, crop_corner, crop_pair, jitter_colours, pad_pair, rescale_pair
from distill.engine.cache import CacheKey, TeacherCache
from distill.engine.cache_codec import decode, encode
from distill.engine.evaluate import collate
from distill.errors import DistillError
from distill.geometry import FIELD
from distill.models import build_model, save_model
from distill.models.base import Segmenter
from distill.models.cards import InferenceSpec, TinyConvCard
from distill.outputs import IGNORE_INDEX, SegOutput, TapInfo
from distill.recipe import load_recipe
from distill.stages import RunOptions, run_recipe
from distill.stages.dryrun import dry_run
from distill.stages.teacher_cache import runtime_settings

CLASSES = 5
FP16 = 2.0**-11


class LinearTeacher(Segmenter):
    """logits = avg_pool_stride(W @ normalise(x) + b); tap `half` = 2 * its first two channels.
    `calls` counts single forwards; `limit` raises KeyboardInterrupt at call limit + 1."""

    def __init__(self, stride: int = 1, inference: InferenceSpec | None = None, limit: int | None = None) -> None:
        card = TinyConvCard(name="linear", widths=[4], input_mean=(0.4, 0.5, 0.6), input_std=(0.2, 0.25, 0.3),
                            inference=inference or InferenceSpec())
        super().__init__(card, CLASSES)
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, CLASSES, 1)
        self.stride, self.calls, self.limit = stride, 0, limit
        self._taps = {"logits": TapInfo(CLASSES, stride), "half": TapInfo(2, stride)}

    def forward_single(self, images, taps=()):
        if self.limit is not None and self.calls >= self.limit:
            raise KeyboardInterrupt
        self.calls += 1
        z = self.conv(self.normalise(images))
        if self.stride > 1:
            z = F.avg_pool2d(z, self.stride)
        out = SegOutput(z)
        if "half" in taps:
            out.features["half"] = 2 * z[:, :2]
        return out

    def rounding_bound(self) -> float:
        """max_k sum_c |W_kc| / std_c * 0.5 / 255: the logit error of a uint8-rounded image."""
        w = self.conv.weight.detach()[:, :, 0, 0].abs() / self.std.view(1, 3)
        return float(w.sum(1).max()) * 0.5 / 255


class Images(torch.utils.data.Dataset):
    """Random uint8 images (labels 0..4, so IGNORE_INDEX marks padding only)."""

    name, split, classes = "toy", "train", [str(i) for i in range(CLASSES)]

    def __init__(self, count: int = 4, size: tuple[int, int] = (24, 32)) -> None:
        g = torch.Generator().manual_seed(1)
        self.images = torch.randint(0, 256, (count, 3, *size), generator=g, dtype=torch.uint8)
        self.labels = torch.randint(0, CLASSES, (count, *size), generator=g)

    def __len__(self) -> int:
        return len(self.images)

    def stem(self, index: int) -> str:
        return f"img_{index:03d}"

    def __getitem__(self, index: int) -> dict:
        return {"image": self.images[index], "label": self.labels[index], "name": self.stem(index)}


def cache_of(tmp_path: Path, teacher: LinearTeacher, sha: str = "a" * 64, taps=("logits",), topk=None,
             photometric="refuse") -> TeacherCache:
    key = CacheKey(card="linear", teacher_sha256=sha, settings=runtime_settings(teacher.card),
                   data={"name": "toy", "root": None, "options": {}, "split": "train"}, taps=tuple(taps), topk=topk)
    return TeacherCache(tmp_path / "cache", key, {tap: teacher.taps[tap].stride for tap in taps}, photometric)


def built(tmp_path: Path, teacher: LinearTeacher, images: Images, **kwargs) -> TeacherCache:
    cache = cache_of(tmp_path, teacher, **kwargs)
    cache.build(teacher.eval(), images, Console(quiet=True))
    return cache


def augmented(transform: TrainTransform, sample: dict, wanted=lambda g: True) -> dict:
    """The transform's output for the first seed whose geometry record satisfies `wanted`."""
    for seed in range(2000):
        out = transform(sample, torch.Generator().manual_seed(seed))
        if wanted({name: float(out["geometry"][i]) for name, i in FIELD.items()}):
            return out
    raise AssertionError("no seed gives the wanted geometry")


def served_and_fresh(cache: TeacherCache, teacher: LinearTeacher, aug: dict, view: str = "labeled"):
    batch = Batch.from_loader(collate([aug]))
    if view != "labeled":
        batch = HorizontalFlip(into=view)(batch)
    with torch.no_grad():
        fresh = teacher.eval()(batch.view(view).image).logits[0]
    return cache.outputs(batch, view).logits[0], fresh, batch.view(view).label[0] != IGNORE_INDEX


def test_the_geometry_record_says_what_the_transform_did_without_changing_its_draws():
    sample = Images()[0]
    transform = TrainTransform((16, 20), (0.6, 0.6), True, photometric=True)
    out = transform(sample, torch.Generator().manual_seed(5))
    u = torch.rand(7, generator=torch.Generator().manual_seed(5), dtype=torch.float64).tolist()  # the same 7 draws
    image, label = rescale_pair(sample["image"], sample["label"], 0.6)  # (14, 19): padded to (16, 20)
    image, label = crop_pair(*pad_pair(image, label, (16, 20)), (16, 20), u[1], u[2])
    flipped = u[3] < 0.5
    if flipped:
        image, label = image.flip(-1), label.flip(-1)
    assert torch.equal(out["label"], label)
    assert torch.equal(out["image"], jitter_colours(image, *(1.0 + 0.2 * (2.0 * v - 1.0) for v in u[4:7])))
    top, left = crop_corner((16, 20), (16, 20), u[1], u[2])
    assert out["geometry"].tolist() == [24, 32, 14, 19, 2, 1, top, left, 16, 20, float(flipped), 1.0]
    batch = collate([out, transform(Images()[1], torch.Generator().manual_seed(6))])
    assert batch["geometry"].shape == (2, len(FIELD)) and Batch.from_loader(batch).view("labeled").geometry is batch["geometry"]


CASES = {  # name: (scale, crop (H, W), flip, the geometry wanted)
    "crop": (1.0, (16, 20), False, lambda g: g["top"] > 0 and g["left"] > 0),
    "flip": (1.0, (24, 32), True, lambda g: g["flip"] == 1),
    "scale_up": (1.5, (36, 48), False, lambda g: True),
    "scale_down": (0.5, (12, 16), False, lambda g: True),
    "scale_down_antialias": (0.75, (18, 24), False, lambda g: True),
    "scale_crop_flip": (1.25, (20, 28), True, lambda g: g["flip"] == 1 and g["top"] > 0 and g["left"] > 0),
    "scale_pad_crop_flip": (0.6, (16, 20), True, lambda g: g["flip"] == 1 and g["pad_bottom"] > 0 and g["pad_right"] > 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cached_and_warped_equals_the_fresh_teacher_on_the_augmented_view(tmp_path, case):
    scale, crop, flip, wanted = CASES[case]
    teacher, images = LinearTeacher(), Images()
    cache = built(tmp_path, teacher, images)
    aug = augmented(TrainTransform(crop, (scale, scale), flip, photometric=False), images[0], wanted)
    served, fresh, valid = served_and_fresh(cache, teacher, aug)
    assert served.shape == fresh.shape == (CLASSES, *crop)
    # Padding (scale_pad_crop_flip) has no teacher output in the cache: compared where labels are not ignored.
    error = (served - fresh).abs()[:, valid].max().item()
    tolerance = FP16 * fresh.abs().max().item() + (teacher.rounding_bound() if scale != 1.0 else 0.0) + 1e-5
    assert error <= tolerance
    assert valid.float().mean() > 0.5


@pytest.mark.parametrize("stride", [2, 4])
@pytest.mark.parametrize("flip", [False, True])
def test_at_a_larger_stride_crops_at_stride_multiples_and_flips_are_exact(tmp_path, stride, flip):
    teacher, images = LinearTeacher(stride=stride), Images(size=(32, 48))
    cache = built(tmp_path, teacher, images)
    wanted = lambda g: g["flip"] == flip and g["top"] % stride == 0 and g["left"] % stride == 0 and g["top"] + g["left"] > 0  # noqa: E731
    aug = augmented(TrainTransform((16, 24), (1.0, 1.0), True, photometric=False), images[1], wanted)
    served, fresh, _ = served_and_fresh(cache, teacher, aug)
    assert served.shape == fresh.shape == (CLASSES, 16 // stride, 24 // stride)
    assert (served - fresh).abs().max().item() <= FP16 * fresh.abs().max().item() + 1e-5


def test_the_hflip_view_is_served_as_the_mirror_of_the_labeled_one(tmp_path):
    teacher, images = LinearTeacher(), Images()
    cache = built(tmp_path, teacher, images)
    aug = augmented(TrainTransform((16, 20), (1.0, 1.0), True, photometric=False), images[2], lambda g: g["flip"] == 0)
    served, fresh, _ = served_and_fresh(cache, teacher, aug, view="flipped")
    assert (served - fresh).abs().max().item() <= FP16 * fresh.abs().max().item() + 1e-5
    assert not torch.allclose(served, served.flip(-1))  # a mirrored map, not a symmetric one


def test_feature_taps_are_cached_and_warped_alike(tmp_path):
    teacher, images = LinearTeacher(), Images()
    cache = built(tmp_path, teacher, images, taps=("logits", "half"))
    aug = augmented(TrainTransform((16, 20), (1.0, 1.0), True, photometric=False), images[0], lambda g: g["flip"] == 1)
    batch = Batch.from_loader(collate([aug]))
    out = cache.outputs(batch, "labeled", ("half",))
    assert torch.allclose(out.features["half"], 2 * out.logits[:, :2], atol=1e-2)
    assert out.features["half"].shape == (1, 2, 16, 20)


def test_a_new_teacher_file_rebuilds_and_the_old_cache_is_kept(tmp_path):
    teacher, images = LinearTeacher(), Images()
    first = built(tmp_path, teacher, images, sha="a" * 64)
    assert teacher.calls == len(images)
    second = built(tmp_path, teacher, images, sha="b" * 64)
    assert teacher.calls == 2 * len(images) and second.folder != first.folder
    built(tmp_path, teacher, images, sha="a" * 64)
    assert teacher.calls == 2 * len(images)  # nothing recomputed
    manifest = json.loads((first.folder / "manifest.json").read_text())
    assert manifest["key"]["teacher_sha256"] == "a" * 64 and manifest["complete"] and manifest["images"] == len(images)


def test_other_taps_or_inference_settings_rebuild(tmp_path):
    images = Images()
    teacher = LinearTeacher()
    built(tmp_path, teacher, images)
    built(tmp_path, teacher, images, taps=("logits", "half"))
    assert teacher.calls == 2 * len(images)
    multiscale = LinearTeacher(inference=InferenceSpec(scales=[1.0, 1.5]))
    cache = built(tmp_path, multiscale, images)
    assert multiscale.calls == 2 * len(images)  # two scales per image, once
    assert json.loads((cache.folder / "manifest.json").read_text())["key"]["settings"]["inference"]["scales"] == [1.0, 1.5]


def test_an_interrupted_build_resumes_with_only_the_missing_images(tmp_path):
    images = Images(count=6)
    with pytest.raises(KeyboardInterrupt):
        built(tmp_path, LinearTeacher(limit=2), images)
    cache = cache_of(tmp_path, LinearTeacher())
    assert sorted(p.name for p in cache.folder.iterdir()) == ["img_000.safetensors", "img_001.safetensors", "manifest.json"]
    assert not json.loads((cache.folder / "manifest.json").read_text())["complete"]
    teacher = LinearTeacher()
    report = cache.build(teacher.eval(), images, Console(quiet=True))
    assert teacher.calls == 4 and report.built == 4 and cache.count_valid(images) == 6


def test_a_build_into_a_log_file_prints_plain_progress_lines(tmp_path):
    """Without a terminal (a log file, CI) rich draws no bar: a line every tenth of the build instead."""
    import io

    out = io.StringIO()
    cache_of(tmp_path, LinearTeacher()).build(LinearTeacher().eval(), Images(count=20), Console(file=out, width=200))
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1].startswith("teacher cache ") and ": 20/20 images" in lines[-1]
    assert ": 2/20 images" in lines[0] and "ETA" in lines[0]


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_corrupt_cache_file_is_one_line_naming_it_and_is_rebuilt(tmp_path, damage):
    teacher, images = LinearTeacher(), Images()
    cache = built(tmp_path, teacher, images)
    path = cache.path_of("img_001")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x00" * 64)
    with pytest.raises(DistillError, match=r"img_001\.safetensors: expected a valid teacher-cache file") as info:
        cache.load("img_001")
    assert "\n" not in str(info.value) and "corrupt" in str(info.value)
    cache.build(teacher, images, Console(quiet=True))
    assert teacher.calls == len(images) + 1 and cache.load("img_001")[0]["logits"].shape == (CLASSES, 24, 32)


def test_a_disk_too_small_for_the_cache_is_refused_before_any_forward(tmp_path, monkeypatch):
    teacher, images = LinearTeacher(), Images()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    cache = cache_of(tmp_path, teacher)
    with pytest.raises(DistillError, match=r"cache/linear-toy-train-\w+: teacher_cache.dir: expected at least .* free "
                                           r"for 4 cached teacher outputs") as info:
        cache.build(teacher, images, Console(quiet=True))
    assert "\n" not in str(info.value) and teacher.calls == 0 and not cache.folder.exists()


def test_topk_keeps_the_k_logits_exactly_the_argmax_and_the_dropped_mass():
    logits = torch.randn(10, 6, 7, generator=torch.Generator().manual_seed(3)) * 3
    maps = decode(encode({"logits": logits}, "float16", 3), 10, ("logits",))["logits"]
    top = logits.topk(3, dim=0).indices
    assert torch.equal(maps.gather(0, top), logits.half().float().gather(0, top))
    assert torch.equal(maps.argmax(0), logits.argmax(0))
    dropped = torch.ones_like(logits, dtype=torch.bool).scatter(0, top, False)
    mass = lambda z: (z.softmax(0) * dropped).sum(0)  # noqa: E731
    assert torch.allclose(mass(maps), mass(logits), rtol=5e-3, atol=1e-4)
    # Every dropped class gets the same fill, never above the k-th logit.
    fill = maps.masked_fill(~dropped, float("nan"))
    assert torch.allclose(fill.nanmean(0), fill.nan_to_num(float("inf")).amin(0)) and (fill.nan_to_num(-1e9).amax(0) <= maps.gather(0, top).amin(0)).all()


def test_a_topk_cache_serves_the_fresh_argmax(tmp_path):
    teacher, images = LinearTeacher(), Images()
    cache = built(tmp_path, teacher, images, topk=2)
    assert len(cache.load("img_000")[0]) == 1 and cache.path_of("img_000").stat().st_size < 24 * 32 * CLASSES * 2
    aug = augmented(TrainTransform((16, 20), (1.0, 1.0), True, photometric=False), images[3], lambda g: g["flip"] == 1)
    served, fresh, _ = served_and_fresh(cache, teacher, aug)
    assert torch.equal(served.argmax(0), fresh.argmax(0))


def test_jittered_samples_and_views_without_geometry_are_refused(tmp_path):
    teacher, images = LinearTeacher(), Images()
    cache = built(tmp_path, teacher, images)
    jittered = TrainTransform((16, 20), (1.0, 1.0), False, photometric=True)(images[0], torch.Generator().manual_seed(0))
    batch = Batch.from_loader(collate([jittered]))
    with pytest.raises(DistillError, match="teacher_cache.photometric: expected approximate"):
        cache.outputs(batch, "labeled")
    assert cache_of(tmp_path, teacher, photometric="approximate").outputs(batch, "labeled").logits.shape == (1, CLASSES, 16, 20)
    mixed = Batch({**batch.views, "a": View(batch.view("labeled").image), "b": View(batch.view("labeled").image)}, batch.names)
    mixed = CutMix(sources=("a", "b"))(mixed, torch.Generator().manual_seed(0))
    with pytest.raises(DistillError, match="teacher_cache: expected a view the loader's transform made"):
        cache.outputs(mixed, "mixed")


# -- the recipe block ------------------------------------------------------------------------
def tiny_card(name: str, checkpoint: Path | None = None, extra: str = "") -> str:
    text = f"family: tinyconv\nname: {name}\nwidths: [8, 16]\n"
    return text + (f"checkpoint: {checkpoint}\n" if checkpoint else "") + extra


def write_project(tmp_path: Path, cache: str, body: str = "", photometric: bool = False, teacher_extra: str = "") -> Path:
    """A tinyconv teacher (saved, untrained) and student, a kd recipe with a `teacher_cache:` block."""
    from distill.data.scenes import CLASSES as SCENE_CLASSES

    torch.manual_seed(0)
    weights = tmp_path / "teacher.safetensors"
    save_model(build_model(TinyConvCard(name="teacher", widths=[8, 16]), len(SCENE_CLASSES), list(SCENE_CLASSES)), weights, {})
    (tmp_path / "teacher.yaml").write_text(tiny_card("teacher", weights, teacher_extra))
    (tmp_path / "student.yaml").write_text(tiny_card("student"))
    data = synthetic_data(8).replace("workers: 0", f"workers: 0, photometric: {str(photometric).lower()}")
    losses = body or "losses:\n  - {name: ce}\n  - {name: kd, tau: 2.0}\n"
    text = (f"name: cached\nteacher: teacher.yaml\nstudent: student.yaml\ndata: {data}\n{losses}"
            f"teacher_cache: {cache}\ntrain: {{iterations: 3, lr: 0.01}}\n")
    (tmp_path / "cached.yaml").write_text(text)
    return tmp_path / "cached.yaml"


@pytest.mark.parametrize("cache, body, photometric, extra, match", [
    ("{dir: c}", "", True, "", r"cached.yaml:\d+: teacher_cache.photometric: expected approximate with data.photometric true"),
    ("{teachers: [wide]}", "", False, "", r"teacher_cache.teachers\[0\]: expected a teacher some loss reads \(main\), got 'wide'"),
    ("{}", "batch_transforms: [{name: copy}]\nlosses:\n  - {name: ce}\n  - {name: kd, view: copy}\n", False, "",
     r"losses\[1\]: expected a view the teacher cache can serve for teacher main \(labeled; .*got 'copy'"),
    ("{}", "", False, "input: {name: label_channel}\n", r"teacher_cache.teachers\[0\]: expected a teacher that reads images only"),
    ("{topk: 8}", "", False, "num_classes: 8\n", r"teacher_cache.topk: expected fewer than the 8 classes"),
])
def test_the_recipe_block_is_checked_at_load(tmp_path, cache, body, photometric, extra, match):
    with pytest.raises(DistillError, match=match):
        load_recipe(write_project(tmp_path, cache, body, photometric, extra))


def test_an_hflip_view_of_labeled_and_approximate_jitter_are_accepted(tmp_path):
    body = "batch_transforms: [{name: hflip}]\nlosses:\n  - {name: ce}\n  - {name: kd, view: flipped}\n"
    loaded = load_recipe(write_project(tmp_path, "{photometric: approximate, topk: 3}", body, photometric=True))
    assert loaded.recipe.teacher_cache.topk == 3 and loaded.recipe.teacher_cache.dir == "cache"


def test_a_cached_run_trains_without_teacher_forwards_and_a_second_run_reuses_the_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_project(tmp_path, "{dir: shared_cache}")
    calls: list[str] = []
    original = Segmenter.forward
    monkeypatch.setattr(Segmenter, "forward", lambda self, *a, **k: (calls.append(self.card.name), original(self, *a, **k))[1])
    first = run_recipe(load_recipe(path), RunOptions(run_dir=tmp_path / "one"), Console(quiet=True))
    assert calls.count("teacher") == 8  # the build: once per training image, none while training
    second = run_recipe(load_recipe(path), RunOptions(run_dir=tmp_path / "two"), Console(quiet=True))
    assert calls.count("teacher") == 8  # nothing rebuilt, nothing run
    for summary in (first, second):
        log = [json.loads(line) for line in (summary.run_dir / "log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log if "kd" in r] == [3] and log[-1]["eval"]["miou"] >= 0
    folders = list((tmp_path / "shared_cache").iterdir())
    assert len(folders) == 1 and len(list(folders[0].glob("*.safetensors"))) == 8
    console = Console(record=True, width=300)
    dry_run(load_recipe(path), RunOptions(run_dir=tmp_path / "three"), console)
    text = console.export_text()
    assert f"teacher cache main: shared_cache/{folders[0].name}: 8 of 8 images cached; builds 0 before training" in text
