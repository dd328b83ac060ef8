"""timm backbones the product supports, created by name for any input size and 1 or 3 channels.

No pretrained weights are fetched (the line machines have no hub access); every model is trained
from the station's images. Families are recognised by the timm module class, so custom configs of
a family (a narrow 8-block ViT, say) work through ``overrides``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import timm
from timm.layers import PatchEmbed
from timm.models.mobilevit import MobileVitBlock
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from models.errors import ModelError

DEFAULT_BACKBONE = "vit_tiny_patch16_224"

# Named configurations the CLI offers besides any timm model name. ``vit-cpu`` is the product's
# default: a narrow 8-block ViT with 8-pixel patches (a 14x14 token grid at 112 px) and a
# convolutional stem, small enough to train on a 2-core CPU and to ship (~1.7 M parameters,
# ~7 MB), with enough tokens for merging. ``vit-cpu-patch`` is the same with timm's plain patch
# embedding (BENCHMARKS.md shows why the stem is the default).
_VIT_CPU = {"patch_size": 8, "embed_dim": 128, "depth": 8, "num_heads": 4}
# How a ViT turns its tokens into one feature vector. ``max`` (per channel, over the patch tokens)
# is for stations whose defects cover a pixel or two of a large part (magnetic_tile's blowholes):
# the class token and the mean both dilute one bright token among 196 (BENCHMARKS.md, issue 3).
VIT_POOLS = ("token", "avg", "max", "avgmax")
BACKBONE_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "vit-cpu": ("vit_tiny_patch16_224", {**_VIT_CPU, "conv_stem": True}),
    "vit-cpu-patch": ("vit_tiny_patch16_224", dict(_VIT_CPU)),
    "vit-cpu-max": ("vit_tiny_patch16_224", {**_VIT_CPU, "conv_stem": True, "global_pool": "max"}),
    "vit-tiny": ("vit_tiny_patch16_224", {}),
    "mobilevit-xs": ("mobilevit_xs", {}),
    "mobilevit-xs-max": ("mobilevit_xs", {"global_pool": "max"}),
}


@dataclass(frozen=True)
class BackboneSpec:
    """What a bundle records to rebuild its backbone exactly."""

    name: str = DEFAULT_BACKBONE
    img_size: int = 224
    in_chans: int = 3
    overrides: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BackboneSpec:
        return cls(
            name=str(data["name"]),
            img_size=int(data["img_size"]),
            in_chans=int(data["in_chans"]),
            overrides=dict(data.get("overrides", {})),
        )


class ConvStemEmbed(PatchEmbed):
    """Patch embedding by a small strided-convolution stem instead of one large-kernel conv.

    Xiao et al. (NeurIPS 2021, "Early convolutions help transformers see better") show that this
    gives ViTs the locality prior they lack and makes them train far faster from scratch, which is
    exactly our situation: a few hundred station images, no pretrained weights, 2 CPU cores. The
    token grid and everything after it are unchanged, so merging works as on any ViT.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        patch = self.patch_size[0]
        stages = int(math.log2(patch))
        if self.patch_size[0] != self.patch_size[1] or 2**stages != patch or stages < 1:
            raise ModelError(f"a convolutional stem needs a square power-of-two patch, got {self.patch_size}")
        embed_dim = self.proj.out_channels
        channels, layers = self.proj.in_channels, []
        for stage in range(stages):
            width = max(16, embed_dim // 2 ** (stages - 1 - stage))
            conv = nn.Conv2d(channels, width, 3, 2, 1, bias=False)
            layers += [conv, nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            channels = width
        layers.append(nn.Conv2d(channels, embed_dim, 1))
        self.proj = nn.Sequential(*layers)


def resolve_backbone(name: str, img_size: int, in_chans: int) -> BackboneSpec:
    """A spec from a preset name (``vit-cpu``) or any timm model name."""
    timm_name, overrides = BACKBONE_PRESETS.get(name, (name, {}))
    return BackboneSpec(timm_name, img_size, in_chans, dict(overrides))


def family_of(model: nn.Module) -> str:
    """``vit`` or ``mobilevit``: the two layouts the merging code knows how to walk."""
    if isinstance(model, VisionTransformer):
        return "vit"
    if any(isinstance(m, MobileVitBlock) for m in model.modules()):
        return "mobilevit"
    raise ModelError(f"backbone {type(model).__name__} is not a ViT/DeiT or MobileViT model")


def create_backbone(spec: BackboneSpec, num_classes: int) -> nn.Module:
    """Build an untrained timm backbone from a spec, with a clear error for unknown names."""
    if spec.in_chans not in (1, 3):
        raise ModelError(f"in_chans must be 1 or 3, got {spec.in_chans}")
    if spec.img_size < 32:
        raise ModelError(f"img_size {spec.img_size} is too small (minimum 32)")
    if not timm.is_model(spec.name):
        raise ModelError(f"unknown backbone {spec.name!r} (not a timm model name)")
    kwargs: dict[str, Any] = dict(pretrained=False, num_classes=num_classes, in_chans=spec.in_chans)
    if spec.name.startswith(("vit_", "deit")):
        kwargs["img_size"] = spec.img_size
    kwargs.update(spec.overrides)
    if kwargs.pop("conv_stem", False):
        kwargs["embed_layer"] = ConvStemEmbed
    try:
        model = timm.create_model(spec.name, **kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ModelError(f"cannot build backbone {spec.name!r} with {spec.overrides}: {exc}") from exc
    family_of(model)
    if isinstance(model, VisionTransformer):
        if model.global_pool not in VIT_POOLS:
            raise ModelError(f"{spec.name}: global_pool {model.global_pool!r} is not supported")
        if not all(type(b) is Block for b in model.blocks):
            raise ModelError(f"{spec.name}: only plain timm ViT blocks can merge tokens")
    return model
