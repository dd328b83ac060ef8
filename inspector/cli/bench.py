"""``inspector models bench``: batch-1 latency of a bundle under each backend on this PC."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from inspector.cli.common import HomeOption, console, existing_folder, fail, progress, user_errors

# inspector.line.bench.BENCH_BACKENDS, then "all" (spelled here so that --help imports no torch).
BENCH_CHOICES = ("torch", "onnx", "int8", "openvino", "openvino-int8")


def _backends(values: list[str] | None) -> tuple[str, ...]:
    chosen: list[str] = []
    for value in values or ["all"]:
        for name in value.split(","):
            name = name.strip()
            if name == "all":
                chosen += [b for b in BENCH_CHOICES if b not in chosen]
            elif name in BENCH_CHOICES:
                chosen += [] if name in chosen else [name]
            else:
                raise fail(f"unknown backend {name!r} (choose from {', '.join(BENCH_CHOICES)}, all)")
    return tuple(chosen)


def models_bench(
    model: Annotated[Path, typer.Argument(help="Model bundle folder.")],
    backend: Annotated[
        list[str] | None,
        typer.Option(
            "--backend",
            "-b",
            help="torch, onnx, int8, openvino, openvino-int8 or all (repeat or comma-separate) \\[all].",
            show_default=False,
        ),
    ] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Inference threads per runtime.")] = 1,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write {model, threads, rows} here.", show_default=False)
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Station to calibrate the int8 graphs on and judge them by (quantized and gated again); "
            "default: the station the bundle was trained on, where it can be read.",
            show_default=False,
        ),
    ] = None,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Interleaved rounds.")] = 5,
    runs: Annotated[int, typer.Option("--runs", min=1, help="Timed calls per backend per round.")] = 20,
    auto: Annotated[
        bool, typer.Option("--auto", help="Also time the line's 'auto' candidates again and keep the pick.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Batch-1 latency p50/p95 per backend, interleaved in one process, and the int8 gates' verdicts."""
    chosen = _backends(backend)
    existing_folder(json_path)
    if not model.is_dir():
        raise fail(f"{model}: no such model bundle folder")
    from inspector.home import app_home
    from inspector.line.bench import bench

    with user_errors():
        result = bench(
            model,
            chosen,
            threads,
            app_home(home) / "cache" / "onnx",
            data=data,
            rounds=rounds,
            runs=runs,
            remeasure_auto=auto,
            log=progress,
        )
    table = Table(title=f"{model} — batch 1, {threads} thread(s), {rounds} interleaved rounds")
    for column in ("backend", "p50 ms", "p95 ms", "vs onnx"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    onnx = next((r["p50_ms"] for r in result.rows if r["backend"] == "onnx"), None)
    for row in result.rows:
        ratio = f"{row['p50_ms'] / onnx:.2f}x" if onnx else "–"
        table.add_row(row["backend"], f"{row['p50_ms']:.2f}", f"{row['p95_ms']:.2f}", ratio)
    console.print(table)
    for name, gate in result.gates.items():
        console.print(f"{name} gate: {gate.reason}", highlight=False)
    for name, why in result.skipped.items():
        progress(f"{name}: skipped ({why})")
    if result.auto:
        console.print(f"auto on this PC: {result.auto}", highlight=False)
    if json_path is not None:
        from models.files import atomic_write_text

        with user_errors():
            atomic_write_text(json_path, json.dumps(result.to_json(), indent=2) + "\n")
