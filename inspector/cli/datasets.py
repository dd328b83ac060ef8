"""``inspector data info``: a station's classes, splits, image sizes and problems."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from inspector.cli.common import console, err, user_errors

if TYPE_CHECKING:
    from data.station import Station

THIN_PARTS = 2  # a class held out as this few physical parts gets a note


def data_info(
    data: Annotated[str, typer.Argument(help="Dataset folder, manifest CSV, or 'elpv'.")],
    seed: Annotated[int, typer.Option(help="Seed of the split where the data gives none.")] = 0,
) -> None:
    """Classes and images per split, with any problems found (what the wizard's first page shows)."""
    from data.geometry import choose_geometry, survey_sizes
    from data.station import SPLITS, load_station, verify_images

    with user_errors():
        with err.status("reading every image..."):
            station = verify_images(load_station(data, seed))
    counts = station.counts()
    table = Table(title=f"{station.root} ({station.source})", title_justify="left")
    table.add_column("class")
    for split in SPLITS:
        table.add_column(split, justify="right")
    for name in station.classes:
        table.add_row(name, *(str(counts[split][name]) for split in SPLITS))
    console.print(table)
    if station.label_note:
        console.print(f"labels: {station.label_note}")
    for issue in station.issues:
        err.print(f"[yellow]warning:[/] {issue}", highlight=False)
    survey = survey_sizes(station.samples)
    if survey is not None:
        console.print(f"sizes: {survey.describe()}", highlight=False)
        geometry = choose_geometry(survey)
        console.print(
            f"train --resize auto would use: {geometry.size} px, {geometry.resize} ({geometry.reason})",
            highlight=False,
        )
    _parts_and_masks(station)
    with user_errors(), err.status("reading the defect masks..."):
        _defect_sizes(station)
    console.print(f"fingerprint {station.fingerprint()}")


def _parts_and_masks(station: Station) -> None:
    """Where a class's held-out score rests on one or two physical parts, and which classes carry
    pixel masks (what train's defect-preserving crops and --keep-defects use)."""
    parts = station.group_counts()
    if any(parts.values()):
        thin = [
            f"{name} ({', '.join(f'{parts[split][name]} in {split}' for split in ('val', 'test'))})"
            for name in station.classes
            if min(parts["val"][name], parts["test"][name]) <= THIN_PARTS
        ]
        if thin:
            console.print(
                f"held-out parts: {'; '.join(thin)} — those classes' val/test scores rest on "
                f"{THIN_PARTS} or fewer physical parts (groups)",
                highlight=False,
            )
    masked = station.masked()
    if masked:
        listed = ", ".join(f"{name} {masked[name]}" for name in station.classes if masked[name])
        console.print(
            f"defect masks: {listed} images (train crops around them by default; --keep-defects uses them)",
            highlight=False,
        )


def _defect_sizes(station: Station) -> None:
    """How small the masked defects are, and so the input ``inspector train`` will pick: an engineer
    sees the reason for a slower default before spending a training run on it."""
    from data.geometry import small_defect_size, survey_defects
    from inspector.training.defaults import PRETRAINED_DEFAULTS

    survey = survey_defects(station.split("train"), station.root, station.normal_classes)
    if survey is None:
        return
    default = PRETRAINED_DEFAULTS.img_size
    size = small_defect_size(survey, default)
    pick = (
        f"train (pretrained, no --img-size) would use {size} px and the keep-defects term"
        if size is not None
        else f"train keeps the {default} px default"
    )
    console.print(f"defect sizes: {survey.describe(default)}; {pick}", highlight=False)
