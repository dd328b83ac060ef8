"""Reading station images: 8/16-bit PNG/TIFF/BMP/JPEG, gray or colour, up to a pixel limit.

OpenCV decodes; we add what it does not do for us: truncated JPEG and PNG files decode "fine"
with a warning on stderr, so their end markers are checked first, and every failure becomes one
:class:`DataError` naming the file.

Nothing is decoded before its size is known: the width and height are read from the file's own
header (PNG IHDR, JPEG SOF, BMP info header, TIFF first IFD) and checked against a pixel limit
(50 MP by default, ``INSPECTOR_MAX_IMAGE_PIXELS`` to change it), so a 2 kB PNG claiming
100000x100000 pixels is refused in microseconds instead of asking for 30 GB. A file whose size
cannot be read from its header is not decoded at all, and neither is a file bigger than any image
within the limit could be (the decompression guard).
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import cv2
import numpy as np

from data.errors import DataError, ImageTooLarge

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MAX_PIXELS_ENV = "INSPECTOR_MAX_IMAGE_PIXELS"
# Sized for line cameras: a 16k line-scan strip of 3000 lines, a 45 MP area camera. 50 MP of
# 16-bit RGB is 300 MB decoded; the limit is what stands between one odd file and the line.
DEFAULT_MAX_PIXELS = 50_000_000
_BYTES_PER_PIXEL_BOUND = 8  # 16-bit RGBA, uncompressed: no file within the limit is bigger
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def max_pixels() -> int:
    """The pixel limit: ``INSPECTOR_MAX_IMAGE_PIXELS`` when set, else 50 MP."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise DataError(f"{MAX_PIXELS_ENV}={text!r}: expected a positive whole number of pixels")
    return value


def check_pixels(width: int, height: int, where: str, limit: int | None = None) -> None:
    """Raise :class:`ImageTooLarge` when ``width x height`` is over the limit."""
    limit = limit or max_pixels()
    if width * height > limit:
        raise ImageTooLarge(
            f"{where}: {width}x{height} is {width * height / 1e6:.0f} MP, over the "
            f"{limit / 1e6:g} MP limit (set {MAX_PIXELS_ENV} to allow larger images)"
        )


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # stand-alone markers
            pos += 2
            continue
        if marker == 0xDA:  # start of scan before any frame header
            return None
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return (width, height) if width and height else None
        pos += 2 + length
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    big = struct.unpack(order + "H", data[2:4])[0] == 43
    if big:
        (offset,) = struct.unpack(order + "Q", data[8:16])
        (count,) = struct.unpack(order + "Q", data[offset : offset + 8])
        entries, width_of_entry, head = offset + 8, 20, order + "HHQ"
    else:
        (offset,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[offset : offset + 2])
        entries, width_of_entry, head = offset + 2, 12, order + "HHI"
    found: dict[int, int] = {}
    for index in range(min(count, 4096)):
        at = entries + index * width_of_entry
        tag, kind, _ = struct.unpack(head, data[at : at + struct.calcsize(head)])
        if tag in (256, 257):
            value_at = at + struct.calcsize(head)
            code = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if code is None:
                return None
            found[tag] = struct.unpack(order + code, data[value_at : value_at + struct.calcsize(code)])[0]
    return (found[256], found[257]) if 256 in found and 257 in found else None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, BMP or TIFF header without decoding; None if unknown."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if data.startswith(b"BM"):
            (header,) = struct.unpack("<I", data[14:18])
            if header == 12:
                return struct.unpack("<HH", data[18:22])
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
            return _tiff_size(data)
    except (struct.error, IndexError):
        return None
    return None


def header_size(path: str | Path, head: int = 1 << 20) -> tuple[int, int] | None:
    """(width, height) of an image file from its first ``head`` bytes, without decoding; None when
    the file is unreadable or its header gives no size (the station survey skips such files)."""
    try:
        with os.fdopen(os.open(Path(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            return image_size(handle.read(head))
    except OSError:
        return None


def _looks_truncated(head: bytes, tail: bytes) -> bool:
    if head.startswith(b"\xff\xd8"):
        return b"\xff\xd9" not in tail
    if head.startswith(b"\x89PNG"):
        return b"IEND" not in tail
    return False


def read_image(path: str | Path, limit: int | None = None) -> np.ndarray:
    """Pixels as HxW (gray) or HxWx3 (RGB), in the file's own bit depth.

    ``limit``: most pixels allowed (default :func:`max_pixels`); over it, :class:`ImageTooLarge`.
    """
    file = Path(path)
    limit = limit or max_pixels()
    try:
        # Non-blocking open: a FIFO named like an image must not hang the reader.
        with os.fdopen(os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise DataError(f"{file}: not a regular file")
            if info.st_size > limit * _BYTES_PER_PIXEL_BOUND + (1 << 20):
                raise ImageTooLarge(f"{file}: file too big for an image within the {limit / 1e6:g} MP limit")
            data = handle.read()
    except OSError as exc:
        raise DataError(f"{file}: cannot read ({exc.strerror or exc})") from exc
    if len(data) < 8 or _looks_truncated(data[:8], data[-64:]):
        raise DataError(f"{file}: truncated or empty image file")
    size = image_size(data)
    if size is None:
        raise DataError(f"{file}: not a readable image (PNG, JPEG, BMP or TIFF with a valid header)")
    check_pixels(*size, str(file), limit)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise DataError(f"{file}: not a readable image ({str(exc).strip().splitlines()[-1][:120]})") from None
    if image is None or image.size == 0:
        raise DataError(f"{file}: not a readable image")
    check_pixels(image.shape[1], image.shape[0], str(file), limit)  # the header did not lie
    if image.ndim == 3:
        if image.shape[2] == 4:
            image = image[:, :, :3]
        if image.shape[2] == 1:
            image = image[:, :, 0]
        else:
            image = np.ascontiguousarray(image[:, :, ::-1])
    if image.dtype not in (np.uint8, np.uint16):
        raise DataError(f"{file}: unsupported pixel type {image.dtype} (8- or 16-bit expected)")
    return image


def to_uint8(image: np.ndarray) -> np.ndarray:
    """8-bit view of an 8/16-bit image (augmentation works on 8-bit)."""
    if image.dtype == np.uint8:
        return image
    return (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)


def fit_within(image: np.ndarray, side: int) -> np.ndarray:
    """Downscale so the longer side is at most ``side`` (keeps memory small; never upscales)."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
