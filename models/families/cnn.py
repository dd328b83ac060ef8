"""The plain CNN (EfficientNet-Lite0): no tokens, so nothing to merge and no merge map.

Only timm's public ``forward_features`` / ``forward_head`` / ``classifier`` are used; the pooled
features come back beside the logits for the Information Bottleneck term.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.backbones import BackboneSpec
from models.families.base import Family, NetOutput


class CnnFamily(Family):
    name = "cnn"
    has_tokens = False

    def transformers(self, backbone: nn.Module) -> list[Sequence[nn.Module]]:
        return []

    def input_grids(self, backbone: nn.Module, spec: BackboneSpec) -> list[tuple[int, int]]:
        return []

    def run(
        self, backbone: nn.Module, mergers: nn.ModuleList, images: torch.Tensor, track_maps: bool
    ) -> NetOutput:
        features = backbone.forward_head(backbone.forward_features(images), pre_logits=True)
        return NetOutput(backbone.classifier(features), features)
