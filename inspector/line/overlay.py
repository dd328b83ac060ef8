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
    """``image`` (any size, gray or RGB) blended with the (h, w) importance map, as RGB uint8.

    The map already has the image's frame (:func:`models.preprocess.map_on_image`); NaN cells —
    the sides a centre crop never showed the network — stay unblended.
    """
    base = as_rgb8(image)
    values = np.asarray(importance, np.float32)
    seen = np.isfinite(values)
    if not seen.any():
        return base
    low, high = float(values[seen].min()), float(values[seen].max())
    filled = np.where(seen, values, low)
    scaled = (filled - low) / (high - low) if high > low else np.zeros_like(filled)
    heat = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    size = (base.shape[1], base.shape[0])
    heat = cv2.cvtColor(cv2.resize(heat, size, interpolation=cv2.INTER_NEAREST), cv2.COLOR_BGR2RGB)
    blended = cv2.addWeighted(base, 1.0 - alpha, heat, alpha, 0.0)
    if seen.all():
        return blended
    inside = cv2.resize(seen.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    return np.where(inside[..., None], blended, base)
