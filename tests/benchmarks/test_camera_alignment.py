"""The camera-alignment study finds a known move from two mean images and undoes it."""

from __future__ import annotations

import cv2
import numpy as np

from benchmarks.adaptation_shifts import camera_move_matrix
from benchmarks.camera_alignment import SIDE, estimate_move, undo


def _fixture() -> np.ndarray:
    """A solar-cell-like mean image: busbars, fingers and dark corners, no two places alike."""
    image = np.full((SIDE, SIDE), 150, np.float32)
    for row in (30, 75, 120):
        image[row : row + 5] = 60
    image[:, 50:52] = 110
    for corner in ((0, 0), (SIDE, 0), (0, SIDE), (SIDE, SIDE)):
        cv2.circle(image, corner, 14, 20, -1)
    cv2.line(image, (10, 150), (150, 95), 90, 3)
    return cv2.GaussianBlur(image, (0, 0), 1.5)


def test_a_known_move_is_found_and_undone():
    old = _fixture()
    truth = camera_move_matrix(5, SIDE)
    new = cv2.warpPerspective(old, truth, (SIDE, SIDE), borderMode=cv2.BORDER_REFLECT_101)
    warp, correlation = estimate_move(old, new)
    corners = np.float32([[0, 0], [SIDE, 0], [SIDE, SIDE], [0, SIDE]]).reshape(-1, 1, 2)
    error = np.abs(cv2.perspectiveTransform(corners, warp) - cv2.perspectiveTransform(corners, truth)).max()
    assert correlation > 0.95 and error < 1.5
    centre = slice(SIDE // 4, 3 * SIDE // 4)  # where the moved view still holds the old one
    back = undo(new, warp)
    assert (
        np.abs(back[centre, centre] - old[centre, centre]).mean()
        < 0.2 * np.abs(new - old)[centre, centre].mean()
    )
