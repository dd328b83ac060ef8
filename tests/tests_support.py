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
