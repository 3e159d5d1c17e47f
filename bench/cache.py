"""Teacher-output cache: the time of N training steps with and without it, and how close its warped
outputs are to a fresh teacher's on the same augmented views.

Both timings are the engine's real `Trainer.step` (CE + pixel KD) on the same pre-collated
batches, interleaved round by round so that machine load affects them alike; the median round is
used. The uncached step runs the teacher; the cached one reads each sample's file and warps it
(distill.engine.cache), so the disk reads are in its time. The one-off build is timed apart.

Accuracy: on augmented views (the recipe transform, photometric jitter off), the cached-and-
warped logits against the teacher run on the view itself: max and mean |difference| and argmax
agreement, over every output cell and over the cells inside the image (padding excluded, where
the cache gives edge values and labels are ignored), split into scale-1 views (crop and flip
only) and rescaled ones. The teacher is --teacher: by default the CamVid v2 stage-2 zoo teacher (a real CNN
with real structure; its 11 classes need not be the data's), else the card built untrained. A card's
`inference:` (multi-scale + flip) is applied, so `--teacher teachers/camvid_deeplabv3plus_lite2_v2s2_ms.yaml`
times the six-forward teacher the cache pays for once.

    python bench/cache.py [--data synthetic|camvid] [--steps 6] [--rounds 3] [--views 24]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from rich.console import Console
from torch.utils.data import DataLoader, Subset

from distill.batch import Batch
from distill.cards import load_card
from distill.data import TransformedDataset, build_dataset
from distill.data.transforms import TrainTransform
from distill.engine.cache import CacheKey, TeacherCache
from distill.engine.evaluate import collate
from distill.engine.loop import Distillation, Trainer
from distill.engine.schedule import build_optimizer, build_scheduler
from distill.losses import LOSSES
from distill.losses._functional import resize_labels
from distill.measure.flops import count_gflops
from distill.models import build_model, load_model_file
from distill.outputs import IGNORE_INDEX
from distill.specs import TrainSpec

ROOT = Path(__file__).resolve().parents[1]
# name, root, crop, scale range: synthetic scenes drawn larger than the crop (so crops happen), CamVid as its recipes train
DATA = {"synthetic": ("synthetic", None, (96, 128), (0.5, 2.0)),
        "camvid": ("camvid", str(ROOT / "../shared/data/camvid"), (240, 320), (0.5, 1.5))}


def make_trainer(accelerator, student, teachers, caches, spec) -> Trainer:
    losses = [("ce", LOSSES.get("ce")(), 1.0), ("kd", LOSSES.get("kd")(), 1.0)]
    model = Distillation(student, losses)
    optimizer = build_optimizer([(list(model.parameters()), 1.0)], spec)
    return Trainer(accelerator, model, teachers, None, optimizer, build_scheduler(optimizer, spec), spec, caches=caches)


def teacher_and_source(card_path: Path, classes: int):
    """A card whose checkpoint exists gives its trained model (the CamVid zoo teachers), a model file
    itself, else the card's architecture untrained."""
    if card_path.suffix == ".safetensors":
        return load_model_file(card_path)[0], f"{card_path.name} (trained)"
    card = load_card(card_path)
    checkpoint = getattr(card, "checkpoint", None)
    if checkpoint and (ROOT / checkpoint).is_file():
        teacher = load_model_file(ROOT / checkpoint)[0]
        teacher.adopt_runtime_settings(card)  # as load_teacher does: the card's multi-scale + flip inference
        views = "" if card.inference.plain else f", inference scales {card.inference.scales} flip {card.inference.flip}"
        return teacher, f"{Path(checkpoint).name} (trained{views})"
    return build_model(card, classes, load_pretrained=False), f"{card_path.name} (untrained)"


def time_steps(plain: Trainer, cached: Trainer, batches: list[dict], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"teacher run": [], "teacher cached": []}
    for r in range(rounds + 1):  # one warm-up round
        for name, trainer in (("teacher run", plain), ("teacher cached", cached)):
            start = time.perf_counter()
            for i, sample in enumerate(batches):
                trainer.step(sample, i)
            if r:
                times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def time_parts(plain: Trainer, cache: TeacherCache, batches: list[dict]) -> dict[str, float]:
    """The median per batch of what differs between the two steps: the teacher forward, the cache read + warp."""
    views = [plain.make_batch(b) for b in batches]
    forward = statistics.median(timed(lambda: plain.teacher_outputs(v)) for v in views)
    served = statistics.median(timed(lambda: cache.outputs(v, "labeled")) for v in views)
    return {"teacher forward": forward, "cache read + warp": served}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def agreement(cache: TeacherCache, teacher, images, transform: TrainTransform, views: int) -> dict[str, float]:
    diffs, inside, same, same_inside, cells, cells_inside = [], [], 0, 0, 0, 0
    for n in range(views):
        sample = transform(images[n % len(images)], torch.Generator().manual_seed(1000 + n))
        batch = Batch.from_loader(collate([sample]))
        with torch.inference_mode():
            fresh = teacher(batch.view("labeled").image).logits.float()
        served = cache.outputs(batch, "labeled").logits
        assert served.shape == fresh.shape, (served.shape, fresh.shape)
        valid = resize_labels(batch.view("labeled").label, tuple(fresh.shape[-2:]))[0] != IGNORE_INDEX  # (h, w)
        diff = (served - fresh).abs()[0]  # (C, h, w)
        diffs.append(diff.flatten())
        inside.append(diff[:, valid].flatten())
        agree = served.argmax(1)[0] == fresh.argmax(1)[0]
        same, cells = same + int(agree.sum()), cells + agree.numel()
        same_inside, cells_inside = same_inside + int(agree[valid].sum()), cells_inside + int(valid.sum())
    every, image = torch.cat(diffs), torch.cat(inside)
    return {"max": every.max().item(), "mean": every.mean().item(), "argmax": 100 * same / cells,
            "max_in": image.max().item(), "mean_in": image.mean().item(), "argmax_in": 100 * same_inside / max(cells_inside, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=list(DATA), default="synthetic")
    parser.add_argument("--teacher", default=str(ROOT / "teachers/camvid_deeplabv3plus_lite2_v2s2.yaml"),
                        help="a card (its checkpoint when the file exists, else untrained) or a .safetensors model file")
    parser.add_argument("--student", default=str(ROOT / "students/lraspp_mobilenetv3_small.yaml"))
    parser.add_argument("--images", type=int, default=24, help="training images cached (the first N of the split)")
    parser.add_argument("--size", type=int, nargs=2, default=(144, 192), help="synthetic image size (H W)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--views", type=int, default=24, help="augmented views per accuracy row")
    args = parser.parse_args()

    torch.manual_seed(0)
    name, root, crop, scales = DATA[args.data]
    options = {"num_images": args.images, "size": tuple(args.size)} if name == "synthetic" else {}
    images = build_dataset(name, root, "train", options)
    if len(images) > args.images:
        images = Subset(images, range(args.images))
    teacher, source = teacher_and_source(Path(args.teacher), len(images.dataset.classes if isinstance(images, Subset) else images.classes))
    teacher.requires_grad_(False).eval()
    student = build_model(load_card(args.student), teacher.num_classes, load_pretrained=False)
    ratio = count_gflops(teacher, crop) / count_gflops(student, crop)

    with tempfile.TemporaryDirectory() as folder:
        key = CacheKey(card=teacher.card.name, teacher_sha256="bench", settings={}, data={"name": name, "split": "train"},
                       taps=("logits",))
        cache = TeacherCache(Path(folder), key, {"logits": teacher.taps["logits"].stride}, photometric="refuse")
        start = time.perf_counter()
        report = cache.build(teacher, images, Console(stderr=True))
        build_s = time.perf_counter() - start

        transform = TrainTransform(crop, scales, flip=True, photometric=False)
        loader = DataLoader(TransformedDataset(images, transform, seed=0), batch_size=args.batch, shuffle=True,
                            drop_last=True, collate_fn=collate, generator=torch.Generator().manual_seed(0))
        batches = [b for _, b in zip(range(args.steps), loader)]
        accelerator, spec = Accelerator(cpu=True), TrainSpec(iterations=10_000, lr=1e-4)
        plain = make_trainer(accelerator, student, {"main": teacher}, {}, spec)
        cached = make_trainer(accelerator, student, {}, {"main": cache}, spec)
        med = time_steps(plain, cached, batches, args.rounds)
        parts = time_parts(plain, cache, batches)
        rows = {"scale 1, crop": TrainTransform(crop, (1.0, 1.0), flip=False, photometric=False),
                "scale 1, crop + flip": TrainTransform(crop, (1.0, 1.0), flip=True, photometric=False),
                f"scale {scales[0]}-{scales[1]} (rescale, pad, crop, flip)": transform}
        accuracy = {label: agreement(cache, teacher, images, t, args.views) for label, t in rows.items()}

    per_epoch = len(images) // args.batch
    print(f"{args.data}: {len(images)} training images, crop {crop[0]}x{crop[1]}, batch {args.batch}, "
          f"{torch.get_num_threads()} threads, {accelerator.device}; {args.rounds} rounds of {args.steps} steps (median)")
    print(f"teacher {source}: {ratio:.1f}x the student's GFLOPs ({Path(args.student).name}) at {crop[0]}x{crop[1]}")
    print(f"cache build (once): {build_s:.1f} s for {report.built} images, {report.bytes / 2**20:.1f} MiB float16")
    for key_name, value in med.items():
        print(f"  step, {key_name:15s} {value / args.steps * 1000:8.1f} ms/step  {value / args.steps * per_epoch:7.1f} s/epoch")
    for key_name, value in parts.items():
        print(f"  {key_name:21s} {value * 1000:8.1f} ms/batch")
    print(f"ratio cached / uncached = {med['teacher cached'] / med['teacher run']:.3f}")
    print(f"cached-and-warped vs fresh teacher logits ({args.views} views each; inside = image cells, padding excluded):")
    for label, a in accuracy.items():
        print(f"  {label}: max |d| {a['max']:.3f} (inside {a['max_in']:.3f}), mean |d| {a['mean']:.4f} "
              f"(inside {a['mean_in']:.4f}), argmax agreement {a['argmax']:.2f}% (inside {a['argmax_in']:.2f}%)")


if __name__ == "__main__":
    main()
