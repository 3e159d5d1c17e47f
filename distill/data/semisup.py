"""The training set of a semi-supervised recipe: per index, a labeled sample plus unlabeled images.

One epoch has max(#labeled, #unlabeled) indices, so the smaller set (the labeled one, under MGD's
protocols) is repeated [C: MGD-SSSS train.py, niters_per_epoch; methods.md section 2]. Index i of
epoch e gives labeled[p_0(i) mod L] with its label and, for each unlabeled view k (MGD: two),
unlabeled[p_k(i) mod U] as an image alone. Each p is a permutation of the epoch's indices seeded
by (seed, stream, epoch): a repeated set repeats evenly, and the views pair other images in every
epoch, as MGD's separately shuffled unlabeled loaders do (this index scheme is ours [I]). One data set behind one loader keeps the
engine's sharding, worker seeding and mid-epoch resume exactly as for supervised training.

An unlabeled image is read through the data set's `read_image`, so no label of the unlabeled set
is opened, and its sample has no "label" key at all: a loss cannot read what is not there.
Unlabeled images get the labeled images' augmentation (the recipe's crop, scale, flip, jitter), as
MGD's unsupervised loaders reuse the supervised pipeline [I]. Augmentation is seeded by
(seed, stream, i, epoch), not by the image's index, so an image that repeats within an epoch gets a
new crop each time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from distill.data.base import SegDataset
from distill.data.transforms import find_base, stem_of
from distill.errors import DistillError


class SemiSupervisedDataset(SegDataset):
    """`dataset` is the whole training split; `labeled` and `unlabeled` are disjoint indices of it."""

    def __init__(self, dataset, labeled: Sequence[int], unlabeled: Sequence[int], views: Sequence[str],
                 transform, seed: int = 0) -> None:
        if not labeled or not unlabeled:
            empty = "labeled" if not labeled else "unlabeled"
            raise DistillError(None, "data.unlabeled_views", "a partition with labeled and unlabeled images",
                               got=f"<no {empty} image in the training split>")
        self.dataset, self.labeled, self.unlabeled = dataset, list(labeled), list(unlabeled)
        self.views, self.transform, self.seed, self.epoch = list(views), transform, seed, 0
        base = find_base(dataset)
        self.classes, self.name, self.split = list(base.classes), base.name, getattr(base, "split", "train")
        self._orders: dict[int, list[int]] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._orders = epoch, {}

    def __len__(self) -> int:
        return max(len(self.labeled), len(self.unlabeled))

    def _order(self, stream: int) -> list[int]:
        if stream not in self._orders:
            generator = torch.Generator().manual_seed(hash((self.seed, stream, self.epoch)) & 0xFFFF_FFFF_FFFF_FFFF)
            self._orders[stream] = torch.randperm(len(self), generator=generator).tolist()
        return self._orders[stream]

    def pick(self, stream: int, index: int) -> int:
        """The training-split index that stream 0 (labeled) or k (the k-th unlabeled view) reads at `index`."""
        pool = self.labeled if stream == 0 else self.unlabeled
        return pool[self._order(stream)[index] % len(pool)]

    def _generator(self, stream: int, index: int) -> torch.Generator:
        # hash() of a tuple of ints is stable across runs (PYTHONHASHSEED only salts str/bytes).
        return torch.Generator().manual_seed(hash((self.seed, stream, index, self.epoch)) & 0xFFFF_FFFF_FFFF_FFFF)

    def stem(self, index: int) -> str:
        return stem_of(self.dataset, self.pick(0, index))

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        sample = self.transform(self.dataset[self.pick(0, index)], self._generator(0, index))
        views = {}
        for stream, name in enumerate(self.views, start=1):
            item = self.pick(stream, index)
            image_only = {"image": self.dataset.read_image(item), "name": stem_of(self.dataset, item)}
            views[name] = self.transform(image_only, self._generator(stream, index))
        return {**sample, "views": views}
