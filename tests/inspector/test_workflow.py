"""The engineer's loop on a tiny generated station: train → eval → finetune → deploy → rollback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data.errors import DataError
from data.image_stats import InputReference
from data.station import load_station
from inspector.errors import InspectorError
from inspector.line.drift import DriftWatch
from inspector.line.inference import InferenceEngine
from inspector.registry import Registry
from inspector.training.finetune import finetune_model
from inspector.training.hooks import QUIET as QUIET_HOOKS
from inspector.training.hooks import Hooks
from inspector.training.loop import Recipe
from inspector.training.train_station import train_model
from inspector.training.workflows import evaluate_model
from models.bundle import load_bundle

QUIET = {"progress": False, "log": lambda line: None}
pytestmark = pytest.mark.slow  # trains and fine-tunes real (tiny) models


@pytest.fixture(scope="module")
def tiny_station(tmp_path_factory):
    from conftest import make_station

    return make_station(tmp_path_factory.mktemp("data") / "station")


@pytest.fixture(scope="module")
def trained(tiny_station, tmp_path_factory):
    """One small LTM model shared by the tests of this module (training is the slow part)."""
    out = tmp_path_factory.mktemp("trained") / "model"
    return train_model(
        str(tiny_station),
        out,
        img_size=32,
        merge="ltm",
        gmacs_ratio=0.6,
        recipe=Recipe(epochs=4, batch_size=16, lr=2e-3, warmup_epochs=1),
        hooks=QUIET_HOOKS,
    )


def test_round_trip(trained, tiny_station, tmp_path):
    bundle = load_bundle(trained.bundle)
    assert bundle.meta.merge_mode == "ltm" and any(bundle.meta.schedule)
    assert bundle.meta.normal_class == "ok"
    assert 0 < bundle.meta.thresholds["unsure_below"] <= 1
    assert bundle.meta.provenance["data_fingerprint"] and len(bundle.meta.provenance["history"]) == 4
    # the drift watch's reference: the training images' statistics, and validation's mean confidence
    reference = InputReference.from_json(bundle.meta.provenance["input_reference"])
    assert reference.source == "training" and reference.side == 32
    assert reference.count == bundle.meta.provenance["train_images"]
    assert 0 < bundle.meta.thresholds["val_mean_confidence"] <= 1
    watch = DriftWatch(InferenceEngine(bundle))
    assert watch.inputs.describe() == f"against the training set ({reference.count} images)"

    report_path = tmp_path / "eval" / "report.json"
    report = evaluate_model(trained.bundle, str(tiny_station), json_path=report_path, latency_runs=5, **QUIET)
    saved = json.loads(report_path.read_text())
    assert saved["macro_f1"] == report["macro_f1"] and saved["confusion"] == report["confusion"]
    for field in (
        "accuracy",
        "macro_f1",
        "per_class",
        "confusion",
        "classes",
        "n",
        "gmacs",
        "params",
        "latency_ms",
    ):
        assert field in saved
    assert {"p50", "p95"} <= set(saved["latency_ms"])
    assert report_path.with_suffix(".confusion.png").stat().st_size > 1000
    assert saved["n"] == sum(row["support"] for row in saved["per_class"].values())

    adapted = finetune_model(
        trained.bundle,
        str(tiny_station),
        tmp_path / "adapted",
        augment=["lighting"],
        recipe=Recipe(epochs=2, batch_size=16, trainable="merge+norm", recalibrate_norms=True),
        hooks=QUIET_HOOKS,
    )
    assert adapted.before["n"] == adapted.after["n"] > 0
    meta = load_bundle(adapted.bundle).meta
    norms = meta.provenance["finetune_norm_statistics"]  # the stem's statistics were re-estimated first
    train_split = [s for s in load_station(str(tiny_station)).samples if s.split == "train"]
    assert norms["images"] == len(train_split) > 0 and norms["layers"] > 0
    assert meta.provenance["before"]["macro_f1"] == adapted.before["macro_f1"]
    assert meta.provenance["finetuned_from"] == str(trained.bundle)
    assert InputReference.from_json(meta.provenance["input_reference"]).count > 0
    trace = meta.provenance["finetune_epochs"]  # why this epoch, or the base, came back
    assert [e["val_macro_f1"] for e in trace["epochs"]] == [
        round(r.val_macro_f1, 4) for r in adapted.outcome.history
    ]
    assert len(trace["epochs"]) == 2 and trace["kept_epoch"] == adapted.outcome.best_epoch
    assert trace["n_val"] > 0 and 0 <= trace["base_val_macro_f1"] <= 1
    scores = {-1: trace["base_val_macro_f1"], **{e["epoch"]: e["val_macro_f1"] for e in trace["epochs"]}}
    assert scores[trace["kept_epoch"]] == max(scores.values())  # the kept weights scored highest

    registry = Registry(tmp_path / "home")
    first = registry.deploy(str(trained.bundle))
    second = registry.deploy(str(adapted.bundle))
    assert registry.deployed().id == second.id != first.id
    assert registry.rollback().id == first.id
    assert registry.deployed().id == first.id
    with pytest.raises(InspectorError, match="nothing to roll back"):
        registry.rollback()
    assert [v.id for v in registry.versions()] == ["v1", "v2"]
    assert load_bundle(registry.path_of("v2")).meta.provenance["after"]


def test_eval_is_identical_across_runs(trained, tiny_station):
    first = evaluate_model(trained.bundle, str(tiny_station), robustness=True, latency_runs=2, **QUIET)
    second = evaluate_model(trained.bundle, str(tiny_station), robustness=True, latency_runs=2, **QUIET)
    for key in ("accuracy", "macro_f1", "confusion", "per_class", "robustness"):
        assert first[key] == second[key]


def test_existing_output_is_refused_and_kept(trained, tiny_station):
    before = (trained.bundle / "model.safetensors").read_bytes()
    with pytest.raises(InspectorError, match="already exists"):
        train_model(
            str(tiny_station), trained.bundle, img_size=32, recipe=Recipe(epochs=1), hooks=QUIET_HOOKS
        )
    assert (trained.bundle / "model.safetensors").read_bytes() == before


def test_interrupted_training_resumes(tiny_station, tmp_path):
    out, steps = tmp_path / "m", iter(range(10_000))
    recipe = Recipe(epochs=3, batch_size=16, warmup_epochs=1)
    # 48 train images / 16 per batch = 3 steps an epoch: stop inside the second epoch
    with pytest.raises(InspectorError, match="stopped after 1 of 3 epochs; resume with --resume"):
        train_model(
            str(tiny_station),
            out,
            img_size=32,
            merge="none",
            recipe=recipe,
            hooks=Hooks(log=lambda line: None, progress=False, should_stop=lambda: next(steps) >= 5),
        )
    partial = out.with_name("m.partial")
    from inspector.training.checkpoint import read_checkpoint_meta

    assert read_checkpoint_meta(partial)["epoch"] == 0
    assert not out.exists(), "no bundle from an interrupted run"
    summary = train_model(
        str(tiny_station),
        out,
        img_size=32,
        merge="none",
        recipe=recipe,
        resume=True,
        hooks=QUIET_HOOKS,
    )
    assert [h.epoch for h in summary.outcome.history] == [0, 1, 2]
    assert out.is_dir() and not partial.exists()


def test_class_mismatch_is_refused(trained, tmp_path):
    from conftest import make_station

    other = make_station(tmp_path / "other", classes=("ok", "crack"))
    with pytest.raises(InspectorError, match="classes the model does not know: crack"):
        evaluate_model(trained.bundle, str(other), **QUIET)


def test_bad_dataset_is_a_data_error(trained, tmp_path):
    with pytest.raises(DataError):
        evaluate_model(trained.bundle, str(tmp_path / "missing"), **QUIET)


def test_information_bottleneck_option_trains(tiny_station, tmp_path):
    summary = train_model(
        str(tiny_station),
        tmp_path / "ib",
        img_size=32,
        merge="none",
        recipe=Recipe(epochs=2, batch_size=16, ib=True, ib_start=0.0),
        hooks=QUIET_HOOKS,
    )
    assert all(np.isfinite(h.loss) for h in summary.outcome.history)
    assert load_bundle(summary.bundle).meta.provenance["recipe"]["ib"] is True


def test_same_seed_same_model(tiny_station, tmp_path):
    import torch

    recipe = Recipe(epochs=1, batch_size=16)
    torch.manual_seed(123)  # whatever came before in the process must not matter
    first = train_model(
        str(tiny_station), tmp_path / "a", img_size=32, merge="none", recipe=recipe, hooks=QUIET_HOOKS
    )
    torch.randn(10)
    second = train_model(
        str(tiny_station), tmp_path / "b", img_size=32, merge="none", recipe=recipe, hooks=QUIET_HOOKS
    )
    a, b = load_bundle(first.bundle).net.state_dict(), load_bundle(second.bundle).net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_max_pooling_and_image_normalisation_are_kept_in_the_bundle(tiny_station, tmp_path):
    summary = train_model(
        str(tiny_station),
        tmp_path / "max",
        img_size=32,
        backbone="vit-cpu-max",
        normalize="image",
        merge="ltm",
        recipe=Recipe(epochs=1, batch_size=16),
        hooks=QUIET_HOOKS,
    )
    bundle = load_bundle(summary.bundle)
    assert bundle.meta.preprocessing.normalize == "image"
    assert bundle.net.backbone.global_pool == "max"
    report = evaluate_model(summary.bundle, str(tiny_station), **QUIET)
    assert 0.0 <= report["macro_f1"] <= 1.0


@pytest.mark.parametrize(("mask", "ltm_start"), [("pooling", "scratch"), ("content", "convert")])
def test_the_chosen_ltm_mask_is_the_one_trained_and_saved(tiny_station, tmp_path, mask, ltm_start):
    """``--mask`` reached neither the network nor the bundle: every model trained with v1."""
    summary = train_model(
        str(tiny_station),
        tmp_path / mask,
        img_size=32,
        merge="ltm",
        mask=mask,
        ltm_start=ltm_start,
        recipe=Recipe(epochs=2, batch_size=16),
        hooks=QUIET_HOOKS,
    )
    bundle = load_bundle(summary.bundle)
    assert bundle.meta.mask == mask and bundle.net.mask == mask
    assert {row["mask"] for row in bundle.meta.provenance["merge_movement"]} == {mask}


def test_default_ltm_mask_is_content(trained):
    assert load_bundle(trained.bundle).meta.mask == "content"


def test_unknown_normalisation_is_refused_before_anything_is_written(tiny_station, tmp_path):
    with pytest.raises(InspectorError, match="--normalize"):
        train_model(str(tiny_station), tmp_path / "n", img_size=32, normalize="histogram", hooks=QUIET_HOOKS)
    assert not list(tmp_path.iterdir())


def test_the_default_fine_tune_trains_what_recovered_most_for_the_bases_kind(trained, tiny_station, tmp_path):
    """ "auto" is resolved from the bundle before training and recorded as what ran: a model trained
    from scratch adapts merge+head, one that started from pretrained weights the whole network."""
    from dataclasses import replace

    from inspector.training.defaults import pretrained_base
    from inspector.training.finetune import FINETUNE_RECIPE

    assert FINETUNE_RECIPE.trainable == "auto"
    assert pretrained_base({"weights": {"source": "imagenet-lite0", "sha256": "f2"}})
    assert not pretrained_base({"weights": {"source": "scratch"}}) and not pretrained_base({})
    assert not pretrained_base({"weights": "imagenet-lite0"})  # a careless bundle: no guess
    lines: list[str] = []
    adapted = finetune_model(
        trained.bundle,
        str(tiny_station),
        tmp_path / "adapted",
        recipe=replace(FINETUNE_RECIPE, epochs=1, batch_size=16),
        hooks=Hooks(log=lines.append, progress=False),
    )
    assert load_bundle(adapted.bundle).meta.provenance["finetune_recipe"]["trainable"] == "merge+head"
    assert "trains merge+head (the default for a from-scratch base)" in lines


def test_a_pretrained_run_picks_its_geometry_from_the_station_and_keeps_a_token_budget(tmp_path):
    """Wide parts larger than the default input: letterboxed at native scale when asked to pick
    (``--resize auto``), with LTM's token budget in place of the GMACs ratio; eval and the line's
    engine feed the model the same way."""
    import cv2

    rng = np.random.default_rng(0)
    for label, mark in (("ok", 0), ("spot", 230)):
        folder = tmp_path / "wide" / label
        folder.mkdir(parents=True)
        for i in range(10):
            image = rng.normal(120, 10, (150, 300)).clip(0, 255).astype(np.uint8)
            if mark:
                cv2.circle(image, (int(rng.integers(20, 280)), int(rng.integers(20, 130))), 6, mark, -1)
            cv2.imwrite(str(folder / f"{label}{i}.png"), image)
    said: list[str] = []
    summary = train_model(
        str(tmp_path / "wide"),
        tmp_path / "m",
        backbone="hybrid-s16",
        img_size=None,
        resize=None,
        gmacs_ratio=None,
        tokens=100,
        pretrained="imagenet-lite0",
        home=tmp_path / "home",
        recipe=Recipe(epochs=1, batch_size=8),
        hooks=Hooks(log=said.append, progress=False),
    )
    meta = load_bundle(summary.bundle).meta
    assert (meta.preprocessing.size, meta.preprocessing.resize) == (304, "letterbox")
    assert meta.tokens == 100 and meta.schedule[0] == [10, 10]
    assert any("picked from the station" in line and "letterboxed" in line for line in said), said
    assert any(line.startswith("token budget 100: block 0: LTM -> 10x10") for line in said), said
    report = evaluate_model(summary.bundle, str(tmp_path / "wide"), split="all", latency_runs=2, **QUIET)
    assert report["n"] == 20
    engine = InferenceEngine(load_bundle(summary.bundle))
    out = engine.infer([np.full((150, 300), 120, np.uint8)], track_maps=True)
    assert out.maps[0].shape[1] == 2 * out.maps[0].shape[0]  # the map lies on the part, not the padding
