"""One adapter per backbone family: how :class:`models.network.InspectionNet` walks a timm layout.

``family_for(backbone)`` picks the adapter; the network holds it and never branches on the family
itself. Every timm internal the product depends on (a private method, a copied forward) lives in
one of these modules, each named in its docstring and checked by ``tests/models/test_timm_internals.py``.
"""

from __future__ import annotations

from torch import nn

from models.backbones import CnnStemEmbed, family_of
from models.families.base import (
    Family,
    MergeMap,
    NetOutput,
    TokenState,
    finish_map,
    image_importance,
    merging_block,
)
from models.families.cnn import CnnFamily
from models.families.mobilevit import MobileViTFamily
from models.families.vit import HybridFamily, ViTFamily

FAMILIES: dict[str, Family] = {
    f.name: f for f in (ViTFamily(), HybridFamily(), MobileViTFamily(), CnnFamily())
}


def family_for(backbone: nn.Module) -> Family:
    """The adapter for a backbone built by :func:`models.backbones.create_backbone` (which refuses
    any other layout, with the same one-line :class:`~models.errors.ModelError`)."""
    layout = family_of(backbone)
    if layout == "vit" and isinstance(getattr(backbone, "patch_embed", None), CnnStemEmbed):
        return FAMILIES["hybrid"]
    return FAMILIES[layout]


__all__ = [
    "FAMILIES",
    "CnnFamily",
    "Family",
    "HybridFamily",
    "MergeMap",
    "MobileViTFamily",
    "NetOutput",
    "TokenState",
    "ViTFamily",
    "family_for",
    "finish_map",
    "image_importance",
    "merging_block",
]
