"""Typed specifications shared by recipes and model cards.

Every default lives here, so a recipe or card names only what differs. Unknown keys are errors
(`extra="forbid"`): a typo must fail at load, never fall back to a silent default. Numbers must
be finite (`.inf` or `.nan` in YAML would only surface later as a NaN loss).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

Size = tuple[PositiveInt, PositiveInt]  # (H, W)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DataSpec(Strict):
    """Which data set, how it is augmented and batched."""

    name: str = "synthetic"
    root: str | None = None  # None: the data set's default location (DISTILL_DATA or data/<name>)
    options: dict[str, Any] = Field(default_factory=dict)  # checked against the data set's builder
    crop_size: Size = (96, 128)
    scale_range: tuple[PositiveFloat, PositiveFloat] = (0.5, 2.0)
    flip: bool = True
    photometric: bool = True
    eval_size: Size | None = None  # model input size at evaluation; metrics stay at label resolution
    batch_size: PositiveInt = 8
    eval_batch_size: PositiveInt = 1
    workers: int = Field(2, ge=0)
    labeled_fraction: float | str | None = None  # "1/8" or 0.125: a fixed-seed labeled subset
    subset_seed: int = 0
    # A saved partition instead: a file of labeled stems, one per line (distill partition writes them);
    # relative to the working directory or to the recipe's folders. The rest of the split is unlabeled.
    labeled_list: str | None = None
    # Semi-supervised recipes (MGD): views drawn each step from the training images outside the labeled
    # subset, batch_size images each, never with a label; one epoch = max(#labeled, #unlabeled) / batch_size.
    unlabeled_views: list[str] = Field(default_factory=list)
    val_split: Literal["val", "test", "train"] = "val"


class TrainSpec(Strict):
    """An iteration-based schedule, as segmentation papers state their budgets."""

    iterations: PositiveInt
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: PositiveFloat = 0.01
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    head_lr_mult: PositiveFloat = 1.0  # lr multiplier for everything but the backbone
    schedule: Literal["poly", "cosine", "constant"] = "poly"
    power: PositiveFloat = 0.9
    warmup_iters: int = Field(0, ge=0)
    grad_accum: PositiveInt = 1
    grad_clip: PositiveFloat | None = None
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    # The frozen teachers' forwards alone under autocast in this precision ("same": as
    # mixed_precision). Teachers take no gradient, so this is inference in lower precision, as a
    # deployed teacher would run; the student's own arithmetic is untouched. On a CPU with AVX512-BF16
    # (one thread, batch 8 at 240x320, channels-last) the CamVid MGD teachers ran 2.0x (Lite2
    # DeepLabV3+) and 2.3x (Lite1) faster in bf16 than in fp32.
    teacher_precision: Literal["same", "fp16", "bf16"] = "same"
    # Student and teachers in channels-last memory format (as timm's --channels-last): the same
    # model, the convolutions laid out NHWC. On the CPU one CamVid v2 student step (lightplus_lite0,
    # batch 8 at 240x320, one thread) took 1.2-1.3 s against 1.6-2.1 s NCHW; sums run in another
    # order, so weights match an NCHW run's to float rounding, not bit for bit.
    channels_last: bool = True
    eval_every: int = Field(0, ge=0)  # 0: evaluate once, at the end
    checkpoint_every: int = Field(0, ge=0)  # 0: at each evaluation
    log_every: PositiveInt = 10
    seed: int = 0
    deterministic: bool = False
    nan_policy: Literal["stop", "skip"] = "stop"
    max_skipped: int = Field(10, ge=0)  # with nan_policy=skip, stop after this many bad steps
    keep_checkpoints: PositiveInt = 1  # the newest k complete checkpoints stay; older ones are deleted
    # Experiment trackers through Accelerate (losses, lr and eval metrics; the resolved recipe as config)
    log_with: list[Literal["tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive"]] = Field(default_factory=list)


class TeacherCacheSpec(Strict):
    """Serve the named teachers' outputs from a disk cache built once per training image
    (distill.engine.cache) instead of running them every step. The folder is shared by every run
    distilled from the same teacher file, so it defaults to `cache/` in the working directory."""

    teachers: list[str] = Field(default_factory=lambda: ["main"], min_length=1)  # names in the recipe's teachers:
    dir: str = "cache"
    topk: PositiveInt | None = None  # keep the k largest logits per pixel; None: all
    dtype: Literal["float16", "bfloat16", "float32"] = "float16"
    # The cache holds outputs on un-jittered images: with data.photometric true, `approximate` serves
    # them for jittered samples anyway; `refuse` makes that an error.
    photometric: Literal["refuse", "approximate"] = "refuse"


class LossSpec(BaseModel):
    """A loss by registry name; its own parameters are checked against its signature at load.

    `view` and `teacher` say which view of the batch and which named teacher a one-view,
    one-teacher loss reads (the same loss can so be applied to a labeled and a mixed view)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    name: str
    weight: float | None = Field(None, ge=0)  # None: the loss's default weight (methods.md)
    view: str = "labeled"
    teacher: str = "main"

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TransformSpec(BaseModel):
    """A registered batch transform (distill.batch) that adds views; parameters checked like a loss's."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    name: str

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TrainTeacherStageSpec(Strict):
    """Train the named teacher from its card's `train:` block when its model file is missing."""

    name: Literal["train_teacher"]
    teacher: str = "main"  # a name in the recipe's teachers:


class PruneStageSpec(Strict):
    """Prune the student's channels as the recipe's `prune:` block says."""

    name: Literal["prune"]


class DistillStageSpec(Strict):
    """Train the student with the recipe's losses; the run's model file (the last stage)."""

    name: Literal["distill"]


class QuantizeStageSpec(Strict):
    """int8 after training: PTQ of the run's student, and QAT under distillation (the `quantize:` block)."""

    name: Literal["quantize"]


# One typed spec per registered stage (distill.stages), told apart by `name`.
StageSpec = Annotated[Union[TrainTeacherStageSpec, PruneStageSpec, DistillStageSpec, QuantizeStageSpec],
                      Field(discriminator="name")]


class QatSpec(Strict):
    """Quantization-aware fine-tuning: the student with fake-quantized weights and conv inputs
    (distill.export.qat), trained with the recipe's losses, then quantized like PTQ.

    `teacher: recipe` keeps the recipe's teachers (the fp32 teacher of a KD recipe); `student`
    puts the fp32 student itself, frozen, in place of the teacher named main, so a KD loss pulls the
    int8 student towards what it computed in float."""

    iterations: int = Field(0, ge=0)  # 0: PTQ only
    lr: PositiveFloat = 1e-4  # a fine-tune of a trained student: far below its training lr
    warmup_iters: int = Field(0, ge=0)
    teacher: Literal["recipe", "student"] = "recipe"


class QuantizeSpec(Strict):
    """Static int8 (QDQ) through onnxruntime after the student is trained (distill.export.quantize)."""

    method: Literal["minmax", "percentile", "entropy"] = "minmax"
    calibration_images: PositiveInt = 32  # training images, spread evenly over the split
    activations: Literal["uint8", "int8"] = "uint8"
    reduce_range: bool | Literal["auto"] = "auto"  # auto: 7-bit weights unless this CPU has VNNI (export.cpu_features)
    keep_fp32: list[str] = Field(default_factory=list)  # node names of the fp32 graph
    auto_keep_fp32: int = Field(0, ge=0)  # also keep the k most sensitive Conv nodes in fp32
    size: Size | None = None  # graph input (H, W); default data.eval_size, else 360x480
    latency_repeats: int = Field(20, ge=0)  # fp32 vs int8 ONNX timed side by side; 0: not timed
    qat: QatSpec = Field(default_factory=QatSpec)


class PruneSpec(Strict):
    """Structural (channel) pruning of the student with torch-pruning, before its training.

    `ratio` is the fraction of channels removed from every prunable layer group (or, with
    `global_pruning`, from the network as a whole, ranked across layers). With a target, pruning
    goes in `steps` equal increments up to `ratio` and stops at the first step that meets it.
    """

    ratio: float = Field(0.5, gt=0, lt=1)
    importance: Literal["magnitude", "taylor", "group_norm"] = "group_norm"
    global_pruning: bool = False
    ignore: list[str] = Field(default_factory=list)  # module names (and their children) kept whole
    steps: PositiveInt | None = None  # None: 1, or 10 with a target
    finetune_iterations: int = Field(0, ge=0)  # recipe-loss iterations after each step but the last
    target_latency_ratio: float | None = Field(None, gt=0, lt=1)  # batch-1 latency, pruned / unpruned
    target_gflops_ratio: float | None = Field(None, gt=0, lt=1)
    size: Size | None = None  # (H, W) for latency and GFLOPs; default data.eval_size, else the crop size
    taylor_batches: PositiveInt = 4  # training batches whose gradients rank channels (taylor)
    round_to: PositiveInt | None = 8  # keep channel counts multiples of this (vector units like them)

    @property
    def has_target(self) -> bool:
        return self.target_latency_ratio is not None or self.target_gflops_ratio is not None

    @property
    def step_count(self) -> int:
        return self.steps or (10 if self.has_target else 1)
