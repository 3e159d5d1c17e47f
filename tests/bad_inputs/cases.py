"""The bad-input corpus as data: each case is a tiny project, one `distill` command line and the
one error line it must give.

Every case starts from the same project (PROJECT: a tiny student card, a teacher card, a
student-only recipe `tiny.yaml` and a distillation recipe `kd.yaml`), adds or replaces `files`,
and runs `distill *args` in it. test_corpus.py checks, for every case: exit code 2, exactly one
stderr line `distill: ...` that matches `expected` (file, field and what was expected), no
traceback, and no file created or changed in the project except those `allowed` matches.

A file's content is text, bytes, or an Artifact: a model file the test builds once per session
(a tiny student with the synthetic data set's classes, saved by distill, as a torch .pth, or
truncated).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from helpers import recipe, student_card, synthetic_data, teacher_card
from PIL import Image


@dataclass(frozen=True)
class Artifact:
    """A model file built by the test session: `model` (distill .safetensors, synthetic classes),
    `truncated` (its first 60 %), `pth` (its state dict through torch.save)."""

    kind: str


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    expected: str  # regex searched in the one stderr line, after "distill: "
    files: dict[str, str | bytes | Artifact] = field(default_factory=dict)
    heavy: bool = False  # builds a model or trains: kept to a handful
    allowed: str | None = None  # regex of project paths the command may create or change
    forbidden: tuple[str, ...] = ()  # paths that must not exist afterwards (with `allowed`)
    xfail: str | None = None


STUDENT = student_card()
TEACHER = teacher_card(checkpoint="ckpt/teacher.safetensors", train=False)
DATA = synthetic_data()
TINY = recipe("tiny", "{iterations: 2, log_every: 1}")
KD = recipe("tiny_kd", "{iterations: 2, log_every: 1}", teacher=True)
PROJECT = {"student.yaml": STUDENT, "teacher.yaml": TEACHER, "tiny.yaml": TINY, "kd.yaml": KD}
MODEL, TRUNCATED, PTH = Artifact("model"), Artifact("truncated"), Artifact("pth")
TEACHER_FILE = "ckpt/teacher.safetensors"


def png(values, mode: str = "L") -> bytes:
    """A PNG holding `values`: a label map (mode L) or an RGB image filled with them."""
    array = np.asarray(values, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def folder_data(mask=None, image_size=(20, 20), classes="road\ncar\n", prefix="fd") -> dict[str, bytes | str]:
    """A folder data set with one train and one val sample; `mask` overrides both label maps."""
    h, w = image_size
    mask = np.zeros((20, 20), dtype=np.uint8) if mask is None else np.asarray(mask, dtype=np.uint8)
    files: dict[str, bytes | str] = {f"{prefix}/classes.txt": classes}
    for split in ("train", "val"):
        files[f"{prefix}/images/{split}/s0.png"] = png(np.full((h, w, 3), 90), "RGB")
        files[f"{prefix}/masks/{split}/s0.png"] = png(mask)
    return files


def predictions(values=None) -> dict[str, bytes]:
    """A predictions folder for folder_data's val split (all zeros: a perfect score)."""
    return {"preds/s0.png": png(np.zeros((20, 20)) if values is None else values)}


def edit(old: str, new: str, text: str = TINY) -> str:
    """`text` (the tiny recipe by default) with its one occurrence of `old` replaced."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


def folder_recipe(root: str = "fd") -> str:
    return TINY.replace(DATA, f"{{name: folder, root: {root}, crop_size: [16, 16], batch_size: 1, workers: 0}}")


RUN = ("run", "tiny.yaml")
RUN_KD = ("run", "kd.yaml")
EVAL_FOLDER = ("eval", "--predictions", "preds", "--data", "folder", "--data-root", "fd")
DURING_TRAINING = r"runs(/tiny(/(log\.jsonl|recipe\.resolved\.yaml|checkpoints(/.*)?))?)?"
NO_RESULT = ("runs/tiny/student.safetensors", "runs/tiny/metrics.json")
EVIL_PICKLE = b"cposix\nmkdir\n(S'pwned'\ntR."  # a pickle that calls os.mkdir('pwned') when unpickled
RANDOM_BYTES = np.random.default_rng(0).bytes(512)  # written into the case's temp project, never committed
BINARY = b"\x7fELF\x02\x01\x01" + bytes(57)  # the start of an executable: NUL bytes
NOT_UTF8 = r"expected a UTF-8 text YAML file, got <"
CAFE = "description: caf\u00e9\n"  # \xe9 in Latin-1, not valid UTF-8
ROOT_HINT = (r"set data\.root in the recipe or as an override, e\.g\. distill run RECIPE data\.root=PATH, "
             r"or pass --data-root PATH to distill train/eval/compare/check, or use the DISTILL_DATA folder\)$")

CASES: list[Case] = [
    # -- recipe files: schema, YAML, inheritance --------------------------------------------------
    Case("unknown_top_level_key", RUN, r"^tiny\.yaml:2: descripton: expected a known field, got <unknown field 'descripton'> \(did you mean 'description'\?\)$",
         {"tiny.yaml": edit("name: tiny\n", "name: tiny\ndescripton: x\n")}),
    Case("unknown_train_key", RUN, r"^tiny\.yaml:6: train\.lrr: expected a known field.*did you mean 'lr'\?",
         {"tiny.yaml": edit("log_every", "lrr: 0.1, log_every")}),
    Case("unknown_data_key", RUN, r"^tiny\.yaml:3: data\.batchsize: expected a known field.*did you mean 'batch_size'\?",
         {"tiny.yaml": edit("batch_size: 4", "batchsize: 4")}),
    Case("wrong_type_integer", RUN, r"^tiny\.yaml:6: train\.iterations: expected an integer, got 'many'$",
         {"tiny.yaml": edit("iterations: 2", "iterations: many")}),
    Case("wrong_type_bool", RUN, r"^tiny\.yaml:3: data\.flip: expected true or false, got 'sometimes'$",
         {"tiny.yaml": edit("workers: 0", "workers: 0, flip: sometimes")}),
    Case("missing_required_train", RUN, r"^tiny\.yaml(:\d+)?: train: expected a value for this required field$",
         {"tiny.yaml": edit("train: {iterations: 2, log_every: 1}\n", "")}),
    Case("missing_required_iterations", RUN, r"^tiny\.yaml:6: train\.iterations: expected a value for this required field$",
         {"tiny.yaml": edit("iterations: 2, ", "")}),
    Case("missing_recipe_file", ("run", "nope.yaml"), r"^nope\.yaml: expected an existing recipe file, got <missing>$"),
    Case("bad_yaml_syntax", RUN, r"^tiny\.yaml:\d+: expected valid YAML, got <.+>$",
         {"tiny.yaml": edit("log_every: 1}", "log_every: 1")}),
    Case("yaml_python_tag_is_refused", RUN, r"^tiny\.yaml:1: expected valid YAML, got <could not determine a constructor for the tag 'tag:yaml\.org,2002:python/object/apply:os\.mkdir'>$",
         {"tiny.yaml": "!!python/object/apply:os.mkdir ['pwned']\n"}),
    Case("yaml_python_object_tag_is_refused", RUN, r"^tiny\.yaml:2: expected valid YAML, got <could not determine a constructor for the tag 'tag:yaml\.org,2002:python/object:argparse\.Namespace'>$",
         {"tiny.yaml": TINY.replace("name: tiny\n", "name: tiny\ndescription: !!python/object:argparse.Namespace {}\n")}),
    Case("top_level_not_a_mapping", RUN, r"^tiny\.yaml: expected a mapping of fields at the top level, got <list>$",
         {"tiny.yaml": "- name: tiny\n"}),
    Case("duplicate_key", RUN, r"^tiny\.yaml:7: train: expected each key once in a mapping.*line 6",
         {"tiny.yaml": TINY + "train: {iterations: 3}\n"}),
    Case("recipe_random_bytes", RUN, rf"^tiny\.yaml(:\d+)?: {NOT_UTF8}.+>",
         {"tiny.yaml": RANDOM_BYTES}),
    Case("recipe_binary_with_nul_bytes", RUN, rf"^tiny\.yaml: {NOT_UTF8}binary data: a NUL byte at offset 7>$",
         {"tiny.yaml": BINARY}),
    Case("recipe_latin1_text", RUN, rf"^tiny\.yaml:2: {NOT_UTF8}byte 0xe9, which is not UTF-8> \(save it as UTF-8\)$",
         {"tiny.yaml": edit("name: tiny\n", "name: tiny\n" + CAFE).encode("latin-1")}),
    Case("recipe_utf16_text", RUN, rf"^tiny\.yaml: {NOT_UTF8}UTF-16 text> \(save it as UTF-8\)$",
         {"tiny.yaml": TINY.encode("utf-16")}),
    Case("recipe_utf8_bom_is_read_with_its_lines", RUN, r"^tiny\.yaml:6: train\.iterations: expected an integer, got 'many'$",
         {"tiny.yaml": b"\xef\xbb\xbf" + edit("iterations: 2", "iterations: many").encode()}),
    Case("base_recipe_not_utf8", RUN, rf"^b\.yaml(:\d+)?: {NOT_UTF8}.+>",
         {"tiny.yaml": "base: b.yaml\n" + TINY, "b.yaml": RANDOM_BYTES}),
    Case("misspelt_required_key", RUN, r"^tiny\.yaml:6: trian: expected a known field, got <unknown field 'trian'> \(did you mean 'train'\?\)$",
         {"tiny.yaml": edit("train: {", "trian: {")}),
    Case("misspelt_required_nested_key", RUN, r"^tiny\.yaml:6: train\.iteratons: expected a known field, got <unknown field 'iteratons'> \(did you mean 'iterations'\?\)$",
         {"tiny.yaml": edit("iterations: 2", "iteratons: 2")}),
    Case("recipe_extends_itself", RUN, r"^tiny\.yaml: base: expected a recipe that does not extend itself, got <cycle tiny\.yaml -> tiny\.yaml>$",
         {"tiny.yaml": "base: tiny.yaml\n" + TINY}),
    Case("recipe_cycle_through_two_files", RUN, r"^tiny\.yaml: base: expected a recipe that does not extend itself, got <cycle tiny\.yaml -> b\.yaml -> tiny\.yaml>$",
         {"tiny.yaml": "base: b.yaml\n" + TINY, "b.yaml": "base: tiny.yaml\n"}),
    Case("base_file_missing", RUN, r"^tiny\.yaml:1: base: expected an existing recipe file, got 'gone\.yaml'$",
         {"tiny.yaml": "base: gone.yaml\n" + TINY}),
    # -- command-line overrides ---------------------------------------------------------------------
    Case("override_without_equals", RUN + ("train.iterations",), r"^command line: train\.iterations: expected an override like train\.iterations=100$"),
    Case("override_empty_key_part", RUN + ("train..lr=0.1",), r"^command line: train\.\.lr=0\.1: expected an override like"),
    Case("override_unknown_key", RUN + ("train.lrr=0.1",), r"^command line 'train\.lrr=0\.1': train\.lrr: expected a known field.*did you mean 'lr'\?"),
    Case("override_wrong_type", RUN + ("train.iterations=abc",), r"^command line 'train\.iterations=abc': train\.iterations: expected an integer, got 'abc'$"),
    # -- losses ---------------------------------------------------------------------------------------
    Case("unknown_loss", RUN, r"^tiny\.yaml:5: losses\[0\]\.name: expected a known loss name, got 'cee' \(did you mean 'ce'\?\)$",
         {"tiny.yaml": edit("{name: ce}", "{name: cee}")}),
    Case("unknown_loss_parameter", RUN_KD, r"^kd\.yaml:7: losses\[1\]\.taus: expected a known field.*did you mean 'tau'\?",
         {"kd.yaml": KD.replace("tau: 2.0", "taus: 2.0")}),
    Case("negative_weight", RUN, r"^tiny\.yaml:5: losses\[0\]\.weight: expected a number >= 0(\.0)?, got -1\.0$",
         {"tiny.yaml": edit("{name: ce}", "{name: ce, weight: -1.0}")}),
    Case("non_finite_weight", RUN, r"^tiny\.yaml:5: losses\[0\]\.weight: expected a finite number, got nan$",
         {"tiny.yaml": edit("{name: ce}", "{name: ce, weight: .nan}")}),
    Case("non_finite_learning_rate", RUN + ("train.lr=.inf",), r"^command line 'train\.lr=\.inf': train\.lr: expected a finite number, got inf$"),
    Case("teacher_loss_without_teacher", RUN, r"^tiny\.yaml:5: losses\[0\]\.name: expected a recipe with a teacher card for this loss, got 'kd'$",
         {"tiny.yaml": edit("{name: ce}", "{name: kd}")}),
    # -- model cards --------------------------------------------------------------------------------
    Case("missing_student_card", RUN, r"^tiny\.yaml:2: student: expected an existing model card, got 'nope\.yaml'$",
         {"tiny.yaml": edit("student.yaml", "nope.yaml")}),
    Case("unknown_card_key", RUN, r"^student\.yaml:4: head_chanels: expected a known field.*did you mean 'head_channels'\?",
         {"student.yaml": STUDENT.replace("head_channels", "head_chanels")}),
    Case("card_misspelt_required_key", RUN, r"^student\.yaml:2: arhc: expected a known field, got <unknown field 'arhc'> \(did you mean 'arch'\?\)$",
         {"student.yaml": STUDENT.replace("arch:", "arhc:")}),
    Case("card_random_bytes_without_nul", RUN, rf"^student\.yaml:\d+: {NOT_UTF8}byte 0x[0-9a-f]{{2}}, which is not UTF-8> \(save it as UTF-8\)$",
         {"student.yaml": RANDOM_BYTES.replace(b"\x00", b"")}),
    Case("card_latin1_text", RUN, rf"^student\.yaml:5: {NOT_UTF8}byte 0xe9, which is not UTF-8> \(save it as UTF-8\)$",
         {"student.yaml": (STUDENT + CAFE).encode("latin-1")}),
    Case("teacher_card_utf16_text", RUN_KD, rf"^teacher\.yaml: {NOT_UTF8}UTF-16 text> \(save it as UTF-8\)$",
         {"teacher.yaml": TEACHER.encode("utf-16")}),
    Case("train_card_binary", ("train", "student.yaml", "--data", "synthetic"), rf"^student\.yaml: {NOT_UTF8}binary data: a NUL byte at offset 7>$",
         {"student.yaml": BINARY}),
    Case("unknown_arch", RUN, r"^student\.yaml:2: arch: expected a known architecture name, got 'lrasp' \(did you mean 'lraspp'\?\)$",
         {"student.yaml": STUDENT.replace("arch: lraspp", "arch: lrasp")}),
    Case("unknown_backbone", RUN, r"^student\.yaml:3: backbone: expected a timm model name, got 'mobilenetv3_smal_100' \(did you mean 'mobilenetv3_small_\d+'\?\)$",
         {"student.yaml": STUDENT.replace("small_100", "smal_100")}),
    Case("missing_pretrained_file", RUN, r"^student\.yaml:5: pretrained: expected none, one of \['efficientnet-lite'\] or an existing \.safetensors file, got 'gone\.safetensors'$",
         {"student.yaml": STUDENT + "pretrained: gone.safetensors\n"}),
    Case("teacher_student_class_count_mismatch", RUN_KD, r"^student\.yaml: num_classes: expected 8 classes like the teacher \(teacher\.yaml\), got 5$",
         {"teacher.yaml": TEACHER + "num_classes: 8\n", "student.yaml": STUDENT + "num_classes: 5\n"}),
    Case("teacher_student_class_names_differ", RUN_KD, r"^student\.yaml: classes: expected the teacher's class names \['road', 'car'\], got \['road', 'cat'\]$",
         {"teacher.yaml": TEACHER + "classes: [road, car]\n", "student.yaml": STUDENT + "classes: [road, cat]\n"}),
    # -- teacher checkpoints ------------------------------------------------------------------------
    Case("missing_teacher_checkpoint", RUN_KD, r"^teacher\.yaml: checkpoint: expected an existing model file, or a train: block to make one, got 'ckpt/teacher\.safetensors'$"),
    Case("corrupt_teacher_checkpoint", RUN_KD, r"^ckpt/teacher\.safetensors: expected a valid safetensors file, got <corrupt: .+>$",
         {TEACHER_FILE: b"\x00" * 64}),
    Case("truncated_teacher_checkpoint", RUN_KD, r"^ckpt/teacher\.safetensors: expected a valid safetensors file, got <corrupt: .+>$",
         {TEACHER_FILE: TRUNCATED}),
    # -- data sets ------------------------------------------------------------------------------------
    Case("unknown_dataset", RUN, r"^tiny\.yaml:3: data\.name: expected a known data set name, got 'synthtic' \(did you mean 'synthetic'\?\)$",
         {"tiny.yaml": edit("name: synthetic", "name: synthtic")}),
    Case("unknown_data_option", RUN, r"^tiny\.yaml(:3)?: data\.options\.num_image: expected one of num_images, size, seed, got <unknown option 'num_image'> \(did you mean 'num_images'\?\)$",
         {"tiny.yaml": edit("num_images: 8", "num_image: 8")}),
    Case("impossible_crop_size_zero", RUN, r"^tiny\.yaml:3: data\.crop_size\[0\]: expected a number > 0, got 0$",
         {"tiny.yaml": edit("crop_size: [48, 64]", "crop_size: [0, 64]")}),
    Case("impossible_crop_size_one_side", RUN, r"^tiny\.yaml:3: data\.crop_size\[1\]: expected a value for this required field$",
         {"tiny.yaml": edit("crop_size: [48, 64]", "crop_size: [48]")}),
    Case("scale_range_inverted", RUN, r"^tiny\.yaml:3: data\.scale_range: expected \[low, high\] with low <= high, got \[2\.0, 1\.0\]$",
         {"tiny.yaml": edit("workers: 0", "workers: 0, scale_range: [2.0, 1.0]")}),
    Case("empty_labeled_subset", RUN, r"^tiny\.yaml:3: data\.labeled_fraction: expected a fraction in \(0, 1\], like 1/8 or 0\.125, got '0/8'$",
         {"tiny.yaml": edit("workers: 0", "workers: 0, labeled_fraction: 0/8")}),
    Case("data_root_does_not_exist", RUN, r"^gone: data\.root: expected the CamVid SegNet layout .*\(looked in gone, gone/CamVid\) .*" + ROOT_HINT,
         {"tiny.yaml": edit(DATA, "{name: camvid, root: gone}")}),
    Case("data_root_does_not_exist_eval", ("eval", "--predictions", "preds", "--data", "camvid", "--data-root", "gone"),
         r"^gone: data\.root: expected the CamVid SegNet layout .*\(looked in gone, gone/CamVid\) .*" + ROOT_HINT, predictions()),
    Case("folder_root_does_not_exist", RUN, r"^gone: data\.root: expected an existing folder holding images/<split>/",
         {"tiny.yaml": folder_recipe("gone")}),
    Case("empty_data_set", RUN, r"^fd/images/train: expected image files \(\*\.jpg, \*\.jpeg, \*\.png\), got <none found>$",
         {"tiny.yaml": folder_recipe(), "fd/classes.txt": "road\ncar\n", "fd/images/train/README": "no images here"}),
    Case("empty_list_file", RUN, r"^fd/train\.txt: expected at least one file stem, got <empty list>$",
         {"tiny.yaml": folder_recipe(), "fd/classes.txt": "road\ncar\n", "fd/train.txt": "# nothing\n"}),
    Case("list_entry_outside_root", RUN, r"^fd/train\.txt:1: expected a path inside fd/images, got '\.\./\.\./tiny\.yaml\.jpg'$",
         {"tiny.yaml": folder_recipe(), "fd/classes.txt": "road\ncar\n", "fd/train.txt": "../../tiny.yaml\n"}),
    Case("batch_larger_than_data_set", RUN + ("data.batch_size=16",), r"^tiny\.yaml: data\.batch_size: expected at most 8 \(the training images\), got 16$"),
    Case("mask_size_mismatch", EVAL_FOLDER, r"^fd/masks/val/s0\.png: mask size: expected 30x20 like the image s0\.png, got <20x20>$",
         {**folder_data(image_size=(20, 30)), **predictions()}),
    Case("mask_values_out_of_range", EVAL_FOLDER, r"^fd/masks/val/s0\.png: expected label values 0\.\.1 \(classes\.txt lists 2\) or 255, got <values \[7\]>$",
         {**folder_data(mask=np.full((20, 20), 7)), **predictions()}),
    # -- output folders -----------------------------------------------------------------------------
    Case("output_folder_exists", RUN, r"^runs/tiny: output folder: expected a new folder, or --resume / --overwrite, got <exists>$",
         {"runs/tiny/notes.txt": "an earlier run\n"}),
    Case("output_folder_under_a_file", RUN + ("--out-dir", "somefile/run"), r"^somefile/run: output folder: expected a writable folder, got <.+>$",
         {"somefile": "a regular file\n"}),
    Case("json_output_under_a_file", EVAL_FOLDER + ("--json", "somefile/m.json"), r"^somefile/m\.json: expected a writable file, got <.+>$",
         {**folder_data(), **predictions(), "somefile": "a regular file\n"}),
    # -- eval: model files and foreign checkpoints --------------------------------------------------
    Case("eval_missing_model", ("eval", "gone.safetensors"), r"^gone\.safetensors: expected an existing model file \(\.safetensors\), got <missing>$"),
    Case("eval_corrupt_model", ("eval", "bad.safetensors"), r"^bad\.safetensors: expected a valid safetensors file, got <corrupt: .+>$",
         {"bad.safetensors": b"not a safetensors file"}),
    Case("eval_truncated_model", ("eval", "m.safetensors"), r"^m\.safetensors: expected a valid safetensors file, got <corrupt: .+>$",
         {"m.safetensors": TRUNCATED}),
    Case("eval_pickle_without_allow_pickle", ("eval", "m.pth", "--card", "student.yaml"),
         r"^m\.pth: expected a \.safetensors model file.*--allow-pickle.*, got '\.pth'$", {"m.pth": PTH}),
    Case("eval_allow_pickle_without_card", ("eval", "m.pth", "--allow-pickle"),
         r"^command line: --card: expected a model card to build m\.pth's architecture", {"m.pth": PTH}),
    Case("eval_pickle_with_code_is_refused", ("eval", "evil.pth", "--allow-pickle", "--card", "student.yaml"),
         r"^evil\.pth: expected a torch state dict that loads with weights_only=True, got <.*posix\.mkdir.*>$",
         {"evil.pth": EVIL_PICKLE}),
    Case("eval_unknown_data_set", ("eval", "m.safetensors", "--data", "synthtic"),
         r"^command line: --data: expected a known data set name, got 'synthtic' \(did you mean 'synthetic'\?\)$",
         {"m.safetensors": MODEL}),
    Case("eval_unknown_split", ("eval", "m.safetensors", "--split", "valid"),
         r"^command line: --split: expected one of train, val, test, got 'valid'$", {"m.safetensors": MODEL}),
    Case("eval_model_on_other_classes", ("eval", "m.safetensors", "--data", "folder", "--data-root", "fd"),
         r"^m\.safetensors: classes: expected the classes of data set 'folder' \(2\), got \['sky', .*\]$",
         {"m.safetensors": MODEL, **folder_data()}),
    Case("eval_model_and_predictions", ("eval", "m.safetensors", "--predictions", "preds"),
         r"^command line: MODEL / --predictions: expected exactly one of a model file or --predictions DIR$"),
    Case("train_unknown_data_set", ("train", "student.yaml", "--data", "synthtic", "train.iterations=2"),
         r"^command line: --data: expected a known data set name, got 'synthtic' \(did you mean 'synthetic'\?\)$"),
    # -- errors found once models are built (before the run folder exists) ---------------------------
    Case("feature_tap_the_model_lacks", RUN_KD, r"^kd\.yaml: losses\[1\]: expected taps the student records \(stage1, .*\), got 'stage9'$",
         {"kd.yaml": KD.replace("{name: kd, tau: 2.0}", "{name: cwd, feature: stage9}"), TEACHER_FILE: MODEL}, heavy=True),
    Case("corrupt_pretrained_file", RUN, r"^bad\.safetensors: expected a valid safetensors file, got <.+>$",
         {"student.yaml": STUDENT + "pretrained: bad.safetensors\n", "bad.safetensors": b"\x00" * 16}, heavy=True),
    Case("card_class_count_differs_from_data", RUN, r"^student\.yaml: num_classes: expected 8 classes \(the data set's\), got 5$",
         {"student.yaml": STUDENT + "num_classes: 5\n"}, heavy=True),
    Case("resume_from_corrupt_checkpoint", RUN + ("--resume",),
         r"^runs/tiny/checkpoints/step_0000001: expected a complete checkpoint of this recipe, got <.+> \(delete it",
         {"runs/tiny/checkpoints/step_0000001/state.json": '{"step": 1}',
          "runs/tiny/checkpoints/step_0000001/model.safetensors": b"\x00" * 32},
         heavy=True, allowed=r"runs/tiny/(recipe\.resolved\.yaml|log\.jsonl)"),
    # -- errors during training: the run folder exists, but no result is written ---------------------
    Case("non_finite_loss", RUN + ("train.lr=1e30", "train.iterations=4", "train.log_every=100"),
         r"^runs/tiny: step \d: losses\.ce: expected a finite loss, got <nan> \((last good checkpoint|no checkpoint was written yet)",
         heavy=True, allowed=DURING_TRAINING, forbidden=NO_RESULT),
    Case("mask_values_out_of_range_in_a_worker", RUN + ("data.workers=1", "train.log_every=100"),
         r"^fd/masks/train/s0\.png: expected label values 0\.\.1 \(classes\.txt lists 2\) or 255, got <values \[7\]>$",
         {"tiny.yaml": folder_recipe(), **folder_data(mask=np.full((20, 20), 7))},
         heavy=True, allowed=DURING_TRAINING, forbidden=NO_RESULT),
]
