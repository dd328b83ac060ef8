"""The merge-map overlay: where the model kept detail (warm) and where it merged tokens (cool).

An operator or QA engineer sees at a glance whether the model looked at the defect: LTM keeps
tokens fine where they matter and merges plain background, so the importance map is the model's
own account of what it weighed.
"""

from __future__ import annotations

import cv2
import numpy as np

from data.images import to_uint8


def as_rgb8(image: np.ndarray) -> np.ndarray:
    image = to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return image


def overlay_importance(image: np.ndarray, importance: np.ndarray, alpha: float = 0.35) -> np.ndarray:
    """``image`` (any size, gray or RGB) blended with the (h, w) importance map, as RGB uint8."""
    base = as_rgb8(image)
    values = np.asarray(importance, np.float32)
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    heat = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    heat = cv2.resize(heat, (base.shape[1], base.shape[0]), interpolation=cv2.INTER_NEAREST)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(base, 1.0 - alpha, heat, alpha, 0.0)
