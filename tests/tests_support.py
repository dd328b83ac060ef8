"""Helpers shared by tests (kept out of conftest so tests can import them by name)."""

from __future__ import annotations

import csv
from pathlib import Path


def write_manifest(root: Path, rows, columns) -> Path:
    path = root / "manifest.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def png_claiming(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose header claims ``width x height`` pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def always_bundle(folder: Path, spec, classes: list[str], favourite: str) -> Path:
    """A bundle that answers ``favourite`` for every image, confidently (its head's weights are zero):
    a model whose recall per class is known before it runs."""
    import torch

    from models.bundle import meta_for, save_bundle
    from models.network import InspectionNet

    net = InspectionNet(spec, len(classes), "none")
    with torch.no_grad():
        net.backbone.head.weight.zero_()
        net.backbone.head.bias.copy_(torch.tensor([8.0 if c == favourite else 0.0 for c in classes]))
    meta = meta_for(net, classes, normal_class=classes[0], thresholds={"unsure_below": 0.5})
    return save_bundle(net, meta, folder)


def demo_line_request(tmp_path: Path, source: str, frames: int, outputs: list[str], **more):
    """The output tests' line: the bundled demo model on ``source``, unpaced (``drop="block"``: no
    frame is shed, so every part reaches the outputs), no archive, a ledger in ``tmp_path``."""
    from inspector.line.build import LineRequest

    return LineRequest(
        source=source,
        home=tmp_path / "home",
        model="demo",
        frames=frames,
        drop="block",
        archive=False,
        db=f"sqlite:///{tmp_path / 'l.db'}",
        outputs=outputs,
        **more,
    )
