"""Model cards: a teacher or student described as data (teachers/*.yaml, students/*.yaml).

The card types of every model family, and `load_card`, live with the models they build
(distill.models.cards); this module is where the rest of the package and users import them from.
"""

from distill.models.cards import (
    CARDS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    BaseCard,
    CardTraining,
    CnnCard,
    InputSpec,
    ModelCard,
    TinyConvCard,
    VitCard,
    card_from_dict,
    card_type,
    check_card_names,
    load_card,
)

__all__ = ["CARDS", "IMAGENET_MEAN", "IMAGENET_STD", "BaseCard", "CardTraining", "CnnCard", "InputSpec", "ModelCard",
           "TinyConvCard", "VitCard", "card_from_dict", "card_type", "check_card_names", "load_card"]
