"""models layer: the network, its bundles and exports — torch and timm only (DESIGN §2).

The names below are what ``inspector/`` uses; import them from here. They load lazily
(:func:`__getattr__`), so ``import models`` stays as cheap as it was: ``inspector --help`` and the
headless line's start-up import only what they touch, and torch loads with the first name that needs
it. Submodules not listed stay importable for code inside ``models/`` and for tests.
"""

from __future__ import annotations

import importlib

# name -> the submodule that defines it
_EXPORTS: dict[str, str] = {
    # building and describing networks
    "BackboneSpec": "backbones",
    "resolve_backbone": "backbones",
    "token_side": "backbones",
    "cnn_of": "backbones",
    "InspectionNet": "network",
    "MERGE_MODES": "network",
    "NetOutput": "families.base",
    "MergeMap": "families.base",
    "image_importance": "families.base",
    "LTMMerge": "ltm",
    "convert": "convert",
    "apply_pretrained": "pretrained",
    "WeightsProvenance": "pretrained",
    "describe_schedule": "schedule",
    "fit_schedule": "schedule",
    "fit_token_budget": "schedule",
    "describe_movement": "merge_stats",
    "merge_movement": "merge_stats",
    "keep_defects_loss": "keep_defects",
    "batch_norms": "norm_stats",
    "recalibrate_norms": "norm_stats",
    # training objective and scores
    "InformationBottleneck": "ib_loss",
    "ib_weight": "ib_loss",
    "energy": "scoring",
    "softmax": "scoring",
    # bundles
    "Bundle": "bundle",
    "BundleMeta": "bundle",
    "META_FILE": "bundle",
    "WEIGHTS_FILE": "bundle",
    "REFERENCE_FILE": "bundle",
    "STAGING": "bundle",
    "absolute_path": "bundle",
    "bundle_target": "bundle",
    "load_bundle": "bundle",
    "meta_for": "bundle",
    "read_meta": "bundle",
    "save_bundle": "bundle",
    "split_seed": "bundle",
    "sweep_leftovers": "bundle",
    "work_prefix": "bundle",
    # preprocessing (the contract training and the line share)
    "Preprocessing": "preprocess",
    "NORMALIZE_MODES": "preprocess",
    "RESIZE_MODES": "preprocess",
    "preprocess": "preprocess",
    "map_on_image": "preprocess",
    "masks_on_grid": "preprocess",
    # cost and speed
    "count_gmacs": "flops",
    "count_params": "flops",
    "LatencyStats": "latency",
    "interleaved_rounds": "latency",
    "summarise": "latency",
    "torch_latency": "latency",
    # exports and runtimes
    "EXPORT_FORMAT": "onnx_export",
    "OnnxPredictor": "onnx_export",
    "export_onnx": "onnx_export",
    "cached_predictor": "onnx_export",
    "quantize_onnx": "quantize",
    "OpenVinoPredictor": "openvino_backend",
    "int8_unavailable": "openvino_backend",
    "ir_stamp": "openvino_backend",
    "quantize_openvino": "openvino_backend",
    "unavailable": "openvino_backend",
    # files: atomic writes, the JSON reader, verified caches
    "JSONTooDeep": "files",
    "atomic_write": "files",
    "atomic_write_text": "files",
    "default_mode": "files",
    "output_target": "files",
    "read_json": "files",
    "sha256_file": "files",
    "stamp_matches": "files",
    "verified_cache": "files",
    "write_stamp": "files",
    # errors
    "BundleError": "errors",
    "ModelError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"models.{module}"), name)
    globals()[name] = value  # the next access skips this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
