"""Models built from cards: timm encoders, registered heads, named feature taps."""

from distill.models.build import build_model, load_model_file, save_model, validate_card
from distill.models.heads import HEADS
from distill.models.segmenter import SegmentationModel

__all__ = ["HEADS", "SegmentationModel", "build_model", "load_model_file", "save_model", "validate_card"]
