"""Teacher-output cache: a frozen teacher run once per training image, its outputs read from disk.

What is cached: the teacher in eval mode (so with its card's multi-scale/flip `inference:`, paid
once) on the un-augmented training image at scale 1, in float32, stored as `dtype` (float16 by
default): its logits and the feature taps the recipe's losses read from it. At training time
each sample's maps get the geometry its image got (distill.geometry: rescale, pad, crop, flip),
so they sit on the output-stride grid of the augmented crop, as a fresh teacher's would.

What is exact, what is not: for a per-pixel linear teacher at output stride 1 the served maps
equal the fresh teacher's up to the storage dtype and the uint8 rounding of the rescaled image;
at a larger stride, crops at multiples of the stride and flips are exact. A real CNN does not
commute with crops (zero padding, receptive fields) or rescaling (nonlinearity): for it the
cache is an approximation (bench/cache.py measures how close). Padding cells take the value at
the image edge (the labels there are IGNORE_INDEX). Photometric jitter changes the teacher's
input; the cache holds the un-jittered image's outputs (`photometric: approximate` accepts that).

`topk` keeps, per pixel, the k largest logits (values and class indices) and one fill value:
the logit that spreads the dropped classes' softmax mass evenly over them, logsumexp(dropped) -
log(C - k). Reconstruction puts the k logits back exactly and the fill everywhere else, so at
temperature 1 the top-k probabilities and the total dropped mass are kept and only how that mass
splits among the dropped classes is lost (at another temperature the dropped mass changes too);
the fill never exceeds the k-th logit, so the argmax is kept.

Storage: one safetensors file per image, <dir>/<card>-<data>-<split>-<digest>/<stem>.safetensors,
plus manifest.json with every field of the key. One file per image because training reads
images in random order by stem, each write is atomic on its own (Ctrl-C loses at most the image
in progress) and resuming is "skip the valid files"; shards would need an index and rewrites.
The digest hashes the key (data set, split, teacher file sha256, its runtime card settings, the
taps, dtype and top-k), so a change of any of them is another folder, built afresh.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from safetensors import safe_open
from torch import Tensor

from distill.batch import Batch, View
from distill.data.transforms import stem_of
from distill.engine.cache_codec import decode, encode, stored_bytes
from distill.errors import DistillError
from distill.geometry import FIELD, warp_to_crop
from distill.io import atomic_save_tensors, atomic_write_text, existing_ancestor, format_bytes
from distill.outputs import SegOutput

FORMAT = "distill-teacher-cache/1"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class CacheKey:
    """Everything the cached maps depend on; `digest` names the folder."""

    card: str  # the teacher card's name (readable folder names)
    teacher_sha256: str  # of the teacher's model file
    settings: dict[str, Any]  # the card's runtime settings no weight holds (inference scales, flip, ...)
    data: dict[str, Any]  # data set name, root, options, split
    taps: tuple[str, ...]  # "logits" and the feature taps the losses read
    dtype: str = "float16"
    topk: int | None = None

    def fields(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self), "taps": list(self.taps)}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.fields(), sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class BuildReport:
    images: int
    built: int
    folder: Path
    bytes: int = 0


def file_name(stem: str) -> str:
    """A stem as a file name; one with other characters (a folder separator) is made safe and unique."""
    if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", stem):
        return f"{stem}.safetensors"
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', stem)}-{hashlib.sha1(stem.encode()).hexdigest()[:8]}.safetensors"


@dataclass
class TeacherCache:
    """The cache of one teacher; `strides` maps each cached tap to its output stride."""

    root: Path
    key: CacheKey
    strides: dict[str, int] = field(default_factory=dict)
    photometric: str = "refuse"  # or "approximate": serve jittered samples the un-jittered outputs

    @property
    def folder(self) -> Path:
        data = re.sub(r"[^A-Za-z0-9._-]", "_", f"{self.key.data.get('name')}-{self.key.data.get('split')}")
        return Path(self.root) / f"{self.key.card}-{data}-{self.key.digest()}"

    def path_of(self, stem: str) -> Path:
        return self.folder / file_name(stem)

    def is_valid(self, stem: str) -> bool:
        """The file exists, opens, and belongs to this key and stem (its header only is read)."""
        try:
            with safe_open(str(self.path_of(stem)), framework="pt") as handle:
                meta = handle.metadata() or {}
        except Exception:  # missing, truncated or foreign: build it again
            return False
        return meta.get("digest") == self.key.digest() and meta.get("stem") == stem

    def count_valid(self, images: Any) -> int:
        return sum(self.is_valid(stem_of(images, i)) for i in range(len(images)))

    # -- building ------------------------------------------------------------------------
    def build(self, teacher: torch.nn.Module, images: Any, console: Console | None = None) -> BuildReport:
        """Compute and store the outputs of every image of `images` (un-augmented samples) that
        has no valid file yet. Ctrl-C keeps every file written so far; run again to resume."""
        console = console or Console(stderr=True)
        self.check_manifest()
        stems = [stem_of(images, i) for i in range(len(images))]
        todo = [i for i, stem in enumerate(stems) if not self.is_valid(stem)]
        if not todo:
            return BuildReport(len(stems), 0, self.folder)
        first = images[todo[0]]
        per_image = stored_bytes(self.key, teacher, tuple(first["image"].shape[-2:]), self.strides)
        self.check_space(per_image, len(todo))
        self.write_manifest(len(stems), complete=False)
        report = BuildReport(len(stems), 0, self.folder)
        device = next(teacher.parameters()).device
        columns = (TextColumn(f"[bold]teacher cache {self.key.card}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        try:
            with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
                task = progress.add_task("cache", total=len(todo))
                for n, i in enumerate(todo):
                    sample = first if n == 0 else images[i]
                    report.bytes += self.build_one(teacher, sample["image"], stems[i], device)
                    report.built += 1
                    progress.advance(task)
                    if not console.is_terminal:  # logs and CI: a plain line every tenth of the build
                        self.log_line(console, report.built, len(todo), progress.tasks[0].elapsed or 0.0)
        except KeyboardInterrupt:
            console.print(f"teacher cache {self.key.card}: interrupted; the {report.built} images written are kept "
                          f"in {self.folder}, run again to build the other {len(todo) - report.built}", highlight=False)
            raise
        self.write_manifest(len(stems), complete=True)
        return report

    def log_line(self, console: Console, done: int, total: int, elapsed: float) -> None:
        if done == total or done % max(1, total // 10) == 0:
            eta = elapsed / done * (total - done)
            console.print(f"teacher cache {self.key.card}: {done}/{total} images  {elapsed:.0f} s  ETA {eta:.0f} s",
                          highlight=False)

    @torch.inference_mode()
    def build_one(self, teacher: torch.nn.Module, image: Tensor, stem: str, device: torch.device) -> int:
        """One image's outputs, stored atomically; returns the bytes written."""
        x = image.to(device).float().div(255.0)[None]  # (1, 3, H, W)
        out = teacher(teacher.prepare_input(View(x)), taps=[t for t in self.key.taps if t != "logits"])
        maps = {tap: out.tap(tap)[0].float().cpu() for tap in self.key.taps}
        tensors = encode(maps, self.key.dtype, self.key.topk)
        for name, tensor in tensors.items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise DistillError(self.path_of(stem), "teacher_cache.dtype",
                                   f"a dtype that holds the teacher's {name} (finite in float32, not in {self.key.dtype})",
                                   got=self.key.dtype)
        meta = {"format": FORMAT, "digest": self.key.digest(), "stem": stem, "source": json.dumps(list(image.shape[-2:])),
                "num_classes": str(maps["logits"].shape[0])}
        atomic_save_tensors(tensors, self.path_of(stem), meta)
        return sum(t.nbytes for t in tensors.values())

    def check_space(self, per_image: int, count: int) -> None:
        """Refuse a build that cannot fit, before the first forward (estimated from one image's size)."""
        needed = math.ceil(per_image * count * 1.1) + (1 << 20)
        free = shutil.disk_usage(existing_ancestor(self.folder)).free
        if free < needed:
            raise DistillError(self.folder, "teacher_cache.dir", f"at least {format_bytes(needed)} free for {count} cached "
                               f"teacher outputs (about {format_bytes(per_image)} each)", got=f"<{format_bytes(free)} free>")

    def check_manifest(self) -> None:
        path = self.folder / MANIFEST
        if not path.is_file():
            return
        try:
            recorded = json.loads(path.read_text(encoding="utf-8")).get("key")
        except (OSError, json.JSONDecodeError, AttributeError):
            recorded = None
        if json.loads(json.dumps(self.key.fields(), default=str)) != recorded:
            raise DistillError(path, "key", "the key its folder's digest was made from (delete the folder to rebuild it)",
                               got="<another key>")

    def write_manifest(self, images: int, complete: bool) -> None:
        record = {"key": self.key.fields(), "digest": self.key.digest(), "images": images, "complete": complete}
        atomic_write_text(self.folder / MANIFEST, json.dumps(record, indent=2, default=str))

    # -- serving -------------------------------------------------------------------------
    def load(self, stem: str) -> tuple[dict[str, Tensor], tuple[int, int]]:
        """One image's maps, (C, h, w) float32 each, and the source image size they were made from."""
        path = self.path_of(stem)
        if not path.is_file():
            raise DistillError(path, None, "a cached teacher output (the cache is built before training; "
                               "an image outside the cached split?)", got="<missing>")
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                tensors = {k: handle.get_tensor(k) for k in handle.keys()}
            maps, source = decode(tensors, int(meta["num_classes"]), self.key.taps), tuple(json.loads(meta["source"]))
        except Exception as exc:  # safetensors raises SafetensorError / OSError on damage; KeyError on foreign files
            detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise DistillError(path, None, "a valid teacher-cache file (delete it and run again to rebuild it)",
                               got=f"<corrupt: {detail}>") from None
        if meta.get("digest") != self.key.digest() or meta.get("stem") != stem:
            raise DistillError(path, "metadata", f"the cache key {self.key.digest()} and stem {stem!r}",
                               got=f"<{meta.get('digest')}, {meta.get('stem')!r}>")
        return maps, source

    def outputs(self, batch: Batch, view: str, taps: tuple[str, ...] = ()) -> SegOutput:
        """The teacher's outputs on `view`, from the cache: each sample's maps warped as its image was."""
        records = self.records_of(batch, view)
        crop, device = batch.view(view).image.shape[-2:], batch.view(view).image.device
        wanted = ("logits", *taps)
        if any(tap not in self.key.taps for tap in wanted):
            raise DistillError(self.folder, "taps", f"taps this cache holds ({', '.join(self.key.taps)})", got=list(wanted))
        served: dict[str, list[Tensor]] = {tap: [] for tap in wanted}
        for stem, record in zip(batch.names, records):
            maps, source = self.load(stem)
            if source != (int(record[FIELD["source_h"]]), int(record[FIELD["source_w"]])):
                raise DistillError(self.path_of(stem), "source", f"outputs of a {tuple(record[:2].int().tolist())} image "
                                   "(the data changed since the cache was built: delete the file)", got=source)
            for tap in wanted:
                stride = self.strides[tap]
                grid = (math.ceil(crop[0] / stride), math.ceil(crop[1] / stride))
                served[tap].append(warp_to_crop(maps[tap].to(device), record, grid))
        stacked = {tap: torch.stack(maps) for tap, maps in served.items()}
        return SegOutput(stacked.pop("logits"), stacked)

    def records_of(self, batch: Batch, view: str) -> Tensor:
        records = batch.view(view).geometry
        if records is None:
            raise DistillError(None, "teacher_cache", "a view the loader's transform made (labeled, or an hflip of it)",
                               got=view)
        records = records.cpu()
        if self.photometric == "refuse" and bool(records[:, FIELD["jitter"]].any()):
            raise DistillError(None, "teacher_cache.photometric", "approximate for jittered samples", got="refuse")
        return records
