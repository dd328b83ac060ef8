"""``inspector models info / list``: what a bundle is, and what the registry holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from inspector.cli.common import HomeOption, console, user_errors


def models_info(
    model: Annotated[Path, typer.Argument(help="Model bundle folder.")], home: HomeOption = None
) -> None:
    """Print a bundle's architecture, merge schedule, classes, GMACs and parameters, and what this
    PC measured for it (its int8 gates, the backend --backend auto picked)."""
    from inspector.home import app_home
    from inspector.line.backends import measured_here
    from inspector.line.inference import InferenceEngine
    from inspector.training.finetune import describe_epoch_trace
    from models.bundle import load_bundle
    from models.flops import count_gmacs, count_params
    from models.merge_stats import describe_movement
    from models.schedule import describe_schedule

    with user_errors():
        bundle = load_bundle(model)
    net, meta = bundle.net, bundle.meta
    spec = meta.backbone
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("bundle", str(model))
    table.add_row("backbone", f"{spec.name} ({net.family}) {spec.img_size}px, {spec.in_chans} channel(s)")
    if spec.overrides:
        table.add_row("overrides", ", ".join(f"{k}={v}" for k, v in spec.overrides.items()))
    target = f", target gmacs_ratio {meta.gmacs_ratio}" if meta.gmacs_ratio else ""
    if meta.tokens:
        target = f", token budget {meta.tokens} ({meta.gmacs_ratio} of the unmerged GMACs)"
    table.add_row("merge", f"{meta.merge_mode}{target}")
    table.add_row(
        "classes", ", ".join(meta.classes) + (f"  (normal: {meta.normal_class})" if meta.normal_class else "")
    )
    prep = meta.preprocessing
    table.add_row(
        "input",
        f"{prep.size}x{prep.size}, {prep.resize}, "
        + ("each image standardised" if prep.normalize == "image" else f"mean {prep.mean}, std {prep.std}"),
    )
    weights = meta.provenance.get("weights")
    if isinstance(weights, dict) and weights.get("source"):
        digest = f", sha256 {str(weights['sha256'])[:12]}…" if weights.get("sha256") else ""
        table.add_row("started from", f"{weights['source']}{digest}")
    movement = meta.provenance.get("merge_movement")
    if isinstance(movement, list) and movement and all(isinstance(r, dict) for r in movement):
        try:
            table.add_row("merges vs pooling", describe_movement(movement) + " (validation images)")
        except (KeyError, TypeError, ValueError):
            pass  # a hand-edited record: show nothing rather than fail
    kept = describe_epoch_trace(meta.provenance.get("finetune_epochs"))
    if kept:
        table.add_row("fine-tune kept", kept)
    table.add_row("GMACs", f"{count_gmacs(net, spec.img_size, spec.in_chans):.4f} (batch 1)")
    table.add_row("params", f"{count_params(net):,}")
    if meta.thresholds:
        table.add_row("thresholds", ", ".join(f"{k}={v}" for k, v in meta.thresholds.items()))
    here = measured_here(InferenceEngine(bundle), app_home(home) / "cache" / "onnx")
    for name, text in here or [
        ("on this PC", "no int8 gate or auto choice yet (inspector models bench measures them)")
    ]:
        table.add_row(name, text)
    console.print(table)
    console.print("[bold]schedule[/]")
    console.print(describe_schedule(net), highlight=False)


def _registry(home: Path | None):  # imported lazily to keep `--help` fast
    from inspector.home import app_home
    from inspector.registry import Registry

    return Registry(app_home(home))


def models_list(
    home: HomeOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the versions as one JSON list (stations included).")
    ] = False,
) -> None:
    """Registered model versions, with metrics, GMACs, latency and the score on every station each
    was validated on; * marks the deployed one."""
    from inspector.stations import stations_text

    with user_errors():
        registry = _registry(home)
        versions, deployed = registry.with_stations(registry.versions()), registry.deployed()
    if as_json:
        print(json.dumps([_version_json(v, deployed) for v in versions], indent=2))
        return
    if not versions:
        console.print(f"no models registered in {registry.root}; add one with: inspector models deploy MODEL")
        return
    table = Table()
    for column in (
        "",
        "version",
        "created",
        "merge",
        "GMACs",
        "PyTorch ms",
        "val macro-F1",
        "stations",
        "classes",
        "source",
    ):
        table.add_column(column)
    for v in versions:
        f1 = v.metrics.get("after", v.metrics.get("val", {})).get("macro_f1")
        table.add_row(
            "*" if deployed and v.id == deployed.id else "",
            v.id,
            v.created[:16],
            v.merge + (f" @ {v.gmacs_ratio}" if v.gmacs_ratio else ""),
            f"{v.gmacs:.3f}",
            f"{v.latency_ms:.1f}",
            f"{f1:.3f}" if f1 is not None else "–",
            stations_text(v.station_scores()),
            ", ".join(v.classes),
            v.source,
        )
    console.print(table)


def _version_json(version, deployed) -> dict:
    """One version for ``models list --json``: the index's figures, its stations validated."""
    from dataclasses import asdict

    return {
        **asdict(version),
        "deployed": deployed is not None and version.id == deployed.id,
        "stations": [s.to_json() for s in version.station_scores()],
    }
