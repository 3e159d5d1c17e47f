"""Models built from cards, in registered families: CNN segmenters (timm encoder + head), tinyconv, vit (DToP),
and the teacher-only ensemble and onnx."""

from distill.models import ensemble, onnx_teacher, segmenter, tinyconv, vit  # noqa: F401  (registers the families)
from distill.models.base import MODELS, Segmenter
from distill.models.build import build_model, load_model_file, save_model, validate_card
from distill.models.heads import HEADS
from distill.models.segmenter import SegmentationModel

__all__ = ["HEADS", "MODELS", "SegmentationModel", "Segmenter", "build_model", "load_model_file", "save_model",
           "validate_card"]
