"""timm backbones the product supports, created by name for any input size and 1 or 3 channels.

Creating a backbone never fetches or reads weights: pretrained weights are applied afterwards by
:mod:`models.pretrained`, and a bundle's weights come only from its own safetensors file. Families
are recognised by the timm module class, so custom configs of a family (a narrow 8-block ViT, say)
work through ``overrides`` — an allow-list of the architecture parameters the product itself
writes, range-checked, because ``model.json`` may come from anywhere: passed to timm unfiltered it
could ask for a download (``pretrained``, ``pretrained_cfg_overlay``), a local checkpoint
(``checkpoint_path``) or a model that exhausts memory.

The **hybrid** backbones put a pretrained EfficientNet-Lite0 trunk (its convolution stages up to
stride 8 or 16) in place of a ViT's patch embedding: the transformer blocks above it — where LTM
merges — see ImageNet features instead of raw patches (the paper's own hybrid rows are MobileViT
and EfficientViT).
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

import timm
import torch
from timm.layers import PatchEmbed
from timm.models.efficientnet import EfficientNet
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


def _hybrid(lite: int, stages: int | None = None, **transformer: Any) -> tuple[str, dict[str, Any]]:
    """A hybrid preset: EfficientNet-Lite``lite``'s stages as the stem under a small ViT (4 blocks
    of width 128, 16 px tokens unless ``transformer`` says otherwise), pooled by the mean.
    ``stages``: cut the trunk after this many stages instead of the last one at the stride."""
    shape = {"patch_size": 16, "embed_dim": 128, "depth": 4, "num_heads": 4, **transformer}
    stem: dict[str, Any] = {"cnn_stem": f"tf_efficientnet_lite{lite}"}
    if stages is not None:
        stem["cnn_stages"] = stages
    return "vit_tiny_patch16_224", {**stem, **shape, "class_token": False, "global_pool": "avg"}


BACKBONE_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "vit-cpu": ("vit_tiny_patch16_224", {**_VIT_CPU, "conv_stem": True}),
    "vit-cpu-patch": ("vit_tiny_patch16_224", dict(_VIT_CPU)),
    "vit-cpu-max": ("vit_tiny_patch16_224", {**_VIT_CPU, "conv_stem": True, "global_pool": "max"}),
    "vit-tiny": ("vit_tiny_patch16_224", {}),
    "mobilevit-xs": ("mobilevit_xs", {}),
    "mobilevit-xs-max": ("mobilevit_xs", {"global_pool": "max"}),
    # ImageNet-pretrainable (``--pretrained imagenet-lite0``): the plain CNN a plant engineer would
    # fine-tune, and our hybrids — Lite0's stages up to stride 16 (or 8) as the stem, then
    # transformer blocks whose tokens LTM merges, pooled by the size-weighted mean (no class token).
    "lite0": ("tf_efficientnet_lite0", {}),
    "hybrid-s16": _hybrid(0),
    # The transformer's width/depth axis (issue 12 item 2): DeiT-Tiny's width over 6 blocks on the
    # same stem, 3.5x the transformer's parameters (BENCHMARKS.md, "Pretrained features").
    "hybrid-s16-wide": _hybrid(0, embed_dim=192, depth=6, num_heads=3),
    "hybrid-s8": _hybrid(0, patch_size=8),
    # Larger stems (issue 24 item 4): Lite1 (deeper) and Lite2 (deeper and wider), each alone — the
    # CNN a plant engineer might pick for larger inputs — and under hybrid-s16's transformer.
    **{f"lite{n}": (f"tf_efficientnet_lite{n}", {}) for n in (1, 2)},
    **{f"hybrid-l{n}-s16": _hybrid(n) for n in (1, 2)},
    # A cheaper stem for larger inputs (issue 24 item 4): Lite0 cut after its first stride-16 stage
    # (80 channels), without the three 112-channel blocks that cost a third of the stem's MACs, so
    # the same time buys more pixels (BENCHMARKS.md "A slimmer stem").
    "hybrid-s16-slim": _hybrid(0, stages=4),
}
# The convolution trunks a hybrid may use as its stem, and where to cut them: stride → the number
# of stages (of blocks.0…6) that reach that stride — the same for Lite0, Lite1 and Lite2.
CNN_STEMS = {f"tf_efficientnet_lite{n}": {8: 3, 16: 5} for n in (0, 1, 2)}
# Every cut that ends at a stride (``cnn_stages``): stage 3 (blocks.3) is the first at stride 16.
CNN_CUTS = {8: (3,), 16: (4, 5)}
# A bundle's backbone overrides: the names the product writes, each with its allowed values.
_INT_RANGES = {
    "patch_size": (1, 64),
    "embed_dim": (8, 1024),
    "depth": (1, 24),
    "num_heads": (1, 32),
    "cnn_stages": (1, 7),
}
_FLOAT_RANGES = {"mlp_ratio": (0.5, 8.0)}
_BOOLS = ("conv_stem", "class_token")
# Beyond this a model.json is asking for something no line PC runs (the largest product backbone
# has ~5 M parameters; DeiT-B has 86 M): refused before any memory is allocated.
MAX_PARAMS = 100_000_000


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
    """``vit`` or ``mobilevit`` (the layouts the merging code walks), or ``cnn`` (EfficientNet:
    no tokens to merge; the pretrained baseline a plant engineer would pick)."""
    if isinstance(model, VisionTransformer):
        return "vit"
    if any(isinstance(m, MobileVitBlock) for m in model.modules()):
        return "mobilevit"
    if isinstance(model, EfficientNet):
        return "cnn"
    raise ModelError(f"backbone {type(model).__name__} is not a ViT/DeiT, MobileViT or EfficientNet model")


def check_overrides(overrides: dict[str, Any]) -> None:
    """Refuse any override the product does not write itself, or a value out of its range."""
    for key, value in overrides.items():
        if key in _INT_RANGES:
            lo, hi = _INT_RANGES[key]
            ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
            if not ok:
                raise ModelError(f"backbone override {key}={value!r} must be an integer in {lo}..{hi}")
        elif key in _FLOAT_RANGES:
            lo, hi = _FLOAT_RANGES[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value <= hi:
                raise ModelError(f"backbone override {key}={value!r} must be a number in {lo}..{hi}")
        elif key in _BOOLS:
            if not isinstance(value, bool):
                raise ModelError(f"backbone override {key}={value!r} must be true or false")
        elif key == "global_pool":
            if value not in VIT_POOLS:
                raise ModelError(f"backbone override global_pool={value!r} must be one of {VIT_POOLS}")
        elif key == "cnn_stem":
            if value not in CNN_STEMS:
                raise ModelError(f"backbone override cnn_stem={value!r} must be one of {sorted(CNN_STEMS)}")
        else:
            raise ModelError(f"backbone override {key!r} is not allowed (the product never writes it)")
    if "cnn_stem" in overrides and overrides.get("patch_size", 16) not in CNN_STEMS[overrides["cnn_stem"]]:
        raise ModelError(
            f"a {overrides['cnn_stem']} stem cuts at stride {sorted(CNN_STEMS[overrides['cnn_stem']])}, "
            f"not {overrides.get('patch_size')}"
        )
    if "cnn_stages" in overrides:
        stride = overrides.get("patch_size", 16)
        if "cnn_stem" not in overrides or overrides["cnn_stages"] not in CNN_CUTS.get(stride, ()):
            raise ModelError(
                f"backbone override cnn_stages={overrides['cnn_stages']!r} needs a cnn_stem and one of "
                f"{CNN_CUTS.get(stride, ())} stages at stride {stride}"
            )


def cnn_trunk(arch: str, stages: int, in_chans: int) -> nn.Sequential:
    """The first ``stages`` stages of a timm EfficientNet, keyed as timm keys them (so its
    pretrained state dict loads into it unchanged, minus the later stages and the head)."""
    full = timm.create_model(arch, pretrained=False, in_chans=in_chans, num_classes=0)
    assert isinstance(full, EfficientNet)
    return nn.Sequential(
        OrderedDict(conv_stem=full.conv_stem, bn1=full.bn1, blocks=nn.Sequential(*full.blocks[:stages]))
    )


class CnnStemEmbed(PatchEmbed):
    """Patch embedding by a (pretrainable) convolution trunk cut at stride ``patch_size``, then a
    1×1 projection to the transformer's width: the hybrid's stem."""

    def __init__(
        self,
        *args: Any,
        cnn_arch: str = "tf_efficientnet_lite0",
        cnn_stages: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        stride = self.patch_size[0]
        stages = cnn_stages or CNN_STEMS[cnn_arch][stride]
        trunk = cnn_trunk(cnn_arch, stages, self.proj.in_channels)
        with torch.no_grad():
            channels = trunk(torch.zeros(1, self.proj.in_channels, stride * 2, stride * 2)).shape[1]
        self.proj = nn.Sequential(OrderedDict(cnn=trunk, proj=nn.Conv2d(channels, self.proj.out_channels, 1)))


def token_side(backbone: str) -> int:
    """The side in pixels of the tokens a preset's features are made of: a hybrid's stem stride
    (``hybrid-s8``: 8), else the 16 px of the stride-16 features the pretrained CNNs and hybrids
    work on (what the small-defect rule asks a defect to fill)."""
    overrides = BACKBONE_PRESETS.get(backbone, ("", {}))[1]
    return int(overrides.get("patch_size", 16)) if "cnn_stem" in overrides else 16


def cnn_arch(spec: BackboneSpec) -> str | None:
    """The timm EfficientNet a spec's pretrainable trunk is (the backbone itself or a hybrid's stem),
    so Lite2 weights are never poured into a Lite0 trunk whose shapes happen to overlap."""
    if spec.name in CNN_STEMS:
        return spec.name
    stem = spec.overrides.get("cnn_stem")
    return stem if isinstance(stem, str) else None


def cnn_of(model: nn.Module) -> nn.Module | None:
    """The pretrainable convolution trunk of a backbone: a hybrid's stem, a CNN itself, or None."""
    if isinstance(model, EfficientNet):
        return model
    embed = getattr(model, "patch_embed", None)
    if isinstance(embed, CnnStemEmbed):
        return embed.proj.cnn
    return None


def _build(name: str, kwargs: dict[str, Any]) -> nn.Module:
    try:
        return timm.create_model(name, **kwargs)
    except (TypeError, ValueError, AssertionError, KeyError, RuntimeError) as exc:
        raise ModelError(f"cannot build backbone {name!r}: {str(exc).splitlines()[0][:200]}") from exc


def create_backbone(spec: BackboneSpec, num_classes: int) -> nn.Module:
    """Build an untrained timm backbone from a spec, with a clear error for unknown names.

    The architecture is first built on the meta device (no memory) so that a spec asking for an
    absurd size is refused before anything is allocated.
    """
    if spec.in_chans not in (1, 3):
        raise ModelError(f"in_chans must be 1 or 3, got {spec.in_chans}")
    if not 32 <= spec.img_size <= 1024:
        raise ModelError(f"img_size {spec.img_size} is out of range (32..1024)")
    if not timm.is_model(spec.name):
        raise ModelError(f"unknown backbone {spec.name!r} (not a timm model name)")
    check_overrides(spec.overrides)
    kwargs: dict[str, Any] = dict(pretrained=False, num_classes=num_classes, in_chans=spec.in_chans)
    if spec.name.startswith(("vit_", "deit")):
        kwargs["img_size"] = spec.img_size
    kwargs.update(spec.overrides)
    if kwargs.pop("conv_stem", False):
        kwargs["embed_layer"] = ConvStemEmbed
    cnn = kwargs.pop("cnn_stem", None)
    stages = kwargs.pop("cnn_stages", None)
    if cnn is not None:
        kwargs["embed_layer"] = functools.partial(CnnStemEmbed, cnn_arch=cnn, cnn_stages=stages)
    patch = kwargs.get("patch_size")
    if (cnn is not None or kwargs.get("embed_layer") is ConvStemEmbed) and spec.img_size % patch:
        raise ModelError(f"img_size {spec.img_size} must be a multiple of the stem's stride {patch}")
    with torch.device("meta"):
        params = sum(p.numel() for p in _build(spec.name, kwargs).parameters())
    if params > MAX_PARAMS:
        raise ModelError(f"backbone {spec.name!r} would have {params / 1e6:.0f} M parameters (limit 100 M)")
    model = _build(spec.name, kwargs)
    family_of(model)
    if isinstance(model, VisionTransformer):
        if model.global_pool not in VIT_POOLS:
            raise ModelError(f"{spec.name}: global_pool {model.global_pool!r} is not supported")
        if not all(type(b) is Block for b in model.blocks):
            raise ModelError(f"{spec.name}: only plain timm ViT blocks can merge tokens")
    return model
