"""The timm internals the family adapters depend on still behave as the adapters assume.

``models/families`` calls timm's private ``VisionTransformer._pos_embed``, re-walks timm's ViT
``Block`` and ``Attention`` with merging inside, and copies ``ByobNet.forward`` and
``MobileVitBlock.forward``. pyproject.toml pins the timm range these were written against; when a
timm release changes any of them, one of these parity tests fails before a model silently computes
something else. Every comparison is on the unmerged network, where ours must equal timm's own.
"""

from __future__ import annotations

import pytest
import torch
from timm.models.mobilevit import MobileVitBlock
from torch import nn

from models.attention import attention_forward, unfused_attention
from models.backbones import BackboneSpec, resolve_backbone
from models.families import TokenState, merging_block
from models.families.mobilevit import _mobilevit_block
from models.network import InspectionNet

CASES = {
    "vit": (resolve_backbone("vit-cpu", 64, 1), "vit"),
    "vit-class-token": (
        BackboneSpec("vit_tiny_patch16_224", 64, 3, {"depth": 2, "embed_dim": 48, "num_heads": 2}),
        "vit",
    ),
    "hybrid": (resolve_backbone("hybrid-s16", 64, 3), "hybrid"),
    "mobilevit": (BackboneSpec("mobilevit_xxs", 96, 3), "mobilevit"),
    "cnn": (resolve_backbone("lite0", 64, 3), "cnn"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_adapter_forward_equals_timms_own(case):
    spec, family = CASES[case]
    net = InspectionNet(spec, 3, "none").eval()
    assert net.family == family
    images = torch.randn(2, spec.in_chans, spec.img_size, spec.img_size)
    with torch.no_grad():
        out = net.run(images)
        torch.testing.assert_close(out.logits, net.backbone(images))
        if family != "mobilevit":  # timm's ByobNet head pools inside; its features are checked via logits
            expected = net.backbone.forward_head(net.backbone.forward_features(images), pre_logits=True)
            torch.testing.assert_close(out.features, expected)


def test_pos_embed_is_what_forward_features_starts_with():
    """``_pos_embed`` is private: the adapter's use of it (after ``patch_embed``, before
    ``patch_drop``/``norm_pre``) must stay the start of timm's own ``forward_features``."""
    vit = InspectionNet(CASES["vit-class-token"][0], 3, "none").eval().backbone
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(images))))
        assert x.shape == (1, vit.num_prefix_tokens + 16, 48)
        torch.testing.assert_close(vit.norm(vit.blocks(x)), vit.forward_features(images))


@pytest.mark.parametrize("fused", [True, False])
def test_attention_forward_equals_timm_attention(fused):
    block = InspectionNet(CASES["vit-class-token"][0], 3, "none").eval().backbone.blocks[0]
    x = torch.randn(2, 17, 48)
    with torch.no_grad():
        if fused:
            got, _ = attention_forward(block.attn, x)
        else:
            with unfused_attention():
                got, _ = attention_forward(block.attn, x)
        torch.testing.assert_close(got, block.attn(x))


def test_merging_block_without_a_merge_equals_timm_block():
    block = InspectionNet(CASES["vit-class-token"][0], 3, "none").eval().backbone.blocks[1]
    x = torch.randn(2, 17, 48)
    with torch.no_grad():
        got = merging_block(block, nn.Identity(), x, TokenState(grid=(4, 4)), prefix=1)
        torch.testing.assert_close(got, block(x))


@pytest.mark.parametrize("size", [96, 100])  # 100: feature maps that the patch does not divide
def test_mobilevit_block_copy_equals_timm_block(size):
    net = InspectionNet(BackboneSpec("mobilevit_xxs", size, 3), 3, "none").eval()
    blocks = [m for m in net.backbone.modules() if isinstance(m, MobileVitBlock)]
    seen: list[torch.Tensor] = []
    handle = blocks[-1].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        net.backbone(torch.randn(1, 3, size, size))
        handle.remove()
        x = seen[0]
        identity = [nn.Identity() for _ in blocks[-1].transformer]
        torch.testing.assert_close(_mobilevit_block(blocks[-1], identity, x, None), blocks[-1](x))


def test_no_per_call_state_stays_on_the_module():
    """Maps and tracking flags travel as values: nothing of one call is left for the next (or for
    another thread running the same net)."""
    net = InspectionNet(BackboneSpec("mobilevit_xxs", 96, 3), 2, "ltm").eval()
    before = set(vars(net))
    with torch.no_grad():
        net.run(torch.randn(1, 3, 96, 96), track_maps=True)
    assert set(vars(net)) == before
    assert not any(key.startswith("adapter") for key in net.state_dict())
