"""The preprocessing contract shared by training, PyTorch inference and ONNX Runtime inference.

One function turns camera/dataset pixels into the network's input tensor, driven only by the
bundle's ``preprocessing`` record, so that a model sees at inference exactly what it saw in training
(DESIGN §3). Torch-only, so both the trainer and the ONNX wrapper call the same code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.errors import ModelError

RESIZE_MODES = ("stretch", "letterbox", "center_crop")
# ``dataset``: subtract the training set's mean and divide by its std (the fields below).
# ``image``: standardise every image by its own mean and std, so a brighter or flatter lamp gives
# the network the same input; for stations whose lighting varies more than their defects
# (magnetic_tile's six lighting set-ups). The mean/std fields are then unused.
NORMALIZE_MODES = ("dataset", "image")
# A blank frame (lens cap, belt gap) has std ~0; the floor keeps its input finite and near zero
# instead of amplifying sensor noise to unit variance. 1/255: one grey level.
IMAGE_STD_FLOOR = 1.0 / 255.0


@dataclass(frozen=True)
class Preprocessing:
    size: int = 224
    channels: int = 3
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])
    resize: str = "stretch"
    normalize: str = "dataset"

    def validate(self) -> None:
        if self.size < 32:
            raise ModelError(f"preprocessing size {self.size} is too small (minimum 32)")
        if self.channels not in (1, 3):
            raise ModelError(f"preprocessing channels must be 1 or 3, got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ModelError(f"preprocessing mean/std need {self.channels} values each")
        # NaN passes every comparison, and an infinite std divides every pixel to zero: both would
        # feed the network a blank or NaN image without a word.
        if not all(math.isfinite(m) for m in self.mean):
            raise ModelError(f"preprocessing mean values must be finite numbers, got {self.mean}")
        if not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ModelError(f"preprocessing std values must be finite and positive, got {self.std}")
        if self.resize not in RESIZE_MODES:
            raise ModelError(f"preprocessing resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if self.normalize not in NORMALIZE_MODES:
            raise ModelError(
                f"preprocessing normalize must be one of {NORMALIZE_MODES}, got {self.normalize!r}"
            )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preprocessing:
        prep = cls(
            size=int(data["size"]),
            channels=int(data["channels"]),
            mean=[float(v) for v in data["mean"]],
            std=[float(v) for v in data["std"]],
            resize=str(data["resize"]),
            normalize=str(data.get("normalize", "dataset")),  # bundles before the field: dataset
        )
        prep.validate()
        return prep


def to_float_chw(image: np.ndarray) -> torch.Tensor:
    """An 8/16-bit or float, gray or colour (H,W[,C]) array as float CHW in [0, 1]."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or min(array.shape[:2]) < 1:
        raise ModelError(f"image must be HxW or HxWxC with 1, 3 or 4 channels, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.integer):
        scale = float(np.iinfo(array.dtype).max)
    else:
        scale = 1.0
    tensor = torch.from_numpy(np.ascontiguousarray(array[:, :, :3])).permute(2, 0, 1).float() / scale
    return tensor


def _match_channels(tensor: torch.Tensor, channels: int) -> torch.Tensor:
    if tensor.shape[0] == channels:
        return tensor
    if channels == 3:
        return tensor.expand(3, -1, -1)
    weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    return (tensor * weights).sum(0, keepdim=True)


def _resize(tensor: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    _, height, width = tensor.shape
    if prep.resize == "center_crop":
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        tensor = tensor[:, top : top + side, left : left + side]
    elif prep.resize == "letterbox" and height != width:
        side = max(height, width)
        pad_h, pad_w = side - height, side - width
        tensor = F.pad(tensor, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    if tensor.shape[1:] == (prep.size, prep.size):
        return tensor
    return F.interpolate(
        tensor[None], size=(prep.size, prep.size), mode="bilinear", align_corners=False, antialias=True
    )[0]


def masks_on_grid(
    masks: Sequence[np.ndarray | None], prep: Preprocessing, grid: tuple[int, int]
) -> torch.Tensor:
    """(B, h, w): each pixel mask's share of every cell of a token ``grid`` over the network's
    input, through the same geometry as :func:`preprocess` (zeros where a mask is None)."""
    out = torch.zeros(len(masks), *grid)
    for i, mask in enumerate(masks):
        if mask is not None:
            square = _resize(torch.from_numpy(mask.astype(np.float32))[None], prep)
            out[i] = F.adaptive_avg_pool2d(square[None], grid)[0, 0]
    return out


def map_on_image(grid_map: np.ndarray, height: int, width: int, resize: str, cells: int = 8) -> np.ndarray:
    """A map over the network's square input (a token grid) laid on the original image's frame.

    The inverse of :func:`_resize`'s geometry: a letterboxed part drops the padding's rows or
    columns, a centre crop leaves the sides it cut off as NaN (the network never saw them), a
    stretched part keeps the grid as it is. Each grid cell becomes ``cells`` × ``cells`` values
    first, so a crop that falls inside a cell stays true to where the image begins.
    """
    values = np.asarray(grid_map, np.float32)
    if resize == "stretch" or height == width:
        return values
    fine = np.repeat(np.repeat(values, cells, axis=0), cells, axis=1)
    side_h, side_w = fine.shape
    if resize == "letterbox":
        # The padded square is max(h, w) on a side; the image occupies the middle of one axis.
        side = max(height, width)
        top = (side - height) // 2 / side
        left = (side - width) // 2 / side
        r0, r1 = round(top * side_h), round((top + height / side) * side_h)
        c0, c1 = round(left * side_w), round((left + width / side) * side_w)
        return fine[r0 : max(r1, r0 + 1), c0 : max(c1, c0 + 1)]
    # centre crop: the square of side min(h, w) in the middle of the image
    side = min(height, width)
    out_h, out_w = round(side_h * height / side), round(side_w * width / side)
    out = np.full((out_h, out_w), np.nan, np.float32)
    r0, c0 = (out_h - side_h) // 2, (out_w - side_w) // 2
    out[r0 : r0 + side_h, c0 : c0 + side_w] = fine
    return out


def preprocess(images: Sequence[np.ndarray], prep: Preprocessing) -> torch.Tensor:
    """A batch (B, C, S, S) of normalised network inputs from raw pixel arrays."""
    batch = [_resize(_match_channels(to_float_chw(image), prep.channels), prep) for image in images]
    return _normalise(torch.stack(batch), prep)


def _normalise(batch: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    if prep.normalize == "image":
        mean = batch.mean(dim=(1, 2, 3), keepdim=True)
        std = batch.std(dim=(1, 2, 3), keepdim=True)
        return (batch - mean) / std.clamp_min(IMAGE_STD_FLOOR)
    mean = torch.tensor(prep.mean).view(1, -1, 1, 1)
    std = torch.tensor(prep.std).view(1, -1, 1, 1)
    return (batch - mean) / std
