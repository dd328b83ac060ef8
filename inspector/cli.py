"""The ``inspector`` command line (DESIGN §4 CLI contract: extend, don't break).

Every user-facing failure is one line on stderr and a non-zero exit; tracebacks are for bugs.
Headless commands never import Qt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from models.errors import ModelError

app = typer.Typer(
    name="inspector",
    help="LTM Inspector: inline visual inspection with token-merging vision transformers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Inspect and manage model bundles.", no_args_is_help=True)
app.add_typer(models_app, name="models")

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear line and return the exit to raise."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@models_app.command("info")
def models_info(model: Annotated[Path, typer.Argument(help="Model bundle folder.")]) -> None:
    """Print a bundle's architecture, merge schedule, classes, GMACs and parameters."""
    from models.bundle import load_bundle
    from models.flops import count_gmacs, count_params
    from models.schedule import describe_schedule

    try:
        bundle = load_bundle(model)
    except ModelError as exc:
        raise fail(str(exc)) from None
    net, meta = bundle.net, bundle.meta
    spec = meta.backbone
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("bundle", str(model))
    table.add_row("backbone", f"{spec.name} ({net.family}) {spec.img_size}px, {spec.in_chans} channel(s)")
    if spec.overrides:
        table.add_row("overrides", ", ".join(f"{k}={v}" for k, v in spec.overrides.items()))
    target = f", target gmacs_ratio {meta.gmacs_ratio}" if meta.gmacs_ratio else ""
    table.add_row("merge", f"{meta.merge_mode}{target}")
    table.add_row(
        "classes", ", ".join(meta.classes) + (f"  (normal: {meta.normal_class})" if meta.normal_class else "")
    )
    prep = meta.preprocessing
    table.add_row("input", f"{prep.size}x{prep.size}, {prep.resize}, mean {prep.mean}, std {prep.std}")
    table.add_row("GMACs", f"{count_gmacs(net, spec.img_size, spec.in_chans):.4f} (batch 1)")
    table.add_row("params", f"{count_params(net):,}")
    if meta.thresholds:
        table.add_row("thresholds", ", ".join(f"{k}={v}" for k, v in meta.thresholds.items()))
    out.print(table)
    out.print("[bold]schedule[/]")
    out.print(describe_schedule(net), highlight=False)


@app.command("export")
def export(
    model: Annotated[Path, typer.Argument(help="Model bundle folder.")],
    onnx: Annotated[Path, typer.Option("--onnx", help="ONNX file to write.")],
) -> None:
    """Export a bundle to ONNX (static shapes) and check it against PyTorch."""
    from models.bundle import load_bundle
    from models.onnx_export import export_onnx

    try:
        bundle = load_bundle(model)
        with err.status("exporting and checking parity..."):
            report = export_onnx(bundle.net, onnx)
    except ModelError as exc:
        raise fail(str(exc)) from None
    out.print(
        f"wrote {report.path} (opset {report.opset}); max |Δprobability| vs PyTorch "
        f"{report.max_abs_diff:.2e} over {report.samples} inputs"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
