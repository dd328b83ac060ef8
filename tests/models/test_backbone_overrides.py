"""A model.json is untrusted: its backbone overrides are an allow-list with ranges (issue 13)."""

from __future__ import annotations

import pytest

from models.backbones import BackboneSpec, create_backbone
from models.errors import ModelError


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pretrained": True}, "'pretrained' is not allowed"),
        ({"pretrained_cfg_overlay": {"url": "http://127.0.0.1:1/x.pth"}}, "not allowed"),
        ({"checkpoint_path": "/etc/passwd"}, "not allowed"),
        ({"embed_dim": 65536}, "embed_dim=65536 must be an integer in 8..1024"),
        ({"depth": "4"}, "depth='4' must be an integer"),
        ({"conv_stem": 1}, "must be true or false"),
        ({"global_pool": "attn"}, "global_pool"),
        ({"cnn_stem": "resnet50"}, "cnn_stem"),
        ({"cnn_stem": "tf_efficientnet_lite0", "patch_size": 4}, "stride"),
        ({"cnn_stem": "tf_efficientnet_lite0", "patch_size": 16, "cnn_stages": 3}, "cnn_stages=3 needs"),
        ({"cnn_stem": "tf_efficientnet_lite0", "patch_size": 8, "cnn_stages": 4}, "at stride 8"),
        ({"patch_size": 16, "cnn_stages": 4}, "needs a cnn_stem"),
        ({"cnn_stem": "tf_efficientnet_lite0", "patch_size": 16, "cnn_stages": True}, "cnn_stages=True"),
    ],
)
def test_overrides_outside_the_allow_list_are_refused(overrides, message):
    with pytest.raises(ModelError, match=message):
        create_backbone(BackboneSpec("vit_tiny_patch16_224", 64, 1, overrides), 2)


def test_a_huge_model_is_refused_before_it_is_allocated():
    with pytest.raises(ModelError, match="M parameters"):
        create_backbone(BackboneSpec("vit_huge_patch14_224", 224, 3, {}), 2)


def test_img_size_must_fit_the_stem_stride():
    with pytest.raises(ModelError, match="multiple of the stem's stride 8"):
        create_backbone(BackboneSpec("vit_tiny_patch16_224", 100, 1, {"patch_size": 8, "conv_stem": True}), 2)
