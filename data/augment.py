"""Augmentation presets (albumentations), composable by name, and a preview grid for the wizard.

Three presets model what changes when a model moves to another station:
``lighting`` (brightness, contrast, gamma, illumination gradients and shadows, CLAHE),
``angle`` (perspective, rotation, scale, shift) and ``optics`` (defocus, motion blur, sensor noise,
JPEG compression). Each works on 8-bit gray or RGB images and never touches labels.

Training draws random magnitudes up to a moderate strength. For robustness evaluation each preset
also has three fixed severities (in the spirit of ImageNet-C): every image gets one of the
preset's transforms, picked at random, at that severity's strength.
"""

from __future__ import annotations

from collections.abc import Sequence

import albumentations as A
import numpy as np

from data.errors import DataError

PRESETS = ("lighting", "angle", "optics")
SEVERITIES = (1, 2, 3)


def _lighting(s: float) -> list[A.BasicTransform]:
    return [
        A.RandomBrightnessContrast(
            brightness_limit=(-0.25 * s, 0.25 * s), contrast_limit=(-0.25 * s, 0.25 * s), p=1
        ),
        A.RandomGamma(gamma_limit=(100 - 25 * s, 100 + 35 * s), p=1),
        A.Illumination(mode="linear", intensity_range=(0.04 * s, 0.066 * s), p=1),
        A.Illumination(mode="gaussian", intensity_range=(0.04 * s, 0.066 * s), p=1),
        A.RandomShadow(shadow_intensity_range=(0.15 * s, 0.3 * s), p=1),
        A.CLAHE(clip_limit=(1, 1 + 2 * s), p=1),
    ]


def _angle(s: float) -> list[A.BasicTransform]:
    return [
        A.Perspective(scale=(0.02 * s, 0.04 * s), p=1),
        A.Affine(rotate=(-8 * s, 8 * s), p=1),
        A.Affine(scale=(1 - 0.08 * s, 1 + 0.08 * s), p=1),
        A.Affine(translate_percent=(-0.05 * s, 0.05 * s), p=1),
    ]


def _optics(s: float) -> list[A.BasicTransform]:
    level = max(1, round(s))
    return [
        A.Defocus(radius=(1 + level, 1 + 2 * level), alias_blur=(0.1, 0.2), p=1),
        A.MotionBlur(blur_limit=(3 + 2 * level, 3 + 4 * level), p=1),
        A.GaussNoise(std_range=(0.02 * s, 0.05 * s), p=1),
        A.ImageCompression(quality_range=(max(5, 60 - 20 * level), max(10, 80 - 20 * level)), p=1),
    ]


_BUILDERS = {"lighting": _lighting, "angle": _angle, "optics": _optics}


def check_presets(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise DataError(
            f"unknown augmentation preset(s) {', '.join(unknown)} (choose from {', '.join(PRESETS)})"
        )
    return list(names)


def build_augmentation(
    names: Sequence[str], severity: int | None = None, seed: int | None = None
) -> A.Compose:
    """Presets by name, composed in order.

    ``severity=None`` is the training mix (each preset applied to half the images, magnitudes up to
    strength 1.5); 1-3 are the fixed robustness severities (every image changed).
    """
    check_presets(names)
    if severity is not None and severity not in SEVERITIES:
        raise DataError(f"severity must be one of {SEVERITIES}, got {severity}")
    strength = 1.5 if severity is None else float(severity)
    chance = 0.5 if severity is None else 1.0
    steps = [A.OneOf(_BUILDERS[name](strength), p=chance) for name in names]
    return A.Compose(steps, seed=seed)


def default_train_augmentation(seed: int | None = None) -> A.Compose:
    """Light augmentation for any station: flips, small pose and exposure changes."""
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.Affine(rotate=(-10, 10), scale=(0.92, 1.08), translate_percent=(-0.04, 0.04), p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.5),
        ],
        seed=seed,
    )


def apply(transform: A.Compose, image: np.ndarray) -> np.ndarray:
    return transform(image=image)["image"]


def apply_with_mask(
    transform: A.Compose, image: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``image`` and its defect mask through the same draw: a flip or a shift moves both."""
    if mask is None:
        return apply(transform, image), None
    out = transform(image=image, mask=mask.astype(np.uint8))
    return out["image"], out["mask"].astype(bool)


def preview_grid(
    images: Sequence[np.ndarray], names: Sequence[str], per_image: int = 4, seed: int = 0, tile: int = 160
) -> np.ndarray:
    """An RGB uint8 grid: one row per image, the original first, then ``per_image`` augmented draws."""
    import cv2

    transform = build_augmentation(names, seed=seed) if names else default_train_augmentation(seed)
    rows = []
    for image in images:
        base = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        cells = [base] + [
            (lambda out: out if out.ndim == 3 else cv2.cvtColor(out, cv2.COLOR_GRAY2RGB))(
                apply(transform, image)
            )
            for _ in range(per_image)
        ]
        cells = [cv2.resize(c, (tile, tile), interpolation=cv2.INTER_AREA) for c in cells]
        rows.append(
            np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in cells], 1)
        )
    return np.concatenate(rows, 0)
