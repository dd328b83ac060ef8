"""The suite's plan and its run: one step per base training, variant and speed measurement,
each skipped when its cached result is there, with an ETA from the steps done in this process."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from benchmarks.suite.cache import make_synthetic_station, read_json, write_json
from benchmarks.suite.profiles import (
    PROFILES,
    ROOT,
    SPLIT_SEED,
    SYNTHETIC,
    Variant,
    register_presets,
    variants,
)
from benchmarks.suite.report import write_report
from benchmarks.suite.speed import measure_speed
from benchmarks.training_suite import data_source
from data.loading import LoadedImages, guess_channels
from data.station import Station, load_station
from inspector.training.finetune import FINETUNE_RECIPE, finetune_model
from inspector.training.hooks import Hooks
from inspector.training.loop import Recipe
from inspector.training.train_station import train_model
from inspector.training.workflows import evaluate_loaded, load_split
from models.backbones import resolve_backbone
from models.bundle import load_bundle, save_bundle
from models.convert import convert
from models.errors import ScheduleError
from models.flops import count_gmacs, count_params
from models.network import InspectionNet
from models.schedule import fit_schedule


@dataclass
class Step:
    dataset: str
    backbone: str
    seed: int | None
    name: str  # "base", a variant key, or "speed"
    weight: float  # epochs it trains (for the ETA)
    run: Callable[[], str | None]  # does the work; returns a short note
    done: Callable[[], bool]


class Suite:
    def __init__(
        self,
        profile: str,
        out: Path = ROOT / "benchmarks",
        datasets: list[str] | None = None,
        backbones: list[str] | None = None,
        seeds: list[int] | None = None,
        log: Callable[[str], None] = print,
        measure: bool = True,
    ) -> None:
        register_presets()
        self.name = profile
        self.profile = PROFILES[profile]
        self.runs = out / "runs" / "suite" / profile
        self.results = out / "results"
        self.datasets = datasets or list(self.profile.datasets)
        self.backbones = backbones or list(self.profile.backbones)
        self.seeds = list(self.profile.seeds) if seeds is None else seeds
        for value, known, what in (
            (self.datasets, self.profile.datasets, "dataset"),
            (self.backbones, self.profile.backbones, "backbone"),
        ):
            unknown = sorted(set(value) - set(known))
            if unknown:
                raise SystemExit(f"unknown {what}(s) for profile {profile}: {', '.join(unknown)}")
        self.log = log
        self.measure = measure  # False: train only, time later in one quiet run (chained sittings)
        self._stations: dict[str, Station] = {}
        self._tests: dict[str, LoadedImages] = {}
        self.executed: list[str] = []  # steps that did work in this process (not cached)

    # -- data
    def station(self, dataset: str) -> Station:
        if dataset not in self._stations:
            if dataset == SYNTHETIC:
                source: str | Path = make_synthetic_station(self.runs / "data" / SYNTHETIC)
            else:
                source = data_source(dataset)
            self._stations[dataset] = load_station(source, SPLIT_SEED)
        return self._stations[dataset]

    def channels(self, dataset: str) -> int:
        return guess_channels(self.station(dataset).split("train"))

    def test_images(self, dataset: str) -> LoadedImages:
        if dataset not in self._tests:
            self._tests[dataset] = load_split(
                self.station(dataset), "test", self.channels(dataset), None, False, lambda s: None, False
            )
        return self._tests[dataset]

    # -- layout
    def folder(self, dataset: str, backbone: str, seed: int) -> Path:
        return self.runs / dataset / backbone / f"seed{seed}"

    def reach(self, dataset: str, backbone: str) -> dict[str, str | None]:
        """Per merge arch ("ltm-0.6"): None when reachable, else why not (cached: fitting is slow)."""
        path = self.runs / "reach.json"
        cache = read_json(path) or {}
        spec = resolve_backbone(backbone, self.profile.img_size, self.channels(dataset))
        prefix = f"{backbone}/{spec.img_size}px/{spec.in_chans}ch"
        result, changed = {}, False
        for v in variants(self.profile, backbone, dataset):
            if v.mode == "none":
                continue
            key = f"{prefix}/{v.arch}"
            if key not in cache:
                torch.manual_seed(0)
                net = InspectionNet(spec, len(self.station(dataset).classes), v.mode)
                try:
                    fit_schedule(net, v.ratio, points=None if v.points is None else list(v.points))
                    cache[key] = None
                except ScheduleError as exc:
                    cache[key] = str(exc)
                changed = True
            result[v.arch] = cache[key]
        if changed:
            write_json(path, cache)
        write_json(self.runs / dataset / backbone / "reach.json", result)  # for --report
        return result

    # -- steps
    def plan(self) -> list[Step]:
        steps: list[Step] = []
        p = self.profile
        for dataset in self.datasets:
            for backbone in self.backbones:
                reach = self.reach(dataset, backbone)
                for seed in self.seeds:
                    where = self.folder(dataset, backbone, seed)
                    steps.append(
                        Step(
                            dataset,
                            backbone,
                            seed,
                            "base",
                            p.base_epochs,
                            lambda d=dataset, b=backbone, s=seed: self.train_base(d, b, s),
                            lambda w=where: (w / "base" / "model.json").is_file(),
                        )
                    )
                    for v in variants(p, backbone, dataset):
                        if v.mode != "none" and reach[v.arch]:
                            continue
                        steps.append(
                            Step(
                                dataset,
                                backbone,
                                seed,
                                v.key,
                                p.extra_epochs if v.train else 0.1,
                                lambda d=dataset, b=backbone, s=seed, v=v: self.make_variant(d, b, s, v),
                                lambda w=where, v=v: (w / f"{v.key}.json").is_file(),
                            )
                        )
        for backbone in self.backbones if self.measure else ():
            steps.append(
                Step(
                    "*",
                    backbone,
                    None,
                    "speed",
                    0.0,
                    lambda b=backbone: self.speed(b),
                    lambda b=backbone: self.speed_current(b),
                )
            )
        return steps

    def run(self) -> dict[str, Any]:
        steps = self.plan()
        began = time.perf_counter()
        rate: dict[str, tuple[float, float]] = {}  # backbone -> (seconds, weight) of steps run here
        pending = [s for s in steps if not s.done()]
        self.log(
            f"suite {self.name}: {len(steps)} steps, {len(steps) - len(pending)} cached, "
            f"{len(pending)} to do -> {self.runs}"
        )
        for number, step in enumerate(steps, 1):
            title = f"[{number}/{len(steps)}] {step.dataset} {step.backbone} " + (
                f"seed {step.seed} {step.name}" if step.seed is not None else step.name
            )
            if step.done():
                self.log(f"{title}: cached")
                continue
            tic = time.perf_counter()
            note = step.run()
            spent = time.perf_counter() - tic
            self.executed.append(f"{step.dataset}/{step.backbone}/{step.seed}/{step.name}")
            seconds, weight = rate.get(step.backbone, (0.0, 0.0))
            rate[step.backbone] = (seconds + spent, weight + step.weight)
            left = [s for s in steps[number:] if not s.done()]
            self.log(
                f"{title}: {note or 'done'} in {spent / 60:.1f} min; {_eta(left, rate)} left "
                f"(elapsed {(time.perf_counter() - began) / 60:.1f} min)"
            )
        return self.report()

    def train_base(self, dataset: str, backbone: str, seed: int) -> str:
        out = self.folder(dataset, backbone, seed) / "base"
        partial = out.with_name("base.partial")
        summary = train_model(
            self.station(dataset),
            out,
            backbone=backbone,
            merge="none",
            img_size=self.profile.img_size,
            recipe=Recipe(epochs=self.profile.base_epochs, seed=seed),
            resume=(partial / "checkpoint.safetensors").is_file(),
            hooks=Hooks(log=_prefixed(self.log, f"{dataset}/{backbone}/seed{seed}/base"), progress=False),
        )
        return f"val macro-F1 {summary.outcome.best_val['macro_f1']:.3f}"

    def make_variant(self, dataset: str, backbone: str, seed: int, v: Variant) -> str:
        where = self.folder(dataset, backbone, seed)
        bundle = where / v.key
        tag = f"{dataset}/{backbone}/seed{seed}/{v.key}"
        if not (bundle / "model.json").is_file():
            if v.mode == "none":
                start = where / "base"
            else:
                start = where / (f"tome-{v.ratio:g}-ots" if v.mode == "tome" else f"{v.arch}-start")
                if not (start / "model.json").is_file():
                    self.convert_base(where / "base", start, v.mode, v.ratio, v.points)
            if v.train:
                recipe = replace(
                    FINETUNE_RECIPE,
                    epochs=self.profile.extra_epochs,
                    trainable="all",
                    seed=seed,
                    ib=v.ib,
                    merge_lr_scale=v.merge_lr_scale,
                )
                finetune_model(
                    start,
                    self.station(dataset),
                    bundle,
                    augment=(),
                    recipe=recipe,
                    force=True,
                    hooks=Hooks(log=_prefixed(self.log, tag), progress=False),
                )
        record = self.evaluate(dataset, backbone, seed, v, bundle)
        write_json(where / f"{v.key}.json", record)
        return f"test macro-F1 {record['macro_f1']:.3f}, GMACs {record['gmacs']:.3f}"

    @staticmethod
    def convert_base(
        base: Path, out: Path, mode: str, ratio: float, points: tuple[int, ...] | None = None
    ) -> None:
        loaded = load_bundle(base)
        net, fit = convert(
            loaded.net, mode, ratio, rank=loaded.meta.rank, points=None if points is None else list(points)
        )
        provenance = dict(loaded.meta.provenance, converted_from=str(base), converted_ratio=fit.ratio)
        meta = replace(
            loaded.meta, merge_mode=mode, gmacs_ratio=ratio, schedule=net.schedule(), provenance=provenance
        )
        save_bundle(net, meta, out, overwrite=True)

    def evaluate(self, dataset: str, backbone: str, seed: int, v: Variant, path: Path) -> dict[str, Any]:
        bundle = load_bundle(path)
        report = evaluate_loaded(bundle, self.test_images(dataset))
        spec, prov = bundle.meta.backbone, bundle.meta.provenance
        return {
            "dataset": dataset,
            "backbone": backbone,
            "seed": seed,
            "variant": v.key,
            "method": v.method,
            "ratio": v.ratio,
            "arch": v.arch,
            "accuracy": report["accuracy"],
            "macro_f1": report["macro_f1"],
            "recall": {c: r["recall"] for c, r in report["per_class"].items()},
            "support": {c: r["support"] for c, r in report["per_class"].items()},
            "n": report["n"],
            "confusion": report["confusion"],
            "gmacs": count_gmacs(bundle.net, spec.img_size, spec.in_chans),
            "params": count_params(bundle.net),
            "schedule": bundle.meta.schedule,
            "epochs": {
                "base": self.profile.base_epochs,
                "extra": self.profile.extra_epochs if v.train else 0,
            },
            "train_seconds": round(
                float(prov.get("train_seconds", 0)) + float(prov.get("finetune_seconds", 0)), 1
            ),
            "img_size": spec.img_size,
            "in_chans": spec.in_chans,
        }

    # -- speed
    def speed_entries(self, backbone: str) -> list[tuple[str, str, Path, float]]:
        """(dataset, arch, bundle, GMACs) of every finished architecture of this backbone, any seed."""
        entries, records = [], self.records()
        for dataset in self.profile.datasets:
            mine = sorted(
                (r for r in records if r["dataset"] == dataset and r["backbone"] == backbone),
                key=lambda r: r["seed"],
            )
            for arch in dict.fromkeys(v.arch for v in variants(self.profile, backbone, dataset)):
                found = next((r for r in mine if r["arch"] == arch), None)
                if found is not None:
                    path = self.folder(dataset, backbone, found["seed"]) / found["variant"]
                    entries.append((dataset, arch, path, found["gmacs"]))
        return entries

    def speed_current(self, backbone: str) -> bool:
        cached = read_json(self.runs / "speed" / f"{backbone}.json")
        covers = sorted(f"{d}/{a}" for d, a, _, _ in self.speed_entries(backbone))
        return cached is not None and cached.get("covers") == covers

    def speed(self, backbone: str) -> str:
        entries = self.speed_entries(backbone)
        if not entries:
            return "nothing finished to measure"
        result = measure_speed(entries, self.profile, self.runs / "speed" / backbone, self.log)
        result["covers"] = sorted(f"{d}/{a}" for d, a, _, _ in entries)
        write_json(self.runs / "speed" / f"{backbone}.json", result)
        return f"{len(entries)} models, matmul peak {result['matmul_gflops']:.0f} GFLOP/s"

    # -- cache readers and the report
    def records(self) -> list[dict[str, Any]]:
        return [
            json.loads(path.read_text())
            for path in sorted(self.runs.glob("*/*/seed*/*.json"))
            if path.parent.parent.parent.name in self.profile.datasets
            and path.parent.parent.name in self.profile.backbones
        ]

    def report(self) -> dict[str, Any]:
        return write_report(self)


def _prefixed(log: Callable[[str], None], tag: str) -> Callable[[str], None]:
    return lambda line: log(f"    [{tag}] {line}")


def _eta(left: list[Step], rate: dict[str, tuple[float, float]]) -> str:
    """Remaining training weight x seconds per weight unit measured on this backbone (else any)."""
    seconds = sum(s for s, _ in rate.values())
    weight = sum(w for _, w in rate.values())
    overall = seconds / weight if weight else None
    total = 0.0
    for step in left:
        s, w = rate.get(step.backbone, (0.0, 0.0))
        per = s / w if w else overall
        if per is None:
            return "ETA unknown"
        total += per * step.weight
    return f"~{total / 60:.0f} min" if total >= 60 else f"~{total:.0f} s"
