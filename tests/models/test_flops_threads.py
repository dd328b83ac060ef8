"""FLOP counting is per thread: the app counts GMACs in a worker while the line infers in another."""

from __future__ import annotations

import threading

import torch

from models.attention import fused_attention_enabled, unfused_attention
from models.backbones import BackboneSpec
from models.flops import count_gmacs
from models.network import InspectionNet


def test_a_count_in_one_thread_leaves_another_threads_inference_fused(monkeypatch):
    spec = BackboneSpec("vit_tiny_patch16_224", 64, 3)
    counted = InspectionNet(spec, 2, "ltm").eval()
    line = InspectionNet(spec, 2, "ltm").eval()
    alone = count_gmacs(counted, 64, 3)

    inside, release, seen = threading.Event(), threading.Event(), {}

    def count_in_a_worker() -> None:
        with unfused_attention():  # a count in progress, held open while the other thread infers
            seen["worker_fused"] = fused_attention_enabled()
            inside.set()
            release.wait(30)
            seen["gmacs"] = count_gmacs(counted, 64, 3)  # nested: restores in order
            seen["worker_fused_after_nested"] = fused_attention_enabled()
        seen["worker_fused_after"] = fused_attention_enabled()

    worker = threading.Thread(target=count_in_a_worker)
    worker.start()
    try:
        assert inside.wait(30)
        fused_calls = []
        real = torch.nn.functional.scaled_dot_product_attention

        def spy(*args, **kwargs):
            fused_calls.append(threading.get_ident())
            return real(*args, **kwargs)

        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
        assert fused_attention_enabled()
        with torch.no_grad():
            line(torch.rand(1, 3, 64, 64))
        assert fused_calls and set(fused_calls) == {threading.get_ident()}
    finally:
        release.set()
        worker.join(60)
    assert seen["worker_fused"] is False
    assert seen["worker_fused_after_nested"] is False
    assert seen["worker_fused_after"] is True
    assert seen["gmacs"] == alone
    assert fused_attention_enabled()
