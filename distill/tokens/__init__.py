"""DToP's mechanism: a plain ViT whose confident tokens exit at auxiliary heads (methods.md section 4).

This package holds the token rule and the pruned forward only and imports nothing from
distill.models; the `vit` model family (distill.models.vit, card VitCard) wraps it, so importing
distill.models registers it without an import circle.
"""
