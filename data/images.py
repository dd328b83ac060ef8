"""Reading station images: 8/16-bit PNG/TIFF/BMP/JPEG, gray or colour, any size.

OpenCV decodes; we add what it does not do for us: truncated JPEG and PNG files decode "fine"
with a warning on stderr, so their end markers are checked first, and every failure becomes one
:class:`DataError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from data.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _looks_truncated(head: bytes, tail: bytes) -> bool:
    if head.startswith(b"\xff\xd8"):
        return b"\xff\xd9" not in tail
    if head.startswith(b"\x89PNG"):
        return b"IEND" not in tail
    return False


def read_image(path: str | Path) -> np.ndarray:
    """Pixels as HxW (gray) or HxWx3 (RGB), in the file's own bit depth."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise DataError(f"{file}: cannot read ({exc.strerror or exc})") from exc
    if len(data) < 8 or _looks_truncated(data[:8], data[-64:]):
        raise DataError(f"{file}: truncated or empty image file")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise DataError(f"{file}: not a readable image")
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
