"""Every registered loss honours the engine's contract (timm test_models.py style)."""

import inspect

import pytest
import torch

from distill.losses import LOSSES
from distill.outputs import TapInfo
from distill.recipe_checks import param_model as loss_param_model

# methods.md section 6 (and section 0 for the task loss)
DEFAULT_WEIGHTS = {"ce": 1.0, "kd": 1.0, "cwd": 3.0, "skd": 0.5, "ifvd": 200.0, "bpkd.edge": 50.0, "bpkd.body": 20.0}
DEFAULT_WEIGHTS.update({"mgd.pixel": 1.0, "mgd.image": 0.001, "mgd.region": 100.0})  # lambda_1, lambda_2 [C]
DEFAULT_WEIGHTS["lad.consistency"] = 5.0  # the dual-path distance of LAD's teacher training [C]


def test_the_registry_holds_the_specified_losses_with_their_weights():
    assert {name: cls.default_weight for name, cls in LOSSES.items()} == DEFAULT_WEIGHTS


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_is_finite_and_trains_the_student_only(name, pair_of, student_only_grad):
    torch.manual_seed(0)
    cls = LOSSES.get(name)
    loss = cls()
    loss.setup({"head": TapInfo(16, 4), "logits": TapInfo(5, 4)}, {"head": TapInfo(24, 4), "logits": TapInfo(5, 4)})
    s_logits = torch.randn(2, 5, 8, 8, requires_grad=True)
    s_head = torch.randn(2, 16, 8, 8, requires_grad=True)
    s_aux = torch.randn(2, 5, 4, 4, requires_grad=True)
    t_logits = torch.randn(2, 5, 8, 8, requires_grad=True)
    t_head = torch.randn(2, 24, 8, 8, requires_grad=True)
    labels = torch.randint(0, 5, (2, 32, 32))
    labels[:, :4] = 255
    pair = pair_of(s_logits, t_logits, labels, s_feats={"head": s_head, "aux_logits": s_aux}, t_feats={"head": t_head})
    if not cls.needs_teacher:
        pair.outputs.pop(("main", "labeled"))  # the engine skips the teacher forward for these
    extra = add_declared_views(loss, pair)
    assert set(loss.needs) <= {"logits", "head", "aux_logits"}
    student_only_grad(loss(pair), [s_logits, s_head, s_aux, *extra], [t_logits, t_head])


def add_declared_views(loss, pair) -> list[torch.Tensor]:
    """Student outputs (and batch views) for the other views a loss's reads() declares, as the
    engine would run them (LAD's second noised path); returns their tensors."""
    from distill.batch import View
    from distill.outputs import STUDENT, SegOutput

    added = []
    for read in loss.reads():
        if read.model == STUDENT and (STUDENT, read.view) not in pair.outputs:
            logits = torch.randn(2, 5, 8, 8, requires_grad=True)
            pair.outputs[(STUDENT, read.view)] = SegOutput(logits)
            labeled = pair.batch.view("labeled")
            pair.batch.views[read.view] = View(labeled.image, labeled.label)
            added.append(logits)
    return added


@pytest.mark.parametrize("name", list(LOSSES))
def test_parameters_are_typed_keywords_with_defaults(name):
    cls = LOSSES.get(name)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    for p in params:
        assert p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY), f"{name}: no *args/**kwargs ({p})"
        assert p.annotation is not p.empty and p.default is not p.empty, f"{name}.{p.name}"
    # the recipe loader builds a pydantic model from the signature: annotations must resolve
    defaults = loss_param_model(cls).model_validate({}).model_dump()
    assert defaults == {p.name: p.default for p in params}


@pytest.mark.parametrize("name", list(LOSSES))
def test_one_file_per_method_named_after_the_acronym(name):
    assert LOSSES.get(name).__module__ == f"distill.losses.{name.split('.')[0]}"


@pytest.mark.parametrize("name", ["cwd", "skd", "ifvd"])
def test_feature_losses_need_the_tap_they_read(name):
    assert LOSSES.get(name)(feature="layer3").needs == ("layer3",)
