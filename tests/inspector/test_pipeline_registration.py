"""The config a line run records for its model: the same keys for the live model and a shadow."""

from __future__ import annotations

from types import SimpleNamespace

from inspector.line.demo import demo_model_path
from inspector.line.pipeline import Pipeline
from models.bundle import load_bundle


class _Recorder:
    """Stands in for the ledger: keeps what ``ensure_model_version`` was given."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def ensure_model_version(self, sha256: str, name: str, config: dict, metrics: dict) -> int:
        self.calls.append((sha256, name, config, metrics))
        return len(self.calls)


def test_a_model_is_registered_with_its_backbone_merge_classes_and_thresholds():
    meta = load_bundle(demo_model_path()).meta
    ledger = _Recorder()
    engine = SimpleNamespace(meta=meta, sha256="f" * 64)

    assert Pipeline._ensure_model_version(ledger, engine, "demo") == 1

    sha256, name, config, metrics = ledger.calls[0]
    assert (sha256, name) == ("f" * 64, "demo")
    assert config == {
        "backbone": meta.backbone.to_json(),
        "merge": meta.merge_mode,
        "gmacs_ratio": meta.gmacs_ratio,
        "classes": meta.classes,
        "normal_class": meta.normal_class,
        "thresholds": meta.thresholds,
    }
    assert metrics == dict(meta.provenance.get("metrics", {}))
